package diskqueue

import (
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A journal (retain_after_ack) hands out again what it retains when told
// to (republish): after a restart it does so anyway, as every record in
// the file is loaded; this is the same while it runs, for a store that
// lost its unsynced tail while the journal stayed up (a power cut of the
// cluster alone). The store drops what it still has, by message id.
//
// What was acknowledged of the store before it lost it is in two places:
//   - records retained, all their events acknowledged: handed out again at
//     once, their settled marks read from the file as at a start (the
//     events acknowledged are not in them);
//   - posts still open, some of their events acknowledged and others out
//     for delivery or waiting: they are marked, and handed out again (the
//     events acknowledged) once their last event settles, so that no event
//     is ever out twice at once.
//
// A record handed out again and acknowledged again is retained again from
// then, for the whole retention: a second loss is covered as the first.

// republished is what one republish handed out.
type republished struct {
	records, events int
	pending         int // open posts, handed out again once settled
}

// republish hands out again every record retained, and marks the open
// posts with events acknowledged (above).
func (q *queue) republish() (r republished, err error) {
	q.mu.Lock()
	if q.closed || !q.retained.enabled() {
		q.mu.Unlock()
		return r, nil
	}
	seqs, bytes := q.retained.takeAll()
	for _, p := range q.posts.open {
		if p.acked != nil && !p.republish {
			p.republish = true
			r.pending++
		}
	}
	q.mu.Unlock()
	if len(seqs) == 0 {
		return r, nil
	}
	var again []retainedRecord
	if err = q.store.readRetained(seqs, func(rr retainedRecord) { again = append(again, rr) }); err != nil {
		// They stay retained, from now: nothing is lost, and a later
		// republish or restart tries again.
		q.mu.Lock()
		q.retained.giveBack(seqs, bytes, time.Now())
		q.mu.Unlock()
		return r, err
	}
	q.mu.Lock()
	ready := make([]uint64, 0, len(again))
	for _, rr := range again {
		if rr.events == 0 { // every event settled otherwise: it protects nothing
			q.bytes -= rr.size
			q.store.deletePost(rr.seq)
			continue
		}
		if rr.marked != nil {
			q.posts.add(rr.marked)
		}
		q.events += int64(rr.events)
		ready = append(ready, rr.seq)
		r.records++
		r.events += rr.events
	}
	q.sched.ready.merge(ready)
	q.countRepublishedLocked(r.events)
	q.mu.Unlock()
	signal(q.wakeRead)
	return r, nil
}

// handOutAgainLocked hands out again, once its last event settled, a post
// marked by republish while it was open: its events acknowledged, which
// its marks in the file leave out. It says false when none was.
func (q *queue) handOutAgainLocked(p *openPost) bool {
	again := newOpenPost(p.seq, p.events)
	again.settled = p.durable()
	again.waiting -= countSettled(again.settled, p.events)
	if again.waiting == 0 {
		return false
	}
	again.size = p.size
	q.posts.add(again)
	q.events += int64(again.waiting)
	q.sched.ready.merge([]uint64{p.seq})
	q.countRepublishedLocked(again.waiting)
	return true
}

func (q *queue) countRepublishedLocked(events int) {
	if q.conf.onRepublished != nil && events > 0 {
		q.conf.onRepublished(events)
	}
}

// retainedRecord is what republish reads of a retained record: its events
// not settled in the file, and its open post when its marks settle some.
type retainedRecord struct {
	seq    uint64
	size   int64
	events int
	marked *openPost
}

// readRetained reads, as a start does, the retained records seqs: each
// one's events and settled marks (markedPost). Records gone are skipped.
func (s *recordStore) readRetained(seqs []uint64, found func(retainedRecord)) error {
	return s.db.View(func(tx *bolt.Tx) error {
		events, settled := tx.Bucket(bucketEvents), tx.Bucket(bucketSettled)
		release := mappedPagesReleaser(s.db, tx, releaseStep)
		for _, seq := range seqs {
			k := seqKey(seq)
			rec := events.Get(k)
			if rec == nil {
				continue
			}
			release(len(rec))
			rr := retainedRecord{seq: seq, size: int64(len(rec)), events: recordEvents(rec)}
			if v := settled.Get(k); v != nil {
				if p, ok := markedPost(seq, rec, v); ok {
					rr.events, rr.marked = p.waiting, p
				}
			}
			found(rr)
		}
		return nil
	})
}

// takeAll takes every record retained, whatever its time: their numbers,
// ascending, and their bytes.
func (r *retainedRecords) takeAll() (seqs []uint64, bytes int64) {
	seqs = append(seqs, r.filling.seqs...)
	bytes = r.filling.bytes
	for _, b := range r.batches {
		seqs = b.runs.appendFirst(seqs, b.runs.len())
		bytes += b.bytes
	}
	r.filling, r.batches = retainBatch{}, nil
	slices.Sort(seqs)
	return seqs, bytes
}

// giveBack retains again records takeAll took, from now.
func (r *retainedRecords) giveBack(seqs []uint64, bytes int64, now time.Time) {
	for i, seq := range seqs {
		if i > 0 {
			bytes = 0 // the bytes are counted once, with the first
		}
		r.keep(seq, bytes, now)
	}
}

// merge adds seqs, ascending and none of them held, to the numbers held,
// in order: records handed out again go before those stored since.
func (r *seqRuns) merge(seqs []uint64) {
	var add seqRuns
	for _, seq := range seqs {
		add.push(seq)
	}
	merged := make([]seqRun, 0, len(r.runs)+len(add.runs))
	for i, j := 0, 0; i < len(r.runs) || j < len(add.runs); {
		var next seqRun
		if j == len(add.runs) || (i < len(r.runs) && r.runs[i].first < add.runs[j].first) {
			next, i = r.runs[i], i+1
		} else {
			next, j = add.runs[j], j+1
		}
		if n := len(merged); n > 0 && merged[n-1].last+1 == next.first {
			merged[n-1].last = next.last
		} else {
			merged = append(merged, next)
		}
	}
	r.runs, r.n = merged, r.n+add.n
	if len(r.runs) == 0 {
		r.runs = nil
	}
}
