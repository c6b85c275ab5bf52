package diskqueue

import (
	"container/heap"
	"time"
)

// schedule decides what goes out next, in memory and without I/O: the
// records ready (committed and not leased, oldest first), the failed events
// waiting for their retry (by when it is due), and the delivery window,
// which bounds how many events are out at once. It knows records by their
// sequence numbers only: reading them is the store's, splitting a post the
// cursor's.
//
// The queue's mutex guards it.
type schedule struct {
	ready   seqRuns // committed and not leased, oldest first
	retries retryHeap
	window  deliveryWindow
	leased  int // events handed out and not yet settled

	retryInitial, retryMax time.Duration
}

func newSchedule(retryInitial, retryMax time.Duration) schedule {
	return schedule{window: newDeliveryWindow(), retryInitial: retryInitial, retryMax: retryMax}
}

// admit says whether the window lets one more event out now; when not, how
// long to wait (0: until a delivery settles).
func (s *schedule) admit(now time.Time) (wait time.Duration, ok bool) {
	return s.window.admit(s.leased, now, s.retryMax)
}

// dueRetry takes the retry due first, if its time has come; otherwise it
// says how long until it is (0: none waits).
func (s *schedule) dueRetry(now time.Time) (r retryItem, wait time.Duration, ok bool) {
	if len(s.retries) == 0 {
		return retryItem{}, 0, false
	}
	if r = s.retries[0]; r.due.After(now) {
		return retryItem{}, r.due.Sub(now), false
	}
	heap.Pop(&s.retries)
	return r, 0, true
}

// nextReady takes the oldest record ready.
func (s *schedule) nextReady() (uint64, bool) { return s.ready.pop() }

// upcoming is the n records ready next, left ready.
func (s *schedule) upcoming(n int) []uint64 { return s.ready.appendFirst(nil, n) }

// committed makes seq ready; seq is above every number ready.
func (s *schedule) committed(seq uint64) { s.ready.push(seq) }

// retry makes seq due again at due, its attempts made so far counted.
func (s *schedule) retry(seq uint64, attempts int, due time.Time) {
	heap.Push(&s.retries, retryItem{seq: seq, attempts: attempts, due: due})
}

// delivered tells the window of a success. When it ends an outage, what
// waits for a retry goes now. (Other successes leave retries to their own
// backoff, so that one event that keeps failing is not tried again each
// time.)
func (s *schedule) delivered(now time.Time) {
	if !s.window.succeeded(now) {
		return
	}
	for i := range s.retries {
		s.retries[i].due = now
	}
}

// failed tells the window of a failed delivery after attempts before it,
// and says when the event is due again.
func (s *schedule) failed(probe, timedOut bool, attempts int, now time.Time) (retryAt time.Time) {
	s.window.failed(probe, timedOut, s.leased, now, s.backoff)
	return now.Add(s.backoff(attempts))
}

// backoff is retryInitial doubled n times, at most retryMax.
func (s *schedule) backoff(n int) time.Duration {
	d := s.retryInitial << min(n, 30)
	if d > s.retryMax || d <= 0 {
		return s.retryMax
	}
	return d
}
