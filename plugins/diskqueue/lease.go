package diskqueue

import (
	"context"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// lease is an event handed out for delivery, as its message: an event
// record, or one event of a post record.
type lease struct {
	seq      uint64
	attempts int
	probe    bool   // handed out while deliveries were failing
	size     int64  // an event record's, given back when it is deleted
	held     int64  // what it pins of the read path's budget (readMemory)
	rec      []byte // an event record as read; msg holds its body
	msg      *service.Message
	post     *openPost // set for an event of a post record
	index    int       // its place in the post, across its panels
	inPanel  int       // its place in its panel
	panel    string    // its panel
	raw      []byte    // its JSON, as stored
}

// next blocks until an event can be delivered, and leases it.
func (q *queue) next(ctx context.Context) (*lease, error) {
	for {
		q.mu.Lock()
		if q.ended {
			q.mu.Unlock()
			return nil, errClosed
		}
		seq, attempts, event, wait, ok := q.popLocked(time.Now())
		if event != nil {
			q.sched.leased++
			q.mu.Unlock()
			if q.explodeLease(event) {
				return event, nil
			}
			continue
		}
		probe := q.sched.window.probing()
		var rec []byte
		var upcoming []uint64
		var room int64
		if ok {
			q.sched.leased++
			rec, upcoming, room = q.recordLocked(seq)
		}
		q.mu.Unlock()
		if !ok {
			if !q.waitForWork(ctx, wait) {
				return nil, ctx.Err()
			}
			continue
		}
		l := &lease{seq: seq, attempts: attempts, probe: probe}
		if rec == nil {
			var err error
			if rec, err = q.readAheadOf(seq, upcoming, room); err != nil {
				q.retryUnread(l)
				return nil, err
			}
		}
		if rec == nil { // cannot happen while we hold the lease
			q.release()
			continue
		}
		if isPostRecord(rec) {
			// Its events are handed out one by one, each under a lease
			// of its own: this one is given back.
			if err := q.openRecord(seq, rec); err != nil {
				q.quarantine(seq, rec, err)
			} else {
				q.release()
			}
			continue
		}
		l.size, l.held, l.rec = int64(len(rec)), int64(len(rec)), rec
		var err error
		if l.msg, err = decodeRecord(rec); err != nil {
			q.quarantine(seq, rec, err)
			continue
		}
		return l, nil
	}
}

// release gives back a lease that handed nothing out.
func (q *queue) release() {
	q.mu.Lock()
	q.sched.leased--
	q.mu.Unlock()
	signal(q.wakeRead)
}

// retryUnread gives back a lease whose record could not be read from the
// file: it is tried again after a backoff, as a failed delivery is, but the
// delivery window does not learn of it. Nothing was delivered: a disk error
// would narrow the window, and a few in a row would start probing an
// outage of a destination that is up.
func (q *queue) retryUnread(l *lease) {
	q.mu.Lock()
	q.sched.leased--
	q.sched.retry(l.seq, l.attempts+1, time.Now().Add(q.sched.backoff(l.attempts)))
	q.mu.Unlock()
	signal(q.wakeRead)
}

// waitForWork waits for a wake-up, or until wait has passed when it is set.
// It says false when ctx ended first.
func (q *queue) waitForWork(ctx context.Context, wait time.Duration) bool {
	var due <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		due = t.C
	}
	select {
	case <-q.wakeRead:
	case <-due:
	case <-ctx.Done():
		return false
	}
	return true
}

// popLocked takes what is due next: retries whose time has come first
// (they are the oldest), then the next event of the post being handed out,
// then the next record, each as the read path's budget allows (readMemory).
// Without one it says how long until the next retry is due (0: none
// waits, or the budget is full: a settling delivery wakes the reader).
func (q *queue) popLocked(now time.Time) (seq uint64, attempts int, event *lease, wait time.Duration, ok bool) {
	if wait, ok := q.sched.admit(now); !ok {
		return 0, 0, nil, wait, false
	}
	records := q.mem.mayTakeRecord()
	if records {
		var r retryItem
		if r, wait, ok = q.sched.dueRetry(now); ok {
			return r.seq, r.attempts, nil, 0, true
		}
	}
	if q.mem.mayHandEvent(q.sched.leased) {
		if event, ok := q.takeFromPostLocked(); ok {
			return 0, 0, event, 0, true
		}
	}
	if records {
		if seq, ok := q.sched.nextReady(); ok {
			return seq, 0, nil, 0, true
		}
	}
	return 0, 0, nil, wait, false
}

// ack settles a lease: a delivered event record is deleted, a delivered
// event of a post marked settled (its post deleted with its last event); a
// failed event comes back after a backoff that doubles with each of its
// attempts, up to retryMax, which it returns. Either way the delivery window
// learns of it (deliveryWindow).
func (q *queue) ack(l *lease, err error) (retryAt time.Time) {
	var retry []byte // the record a failed event of a post is retried from
	if err != nil && l.post != nil {
		var damage error
		if retry, damage = q.retryRecord(l); damage != nil {
			// It was made into a message once: only damage stops it now.
			q.setAside(l, damage)
			return time.Time{}
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sched.leased--
	q.mem.unpin(l.held)
	now := time.Now()
	if q.retained.enabled() {
		q.retained.noteAck(err, now)
	}
	if err == nil {
		q.events--
		if l.post == nil {
			q.dropLocked(l.seq, l.size, false)
		} else {
			if q.retained.enabled() {
				l.post.ackedLocked(l.index)
			}
			q.settlePostEventLocked(l.post, l.index)
		}
		q.sched.delivered(now)
		signal(q.wakeRead)
		return time.Time{}
	}
	retryAt = q.sched.failed(l.probe, timedOut(err), l.attempts, now)
	if l.post != nil {
		q.rewriteLocked(l, retry, retryAt)
	} else {
		q.mem.keepForRetry(l.seq, l.rec)
		q.sched.retry(l.seq, l.attempts+1, retryAt)
	}
	signal(q.wakeRead) // a place in the window is free
	return retryAt
}
