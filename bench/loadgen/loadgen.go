// Package loadgen posts Netcore-style webhooks (form bodies `data=<JSON>`
// with unique events) to a URL from a fixed number of concurrent senders for
// a fixed time, and reports what was acknowledged and how fast.
package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Config says what to send, how hard and for how long.
type Config struct {
	URL           string // where to POST
	Concurrency   int    // senders, each with one post in flight
	EventsPerPost int    // events in each post
	// EventsAlone posts each event by itself as a JSON object, the way a
	// pipeline delivers it to Meiro Events, instead of Netcore forms: for
	// measuring a destination directly. EventsPerPost is then 1.
	EventsAlone bool
	Duration    time.Duration // no post starts after this; posts in flight finish
	Panel       string        // the panel name the events come under; default product_search
	Prefix      string        // starts every event id; default random, so runs never repeat ids
	Timeout     time.Duration // of one post; default 30s
}

// Result is what the senders saw.
type Result struct {
	Posts      int         // posts answered 200
	Events     int         // events in those posts
	Non200     map[int]int // other answers, by status
	Errors     int         // posts that got no answer (connection error, timeout)
	FirstError string      // the first of those errors, to say why
	Started    time.Time   // when the first post was sent
	Elapsed    time.Duration
	P50, P99   time.Duration // latency of the 200s, from sending to the end of the answer
}

// PostsPerSec is acknowledged posts per second.
func (r Result) PostsPerSec() float64 { return perSec(r.Posts, r.Elapsed) }

// EventsPerSec is acknowledged events per second.
func (r Result) EventsPerSec() float64 { return perSec(r.Events, r.Elapsed) }

func perSec(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// errorPause keeps a sender from spinning when the server refuses
// connections, which fails in microseconds.
const errorPause = 20 * time.Millisecond

// Run sends posts until cfg.Duration has passed, waits for the posts in
// flight, and returns the counts. It returns early, with what it has and the
// context's error, when ctx ends.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.setDefaults(); err != nil {
		return Result{}, err
	}
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        cfg.Concurrency,
		MaxIdleConnsPerHost: cfg.Concurrency,
		MaxConnsPerHost:     cfg.Concurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: cfg.Timeout}
	bodies := newBodyBuilder(cfg.Panel, cfg.Prefix, cfg.EventsPerPost, cfg.EventsAlone)

	var next atomic.Uint64 // the number of the next event, shared by the senders
	workers := make([]*worker, cfg.Concurrency)
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{non200: map[int]int{}}
		workers[i] = w
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				first := next.Add(uint64(cfg.EventsPerPost)) - uint64(cfg.EventsPerPost)
				w.post(ctx, client, cfg.URL, bodies.contentType, bodies.build(first, cfg.EventsPerPost))
			}
		})
	}
	wg.Wait()

	res := Result{Non200: map[int]int{}, Started: start, Elapsed: time.Since(start)}
	var latencies []time.Duration
	for _, w := range workers {
		res.Posts += w.ok
		res.Errors += w.errors
		if res.FirstError == "" {
			res.FirstError = w.firstError
		}
		for status, n := range w.non200 {
			res.Non200[status] += n
		}
		latencies = append(latencies, w.latencies...)
	}
	res.Events = res.Posts * cfg.EventsPerPost
	slices.Sort(latencies)
	res.P50, res.P99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
	return res, ctx.Err()
}

func (cfg *Config) setDefaults() error {
	if cfg.URL == "" {
		return errors.New("loadgen: no URL")
	}
	if cfg.EventsAlone {
		cfg.EventsPerPost = 1
	}
	if cfg.Concurrency < 1 || cfg.EventsPerPost < 1 || cfg.Duration <= 0 {
		return fmt.Errorf("loadgen: concurrency (%d), events per post (%d) and duration (%s) must be positive",
			cfg.Concurrency, cfg.EventsPerPost, cfg.Duration)
	}
	if cfg.Panel == "" {
		cfg.Panel = "product_search"
	}
	if cfg.Prefix == "" {
		var b [6]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
		cfg.Prefix = hex.EncodeToString(b[:])
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	return nil
}

// worker is one sender's counts, merged after all senders stop, so that
// sending takes no lock.
type worker struct {
	ok, errors int
	firstError string
	non200     map[int]int
	latencies  []time.Duration
}

func (w *worker) post(ctx context.Context, client *http.Client, url, contentType string, body []byte) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		w.fail(ctx, err)
		return
	}
	req.Header.Set("Content-Type", contentType)
	sent := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		w.fail(ctx, err)
		return
	}
	// Reading the answer to its end lets the connection be reused.
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		w.fail(ctx, fmt.Errorf("reading the answer: %w", err))
		return
	}
	if resp.StatusCode != http.StatusOK {
		w.non200[resp.StatusCode]++
		return
	}
	w.ok++
	w.latencies = append(w.latencies, time.Since(sent))
}

func (w *worker) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return // cancelled by the caller: not the server's fault
	}
	w.errors++
	if w.firstError == "" {
		w.firstError = err.Error()
	}
	t := time.NewTimer(errorPause)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
