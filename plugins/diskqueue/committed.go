package diskqueue

import (
	"time"
)

// The queue is the store's owner (storeOwner): what a commit did comes back
// here, from the committer, and is made visible to the readers.

// committed makes a commit's work visible. Committed: the new records
// become ready, the repeats are given back, the failed events written on
// their own wait for their retry and are settled in their posts. Failed:
// the puts are given back, and the posts whose marks were to be written
// are marked again, for the next commit.
func (q *queue) committed(work pendingWrites, result commitResult, err error) {
	q.mu.Lock()
	if err != nil {
		q.remarkLocked(work.marked)
		for _, op := range work.puts {
			q.events -= op.events
			q.bytes -= op.size
		}
	} else {
		q.storedLocked(work.puts, result)
		q.rewrittenLocked(work.rewrites, result.rewritten)
	}
	q.mu.Unlock()
	signal(q.wakeRead)
}

// remarkLocked gives the posts of a failed commit's marks back to the
// store, those still open and not marked again since.
func (q *queue) remarkLocked(marked []*openPost) {
	for _, p := range marked {
		if !p.dirty && q.posts.get(p.seq) == p {
			p.dirty = true
			q.store.marksChanged(p)
		}
	}
}

// storedLocked makes the records of committed puts ready, in order, and
// gives back what repeats took no room.
func (q *queue) storedLocked(puts []*putOp, result commitResult) {
	for i := range puts {
		for _, seq := range result.stored[i] {
			q.sched.committed(seq)
		}
		q.events -= int64(len(result.repeats[i]))
		q.bytes -= result.repeatBytes[i]
	}
	for _, p := range result.partRepeated {
		q.posts.add(p)
	}
}

// rewrittenLocked schedules the retry of each failed event written as a
// record of its own (at seqs), and settles it in its post.
func (q *queue) rewrittenLocked(rewrites []rewrite, seqs []uint64) {
	for i, rw := range rewrites {
		q.mem.unpin(int64(len(rw.rec)))
		if rw.damaged {
			continue // settled when it was set aside
		}
		q.mem.keepForRetry(seqs[i], rw.rec)
		q.sched.retry(seqs[i], rw.attempts, rw.due)
		q.settlePostEventLocked(rw.post, rw.index)
	}
}

// marksOf copies the settled marks that a commit is to write: those of
// posts whose marks changed, and of posts with events written on their
// own, with those events set (they are settled by the same commit).
func (q *queue) marksOf(marked []*openPost, rewrites []rewrite) map[uint64][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	marks := map[uint64][]byte{}
	for _, p := range marked {
		p.dirty = false
		if q.posts.get(p.seq) == p {
			marks[p.seq] = p.durable()
		}
	}
	for _, rw := range rewrites {
		m, ok := marks[rw.post.seq]
		if !ok {
			m = rw.post.durable()
			marks[rw.post.seq] = m
		}
		m[rw.index/8] |= 1 << (rw.index % 8)
	}
	return marks
}

// refused gives back the room of puts that will never be written.
func (q *queue) refused(puts []*putOp) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, p := range puts {
		q.events -= p.events
		q.bytes -= p.size
	}
}

// tick is the committer's each second: retained records whose time is up
// are deleted, the stats are told.
func (q *queue) tick() {
	q.deleteRetained(time.Now())
	q.reportStats()
}

// stats reports what the queue holds.
func (q *queue) stats() (events, bytes int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.events, q.bytes
}

// reportStats tells onStats what waits.
func (q *queue) reportStats() {
	if q.conf.onStats == nil {
		return
	}
	events, bytes := q.stats()
	var oldest time.Duration
	if at, ok := q.store.oldest(); ok {
		oldest = max(time.Since(at), 0)
	}
	q.conf.onStats(events, bytes, oldest)
}
