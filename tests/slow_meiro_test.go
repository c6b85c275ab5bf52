package tests

import (
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// slowMeiro is what a Meiro Events slower than the pipeline's timeout saw:
// the requests for each event_id, and the most it was answering at once
// (a request the pipeline gave up on is still being answered).
type slowMeiro struct {
	mu      sync.Mutex
	sent    map[string]int
	busy    int
	most    int
	slow    atomic.Bool
	answers time.Duration
}

func newSlowMeiro(m *meiro, answers time.Duration) *slowMeiro {
	s := &slowMeiro{sent: map[string]int{}, answers: answers}
	s.slow.Store(true)
	m.setRespond(func(body []byte) int {
		var ev struct {
			EventID string `json:"event_id"`
		}
		_ = json.Unmarshal(body, &ev) // one without is counted under ""
		s.mu.Lock()
		s.sent[ev.EventID]++
		s.busy++
		s.most = max(s.most, s.busy)
		s.mu.Unlock()
		if s.slow.Load() {
			time.Sleep(s.answers)
		}
		s.mu.Lock()
		s.busy--
		s.mu.Unlock()
		return http.StatusOK
	})
	return s
}

// counts are the requests for each event_id so far, and the most answered
// at once.
func (s *slowMeiro) counts() (map[string]int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sent := make(map[string]int, len(s.sent))
	for id, n := range s.sent {
		sent[id] = n
	}
	return sent, s.most
}

// A Meiro Events that answers after 3 s, with MEIRO_TIMEOUT=1s: every
// request times out, and the event is sent again after its backoff (at
// least once: the event may have arrived). What must not happen is that a
// timed-out request, still being answered, is followed at once by more
// parallel requests: the place of a request that timed out is not given to
// another, so after the first requests time out the queue sends one at a
// time, each retry after its backoff. Before, every event was sent again
// in parallel on its own backoff: 3 times each within 6 s (at 0, 2 and 5 s),
// and 10 requests at once at Meiro Events.
func TestSlowMeiroEventsIsNotSentMoreAtOnce(t *testing.T) {
	const (
		events  = 5
		timeout = time.Second
		answers = 3 * time.Second
		watch   = 6 * time.Second
	)
	m := newMeiro(t)
	s := newSlowMeiro(m, answers)
	env := m.env()
	env["MEIRO_TIMEOUT"] = timeout.String()
	p := startProcess(t, options{env: env})

	body, markers := markedBody("slow", events)
	start := time.Now()
	if status, err := postJSON(p.webhook, body); err != nil || status != http.StatusOK {
		t.Fatalf("post: %d %v", status, err)
	}
	time.Sleep(watch - time.Since(start))
	sent, most := s.counts()

	if len(sent) != events {
		t.Fatalf("Meiro Events saw the event ids %v, want %d events", sent, events)
	}
	total, twice := 0, 0
	for _, n := range sent {
		total += n
		if n > 1 {
			twice++
		}
	}
	if twice == 0 {
		t.Fatalf("no event was sent again within %s (%v): the requests did not time out, the premise did not happen", watch, sent)
	}
	for id, n := range sent {
		if n > 2 {
			t.Errorf("event %s sent %d times within %s, want at most twice: a timed-out event is sent again once its backoff has passed, one request at a time", id, n, watch)
		}
	}
	// After the first requests timed out, one request at a time: at most
	// one more for each timeout that passed.
	if allowed := events + int((watch-timeout)/timeout); total > allowed {
		t.Errorf("%d requests within %s for %d events, want at most %d: one at a time once they time out", total, watch, events, allowed)
	}
	t.Logf("within %s: %d requests for %d events %v; at most %d at once at Meiro Events", watch, total, events, sent, most)

	// Meiro Events fast again: each event is delivered, and the repeats it
	// took while slow (it answered 200 after the timeout: the event had
	// arrived) are the same event, with the same event_id to drop them by.
	s.slow.Store(false)
	waitDelivered(t, m, markers, 60*time.Second)
	waitQuiet(t, p, m)
	copies := map[string][]string{}
	for _, b := range m.received() {
		var ev struct {
			Marker string `json:"marker"`
		}
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("not JSON at Meiro Events: %s", b)
		}
		copies[ev.Marker] = append(copies[ev.Marker], string(b))
	}
	accepted, repeated := map[string]int{}, 0
	for mk, bodies := range copies {
		for _, b := range bodies[1:] {
			if b != bodies[0] {
				t.Errorf("%s arrived as %s and again as %s: a repeat must be the same event, with the same event_id", mk, bodies[0], b)
			}
		}
		accepted[mk] = len(bodies)
		if len(bodies) > 1 {
			repeated++
		}
	}
	if repeated == 0 {
		t.Errorf("no event arrived twice (%v), though requests that timed out were answered 200 later: the premise of the check of repeats did not happen", accepted)
	}
	t.Logf("accepted by Meiro Events (copies of each event): %v", accepted)
}
