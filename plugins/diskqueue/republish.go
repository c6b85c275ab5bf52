package diskqueue

import (
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

// republishChunk is how many retained records one read transaction of a
// republish reads and hands out again: what is held of them (their
// numbers and what is read, about 48 bytes a record) is bounded by it,
// whatever the journal retains, and no read transaction spans the whole
// journal, keeping the file from growing its mapping and reusing pages.
const republishChunk = 4096

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
	taken, bytes := q.retained.takeAll()
	for _, p := range q.posts.open {
		if p.acked != nil && !p.republish {
			p.republish = true
			r.pending++
		}
	}
	q.mu.Unlock()
	var found int64 // the bytes of the records read so far
	chunk := make([]uint64, 0, min(taken.len(), republishChunk))
	for taken.len() > 0 {
		chunk = taken.popInto(chunk[:0], republishChunk)
		var again []retainedRecord
		if err = q.store.readRetained(chunk, func(rr retainedRecord) { again = append(again, rr) }); err != nil {
			// Those not handed out stay retained, from now: nothing is
			// lost, and a later republish or restart tries again.
			var back seqRuns
			for _, seq := range chunk {
				back.push(seq)
			}
			back.mergeRuns(taken)
			q.mu.Lock()
			q.retained.giveBack(back, bytes-found, time.Now())
			q.mu.Unlock()
			return r, err
		}
		q.mu.Lock()
		if q.closed { // the rest is in the file, loaded at the next start
			q.mu.Unlock()
			return r, nil
		}
		found += q.handOutRetainedLocked(again, &r)
		q.mu.Unlock()
		signal(q.wakeRead)
	}
	// A retained record gone from the file no longer takes room in it. None
	// should be (a retained record is deleted only once taken from the
	// list, by deleteRetained or here), but the count must not keep a
	// record that is not there.
	q.mu.Lock()
	q.bytes -= bytes - found
	q.mu.Unlock()
	return r, nil
}

// handOutRetainedLocked hands out again the retained records read, adds
// them to r, and returns their bytes.
func (q *queue) handOutRetainedLocked(again []retainedRecord, r *republished) (bytes int64) {
	ready := make([]uint64, 0, len(again))
	events := 0
	for _, rr := range again {
		bytes += rr.size
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
		events += rr.events
	}
	r.events += events
	q.sched.ready.merge(ready)
	q.countRepublishedLocked(events)
	return bytes
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
// in order, as runs (a second's records are a few), and their bytes.
func (r *retainedRecords) takeAll() (all seqRuns, bytes int64) {
	if len(r.filling.seqs) > 0 {
		r.closeFilling()
	}
	for _, b := range r.batches {
		all.mergeRuns(b.runs)
		bytes += b.bytes
	}
	r.batches = nil
	return all, bytes
}

// giveBack retains again, from now, records takeAll took.
func (r *retainedRecords) giveBack(runs seqRuns, bytes int64, now time.Time) {
	if len(r.filling.seqs) > 0 {
		r.closeFilling() // due before the batch given back: in order
	}
	r.batches = append(r.batches, retainBatch{start: now, due: now.Add(time.Second + r.after), runs: runs, bytes: bytes})
}

// popInto takes up to max of the oldest numbers, appended to dst.
func (r *seqRuns) popInto(dst []uint64, max int) []uint64 {
	for ; max > 0; max-- {
		seq, ok := r.pop()
		if !ok {
			break
		}
		dst = append(dst, seq)
	}
	return dst
}

// merge adds seqs, ascending and none of them held, to the numbers held,
// in order: records handed out again go before those stored since.
func (r *seqRuns) merge(seqs []uint64) {
	var add seqRuns
	for _, seq := range seqs {
		add.push(seq)
	}
	r.mergeRuns(add)
}

// mergeRuns adds the numbers of add, none of them held, to those held, in
// order.
func (r *seqRuns) mergeRuns(add seqRuns) {
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
