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
// taken while the drain is in full swing, from 10% to 60% of the backlog
// delivered: with 30% of requests failing at random, the failed events come
// back after their backoff (1 s, doubling to 10 s), and a few fail 7 or 8
// times in a row and arrive a minute after the rest; that tail is the retry
// schedule, not the delivery rate:
//
//	go test ./tests -run '^$' -bench DrainWithPartialFailures -benchtime 1x -count 3
func BenchmarkDrainWithPartialFailures(b *testing.B) {
	const backlog = 60_000
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
// stops, and starts again on the same queue with Meiro Events back, failing
// the given share of requests at random; it measures how fast 90% of the
// events arrive. (The restart leaves the outage's probing behind, so that
// what is measured is delivery under partial failure, not the first probe.)
func drainRate(b *testing.B, backlog int, failing float64) float64 {
	b.Helper()
	m := newMeiro(b)
	m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
	dir := b.TempDir()
	p := startProcess(b, options{env: m.env(), dir: dir})
	var markers []string
	for i := 0; i < backlog; i += 100 {
		body, mk := markedBody(fmt.Sprintf("drain-%d", i), 100)
		if status, err := postJSON(p.webhook, body); err != nil || status != http.StatusOK {
			b.Fatalf("filling: %d %v", status, err)
		}
		markers = append(markers, mk...)
	}
	p.stop(b)
	var mu sync.Mutex
	m.setRespond(func([]byte) int {
		mu.Lock()
		defer mu.Unlock()
		if rand.Float64() < failing {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	start := time.Now()
	p = startProcess(b, options{env: m.env(), dir: dir})
	waitFor(b, "10% of the backlog delivered", 5*time.Minute, func() bool { return m.receivedCount() >= backlog/10 })
	from := time.Now()
	waitFor(b, "60% of the backlog delivered", 5*time.Minute, func() bool { return m.receivedCount() >= backlog*6/10 })
	bulk := time.Since(from)
	waitDelivered(b, m, markers, 2*time.Minute)
	p.stop(b)
	b.Logf("%.0f%% of requests failing: from 10%% to 60%% of %d events in %s, all in %s", failing*100, backlog, bulk.Round(time.Millisecond), time.Since(start).Round(time.Second))
	return float64(backlog/2) / bulk.Seconds()
}
