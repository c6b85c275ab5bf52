package main

import (
	"fmt"
	"time"

	"github.com/netcore-connect/netcore-connect/bench/loadgen"
)

// record is the measurement of one run of one system, as written to the
// JSON results.
type record struct {
	System        string `json:"system"`
	Concurrency   int    `json:"concurrency"`
	EventsPerPost int    `json:"events_per_post"`
	Run           int    `json:"run"`

	// What the senders saw.
	AckPosts        int         `json:"ack_posts"`
	AckEvents       int         `json:"ack_events"`
	AckPostsPerSec  float64     `json:"ack_posts_per_sec"`
	AckEventsPerSec float64     `json:"ack_events_per_sec"`
	P50ms           float64     `json:"p50_ms"`
	P99ms           float64     `json:"p99_ms"`
	Non200          map[int]int `json:"non_200,omitempty"`
	PostErrors      int         `json:"post_errors"`
	FirstPostError  string      `json:"first_post_error,omitempty"`
	LoadSeconds     float64     `json:"load_seconds"`

	// What reached the sink (stock and ours only).
	Delivered          int     `json:"delivered,omitempty"` // distinct events
	Duplicates         int     `json:"duplicates,omitempty"`
	BadDeliveries      int     `json:"bad_deliveries,omitempty"`
	SinkRequests       int     `json:"sink_requests,omitempty"`
	SinkConnections    int     `json:"sink_connections,omitempty"`  // opened by the system to the sink
	DeliveredPerSec    float64 `json:"delivered_per_sec,omitempty"` // from the first post to the last delivery
	DeliverySeconds    float64 `json:"delivery_seconds,omitempty"`
	DrainOutcome       string  `json:"drain_outcome,omitempty"`
	DrainAfterLoadSecs float64 `json:"drain_after_load_seconds,omitempty"` // last delivery after the senders stopped

	// The system's process.
	PeakRSSMiB            float64    `json:"peak_rss_mib"`      // with mapped file pages
	PeakAnonMiB           float64    `json:"peak_anon_rss_mib"` // heap and stacks, sampled every 100 ms
	CPUSeconds            float64    `json:"cpu_seconds"`       // from ready to the end of delivery
	CPUSecondsPer1kEvents float64    `json:"cpu_seconds_per_1k_events"`
	Log                   logSummary `json:"log"`
	LogFile               string     `json:"log_file"`
	StopErr               string     `json:"stop_error,omitempty"`
	Err                   string     `json:"error,omitempty"`
}

func (r *record) setLoad(res loadgen.Result) {
	r.AckPosts, r.AckEvents = res.Posts, res.Events
	r.AckPostsPerSec, r.AckEventsPerSec = res.PostsPerSec(), res.EventsPerSec()
	r.P50ms, r.P99ms = ms(res.P50), ms(res.P99)
	if len(res.Non200) > 0 {
		r.Non200 = res.Non200
	}
	r.PostErrors, r.FirstPostError = res.Errors, res.FirstError
	r.LoadSeconds = res.Elapsed.Seconds()
}

func (r *record) setDelivery(st sinkStats, outcome string, started time.Time) {
	r.Delivered, r.Duplicates, r.BadDeliveries = st.Distinct, st.Duplicates, st.Bad
	r.SinkRequests, r.SinkConnections = st.Requests, st.Conns
	r.DrainOutcome = outcome
	if st.Distinct == 0 {
		return
	}
	r.DeliverySeconds = st.Last.Sub(started).Seconds()
	if r.DeliverySeconds > 0 {
		r.DeliveredPerSec = float64(st.Distinct) / r.DeliverySeconds
	}
	r.DrainAfterLoadSecs = max(0, r.DeliverySeconds-r.LoadSeconds)
}

// setCPU records the CPU pid used since it had used before.
func (r *record) setCPU(pid int, before time.Duration) {
	after, err := cpuTime(pid)
	if err != nil {
		r.Err = joinErr(r.Err, err.Error())
		return
	}
	r.CPUSeconds = (after - before).Seconds()
	if r.AckEvents > 0 {
		r.CPUSecondsPer1kEvents = r.CPUSeconds / float64(r.AckEvents) * 1000
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summary is one line of progress.
func (r *record) summary() string {
	if r.AckPosts == 0 && r.Err != "" {
		return "failed: " + r.Err
	}
	s := fmt.Sprintf("%.0f events/s acknowledged, p50 %.2f ms, p99 %.2f ms", r.AckEventsPerSec, r.P50ms, r.P99ms)
	if delivers(r.System) {
		s += fmt.Sprintf("; %d of %d delivered (%s), %.0f events/s", r.Delivered, r.AckEvents, r.DrainOutcome, r.DeliveredPerSec)
	}
	s += fmt.Sprintf("; %.0f MiB, %.3f CPU s/1k events", r.PeakRSSMiB, r.CPUSecondsPer1kEvents)
	if r.Err != "" {
		s += "; error: " + r.Err
	}
	return s
}
