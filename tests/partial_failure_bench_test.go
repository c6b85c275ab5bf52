package tests

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"
)

// BenchmarkDrainWithPartialFailures drains the same backlog into a healthy
// Meiro Events stand-in and into one that answers 500 to 30% of requests at
// random (one bad node of three behind a load balancer), alternating, and
// reports events delivered per second for each and their ratio. The rate is
// taken over the first 90% of the backlog: with 30% of requests failing at
// random, a few events fail 7 or 8 times in a row and wait out their
// backoff (1 s doubling to 10 s, about a minute in all) after the rest is
// long delivered; that tail is the retry schedule, not the delivery rate:
//
//	go test ./tests -run '^$' -bench DrainWithPartialFailures -benchtime 1x -count 3
func BenchmarkDrainWithPartialFailures(b *testing.B) {
	const backlog = 20_000
	var healthy, flaky []float64
	for range b.N {
		for _, failing := range []float64{0, 0.3} {
			rate := drainRate(b, backlog, failing)
			if failing == 0 {
				healthy = append(healthy, rate)
			} else {
				flaky = append(flaky, rate)
			}
		}
	}
	h, f := mean(healthy), mean(flaky)
	b.ReportMetric(h, "healthy-events/s")
	b.ReportMetric(f, "30%-failing-events/s")
	b.ReportMetric(f/h, "ratio")
}

func mean(xs []float64) float64 {
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// drainRate fills a queue with backlog events while Meiro Events is down,
// then lets it answer, failing the given share of requests, and measures
// how fast every event arrives.
func drainRate(b *testing.B, backlog int, failing float64) float64 {
	b.Helper()
	m := newMeiro(b)
	down := true
	var mu sync.Mutex
	m.setRespond(func([]byte) int {
		mu.Lock()
		defer mu.Unlock()
		if down || rand.Float64() < failing {
			if down {
				return http.StatusServiceUnavailable
			}
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	p := startProcess(b, options{env: m.env()})
	var markers []string
	for i := 0; i < backlog; i += 100 {
		body, mk := markedBody(fmt.Sprintf("drain-%d", i), 100)
		if status, err := postJSON(p.webhook, body); err != nil || status != http.StatusOK {
			b.Fatalf("filling: %d %v", status, err)
		}
		markers = append(markers, mk...)
	}
	// Wait out the outage's probing pause, so that both runs start alike.
	time.Sleep(11 * time.Second)
	start := time.Now()
	mu.Lock()
	down = false
	mu.Unlock()
	waitFor(b, "90% of the backlog delivered", 5*time.Minute, func() bool { return len(m.received()) >= backlog*9/10 })
	elapsed := time.Since(start)
	waitDelivered(b, m, markers, time.Minute)
	p.stop(b)
	b.Logf("%.0f%% of requests failing: 90%% of %d events in %s, all in %s", failing*100, backlog, elapsed.Round(time.Millisecond), time.Since(start).Round(time.Second))
	return float64(backlog*9/10) / elapsed.Seconds()
}
