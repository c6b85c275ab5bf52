package tests

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// When ack_timeout passes while a post is being stored, the answer still
// says exactly what happened: a post answered 503 was not stored (none of
// its events ever reaches Meiro Events), a post answered 200 was (all of its
// events do). With an ack_timeout of 2 ms under load from 16 senders, many
// commits outlast it: before the queue's claim, some posts were answered 503
// and stored anyway, so Netcore was told to resend what was stored.
func TestAckTimeoutAnswersExactly(t *testing.T) {
	m := newMeiro(t)
	p := startProcess(t, options{env: m.env(), set: []string{"input.netcore_webhook.ack_timeout=2ms"}})

	var mu sync.Mutex
	answered := map[int][]string{} // status → the markers of the posts given it
	var wg sync.WaitGroup
	deadline := time.Now().Add(3 * time.Second)
	for s := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; time.Now().Before(deadline); n++ {
				body, markers := markedBody(fmt.Sprintf("ack-%d-%d", s, n), 10)
				status, err := postJSON(p.webhook, body)
				if err != nil {
					t.Errorf("post: %v", err)
					return
				}
				mu.Lock()
				answered[status] = append(answered[status], markers...)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	stored, refused := answered[http.StatusOK], answered[http.StatusServiceUnavailable]
	for status, markers := range answered {
		if status != http.StatusOK && status != http.StatusServiceUnavailable {
			t.Errorf("%d events answered %d", len(markers), status)
		}
	}
	// The premise: the timeout did cut in, and posts were stored too.
	if len(refused) == 0 || len(stored) == 0 {
		t.Fatalf("%d events answered 200 and %d answered 503: the test needs both", len(stored), len(refused))
	}
	waitDelivered(t, m, stored, time.Minute)
	waitQuiet(t, p, m)
	at := markersAt(t, m)
	lost := 0
	for _, mk := range refused {
		if at[mk] > 0 {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d events answered 503 were stored and delivered anyway: Netcore would be told to resend them", lost, len(refused))
	}
	t.Logf("events answered 200: %d, answered 503: %d", len(stored), len(refused))
}
