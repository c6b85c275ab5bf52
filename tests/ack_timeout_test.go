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
//
// The test needs both answers, and how many commits outlast 2 ms depends on
// the disk: on a fast one none may, on a slow one all. So the premise is
// controlled, not hoped for: a run that saw only 200s is repeated with a
// quarter of the ack_timeout, one that saw only 503s with four times it,
// until a run sees both.
func TestAckTimeoutAnswersExactly(t *testing.T) {
	ackTimeout := 2 * time.Millisecond
	for range 6 {
		m := newMeiro(t)
		p := startProcess(t, options{env: m.env(), set: []string{"input.netcore_webhook.ack_timeout=" + ackTimeout.String()}})
		answered := postUnderLoad(t, p, 16, 3*time.Second)
		stored, refused := answered[http.StatusOK], answered[http.StatusServiceUnavailable]
		for status, markers := range answered {
			if status != http.StatusOK && status != http.StatusServiceUnavailable {
				t.Errorf("%d events answered %d", len(markers), status)
			}
		}
		// The premise: the timeout did cut in, and posts were stored too.
		switch {
		case len(refused) == 0:
			t.Logf("ack_timeout %s: all %d events answered 200; trying a quarter of it", ackTimeout, len(stored))
			p.stop(t)
			ackTimeout /= 4
			continue
		case len(stored) == 0:
			t.Logf("ack_timeout %s: all %d events answered 503; trying four times it", ackTimeout, len(refused))
			p.stop(t)
			ackTimeout *= 4
			continue
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
		t.Logf("ack_timeout %s: events answered 200: %d, answered 503: %d", ackTimeout, len(stored), len(refused))
		return
	}
	t.Fatal("no ack_timeout gave both 200s and 503s: the test needs both")
}

// postUnderLoad posts marked bodies of 10 events from senders at once for
// d, and returns the markers of the events by the status their post got.
func postUnderLoad(t *testing.T, p *process, senders int, d time.Duration) map[int][]string {
	var mu sync.Mutex
	answered := map[int][]string{} // status → the markers of the posts given it
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for s := range senders {
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
	return answered
}
