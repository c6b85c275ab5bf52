package diskqueue

import (
	"slices"
	"time"
)

// With retain_after_ack set, the queue is a journal in front of a store
// that acknowledges before its own fsync (a JetStream cluster at its
// default sync_interval): a record whose events were all acknowledged by
// the output stays in the file for retain_after_ack more, so that a power
// cut of the store within that time loses nothing the journal still holds.
// A retained record is deleted once its time is up; after a restart it is
// loaded as any record is, and published again (the store drops the
// repeats by message id); while the process runs, only when asked
// (republish.go).
//
// Retained records cost disk, not memory: the file keeps them, and they
// count against max_bytes (past it, 503s); in memory each second of
// acknowledgements is a few runs of sequence numbers.
//
// The file's settled marks of a post never include its events acknowledged
// by the output while retaining (postMarks.acked): a restart publishes them
// again, as it does a post that was retained whole.

// retainedRecords are the records kept after their acknowledgement, in
// batches of one second, oldest first. The queue's mutex guards it.
type retainedRecords struct {
	after   time.Duration // 0: records are deleted as soon as they are settled
	filling retainBatch   // the second being filled; its numbers unsorted
	batches []retainBatch // closed: due in order, numbers as runs

	// An outage of the store pauses the deletions: while nothing the
	// output is given is acknowledged, and for after more once it is, so
	// that a store which lost its unsynced tail while the journal ran on
	// (a power cut of the cluster alone) can still be given it again
	// (republish.go, or a restart) from what is retained. The output
	// tells of one by failing, or, when nothing comes to be published
	// (a quiet hour), by reporting its connection lost (noteOutage).
	lastOK, lastFailed, lost, outageSeen time.Time
}

// outageAfter is how long failures with no acknowledgement between them
// make an outage. A single event that fails for ever (too big for the
// store) is no outage: the others are acknowledged meanwhile.
const outageAfter = 5 * time.Second

// noteAck records an acknowledgement by the output, or a failure.
func (r *retainedRecords) noteAck(err error, now time.Time) {
	if err != nil {
		r.lastFailed = now
		return
	}
	if r.connectionLost() {
		// The first acknowledgement since the connection was lost ends
		// the outage: the retention runs from it.
		r.outageSeen = now
	}
	r.lastOK = now
}

// noteOutage records that the output lost its connection to the store: an
// outage until the next acknowledgement, whether anything fails meanwhile
// or not.
func (r *retainedRecords) noteOutage(now time.Time) { r.lost = now }

func (r *retainedRecords) connectionLost() bool { return r.lost.After(r.lastOK) }

// paused says whether deletions wait at now: in an outage, or within after
// of its end.
func (r *retainedRecords) paused(now time.Time) bool {
	failing := r.lastFailed.After(r.lastOK) && now.Sub(r.lastOK) >= outageAfter
	if failing || r.connectionLost() {
		r.outageSeen = now
	}
	return !r.outageSeen.IsZero() && now.Sub(r.outageSeen) < r.after
}

// retainBatch is the records settled within one second: deleted at due.
type retainBatch struct {
	start time.Time
	due   time.Time
	seqs  []uint64 // while filling
	runs  seqRuns  // once closed
	bytes int64
}

func (r *retainedRecords) enabled() bool { return r.after > 0 }

// keep retains record seq, of size bytes, settled at now.
func (r *retainedRecords) keep(seq uint64, size int64, now time.Time) {
	if len(r.filling.seqs) > 0 && now.Sub(r.filling.start) >= time.Second {
		r.closeFilling()
	}
	if len(r.filling.seqs) == 0 {
		// Due once the last record that may join it has had its time.
		r.filling.start, r.filling.due = now, now.Add(time.Second+r.after)
	}
	r.filling.seqs = append(r.filling.seqs, seq)
	r.filling.bytes += size
}

// closeFilling turns the second being filled into runs: records settle
// roughly in the order they were stored, so a second's thousands of
// numbers are a few runs.
func (r *retainedRecords) closeFilling() {
	b := r.filling
	slices.Sort(b.seqs)
	for _, seq := range b.seqs {
		b.runs.push(seq)
	}
	b.seqs = nil
	r.batches = append(r.batches, b)
	r.filling = retainBatch{}
}

// takeDue takes the records whose retention is over at now: their numbers
// and bytes.
func (r *retainedRecords) takeDue(now time.Time) (seqs []uint64, bytes int64) {
	if len(r.filling.seqs) > 0 && !now.Before(r.filling.due) {
		r.closeFilling()
	}
	for len(r.batches) > 0 && !now.Before(r.batches[0].due) {
		b := &r.batches[0]
		seqs = b.runs.appendFirst(seqs, b.runs.len())
		bytes += b.bytes
		r.batches[0] = retainBatch{}
		r.batches = r.batches[1:]
	}
	if len(r.batches) == 0 {
		r.batches = nil // let the backing array go
	}
	return seqs, bytes
}

// count is the records retained.
func (r *retainedRecords) count() (n int) {
	n = len(r.filling.seqs)
	for _, b := range r.batches {
		n += b.runs.len()
	}
	return n
}

// dropLocked deletes a settled record, or retains it when retain_after_ack
// is set: then its bytes stay counted until it is deleted.
func (q *queue) dropLocked(seq uint64, size int64, post bool) {
	if q.retained.enabled() {
		q.retained.keep(seq, size, time.Now())
		return
	}
	q.bytes -= size
	if post {
		q.store.deletePost(seq)
	} else {
		q.store.deleteRecord(seq)
	}
}

// noteOutage pauses the deletions from now until the retention after the
// next acknowledgement: the output lost its connection to the store, which
// may lose its unsynced tail before it acknowledges anything again.
func (q *queue) noteOutage(now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.retained.enabled() {
		q.retained.noteOutage(now)
	}
}

// deleteRetained deletes the retained records whose time is up; the
// committer calls it each second.
func (q *queue) deleteRetained(now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.retained.paused(now) {
		return
	}
	seqs, bytes := q.retained.takeDue(now)
	if len(seqs) == 0 {
		return
	}
	q.bytes -= bytes
	// As posts: a post's marks go with it, and an event record has none.
	q.store.deletePosts(seqs)
}

// ackedLocked notes that event i of p was acknowledged by the output while
// retaining: settled in memory, left out of the marks the file gets.
func (p *postMarks) ackedLocked(i int) {
	if p.acked == nil {
		p.acked = make([]byte, len(p.settled))
	}
	p.acked[i/8] |= 1 << (i % 8)
}

// durable is the marks to write to the file: the settled events less those
// acknowledged while retaining, which a restart publishes again.
func (p *postMarks) durable() []byte {
	m := slices.Clone(p.settled)
	for b := range p.acked {
		m[b] &^= p.acked[b]
	}
	return m
}

// isAcked says whether event i was settled by the output's ack while
// retaining.
func (p *postMarks) isAcked(i int) bool { return p.acked != nil && p.acked[i/8]&(1<<(i%8)) != 0 }
