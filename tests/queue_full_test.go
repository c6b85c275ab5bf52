package tests

import (
	"bytes"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

// alertThreshold reads the rule of alert name from
// deploy/prometheus-alerts.yaml, of the form `max(METRIC) > X`, so that a
// test can check the alert against a scrape.
func alertThreshold(t *testing.T, name string) (metric string, threshold float64) {
	t.Helper()
	rules := string(readFile(t, repoRoot(t)+"/deploy/prometheus-alerts.yaml"))
	m := regexp.MustCompile(`(?s)alert: ` + name + `\n.*?expr: max\((\w+)\) > ([0-9.]+)`).FindStringSubmatch(rules)
	if m == nil {
		t.Fatalf("deploy/prometheus-alerts.yaml has no %s rule of the form max(METRIC) > X", name)
	}
	threshold, _ = strconv.ParseFloat(m[2], 64)
	return m[1], threshold
}

// TestFullQueueRefusesWholePostsAndRecoversWithoutRestart fills a small
// queue while Meiro Events is down: posts past the limit get 503 with
// Retry-After, all or nothing per post; the gauge and the "queue filling"
// alert see it; when Meiro Events returns the queue drains and takes posts
// again, without a restart, and every acknowledged event arrives once.
func TestFullQueueRefusesWholePostsAndRecoversWithoutRestart(t *testing.T) {
	const maxEvents = 200
	m := newMeiro(t)
	m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
	p := startProcess(t, options{env: m.env(), set: []string{fmt.Sprintf("buffer.disk_queue.max_events=%d", maxEvents)}})

	var acked, refused []string
	for i := 0; i < 40; i++ {
		body, markers := markedBody(fmt.Sprintf("full-%d", i), 7) // 7 does not divide 200: one post crosses the limit
		req := newPost(t, p.webhook, "application/json", bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			acked = append(acked, markers...)
		case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
			refused = append(refused, markers...)
		default:
			t.Fatalf("post %d to a filling queue: %d (Retry-After %q), want 200 or 503 with Retry-After", i, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if len(acked) != maxEvents/7*7 || len(refused) == 0 {
		t.Fatalf("%d events acknowledged and %d refused, want the %d that fit whole and the rest refused", len(acked), len(refused), maxEvents/7*7)
	}
	metric, threshold := alertThreshold(t, "NetcoreQueueFilling")
	waitFor(t, "the queue gauges to see it full", 5*time.Second, func() bool {
		metrics := scrape(t, p)
		return sumMetric(metrics, "netcore_queue_events", "") == float64(len(acked)) && sumMetric(metrics, metric, "") > threshold
	})

	m.setRespond(func([]byte) int { return http.StatusOK })
	waitDelivered(t, m, acked, 60*time.Second)
	body, markers := markedBody("after-full", 7)
	if status, err := postJSON(p.webhook, body); err != nil || status != http.StatusOK {
		t.Fatalf("a post once the queue drained: %d %v, want 200", status, err)
	}
	waitDelivered(t, m, markers, 30*time.Second)
	waitQuiet(t, p, m)
	got := markersAt(t, m)
	for _, mk := range append(acked, markers...) {
		if got[mk] != 1 {
			t.Errorf("%s delivered %d times, want once", mk, got[mk])
		}
	}
	for _, mk := range refused {
		if got[mk] != 0 {
			t.Errorf("%s, of a post answered 503, was delivered: a refused post must store nothing", mk)
		}
	}
	if v := sumMetric(scrape(t, p), metric, ""); v > threshold {
		t.Errorf("%s is %v after draining, want under %v", metric, v, threshold)
	}
}

// TestRacingRepeatsAreStoredAndDeliveredOnce sends the same post on 20
// connections at once, as Netcore's retry racing its original would: every
// copy is answered 200, and each event is stored and delivered once.
func TestRacingRepeatsAreStoredAndDeliveredOnce(t *testing.T) {
	const copies, events = 20, 10
	m := newMeiro(t)
	p := startProcess(t, options{env: m.env()})
	body, markers := markedBody("race", events)
	var wg sync.WaitGroup
	statuses := make([]int, copies)
	start := make(chan struct{})
	for i := range copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses[i], _ = postJSON(p.webhook, body)
		}()
	}
	close(start)
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusOK {
			t.Fatalf("copy %d answered %d, want 200 for every copy", i, s)
		}
	}
	waitDelivered(t, m, markers, 30*time.Second)
	waitQuiet(t, p, m)
	for mk, n := range markersAt(t, m) {
		if n != 1 {
			t.Errorf("%s delivered %d times, want once", mk, n)
		}
	}
	if n := sumMetric(scrape(t, p), "netcore_events_deduplicated_total", ""); n != (copies-1)*events {
		t.Errorf("netcore_events_deduplicated_total = %v, want %d (every copy but one)", n, (copies-1)*events)
	}
}
