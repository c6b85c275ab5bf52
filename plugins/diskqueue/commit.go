package diskqueue

import (
	"time"

	"github.com/netcore-connect/netcore-connect/internal/claim"
	bolt "go.etcd.io/bbolt"
)

// commitLoop is the committer: the one goroutine that writes to the queue
// file, until close.
func (s *recordStore) commitLoop() {
	defer close(s.committerDone)
	defer s.ids.close()
	sweep := time.NewTicker(time.Second)
	defer sweep.Stop()
	// Each commit maps a few new pages (the path to the end of each
	// bucket is written anew each time): at 1,000 commits a second that is
	// tens of MB of RSS a second until they are let go.
	release := time.NewTicker(releaseEvery)
	defer release.Stop()
	var flushDeletes <-chan time.Time // set while deletes wait for company
	for {
		force := false
		select {
		case <-s.wakeWrite:
		case <-flushDeletes:
			flushDeletes, force = nil, true
		case <-sweep.C:
			s.owner.tick()
		case <-release.C:
			_ = s.db.View(func(tx *bolt.Tx) error { releaseMappedPages(s.db, tx); return nil })
			continue // nothing to commit for it
		case <-s.stop:
			// What was put before close is still stored and acknowledged:
			// a commit takes big puts only up to commitPutBytes, so commit
			// until none is left.
			s.commit(true)
			for s.putsPending() {
				s.commit(true)
			}
			return
		}
		if s.commit(force) && flushDeletes == nil {
			flushDeletes = time.After(deleteDelay)
		}
	}
}

// putsPending says whether puts wait for a commit.
func (s *recordStore) putsPending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending.puts) > 0
}

// releaseEvery is how often the queue file's mapped pages are let go.
const releaseEvery = 250 * time.Millisecond

// Deletes of delivered records wait up to deleteDelay (or until deleteBatch
// of them pile up) for a commit to ride with. Alone they cost an fsync'd
// commit every few events while a backlog drains, and losing them in a crash
// only means those events are delivered again, which at least once allows.
const (
	deleteDelay = 100 * time.Millisecond
	deleteBatch = 4096
)

// commit writes everything pending in one transaction: the puts, the
// deletes of delivered records, the damaged records moved aside, the failed
// events of posts written on their own, the settled marks of posts, the ids
// of the new events and, now and then, the sweep of expired ids. Unless forced,
// it leaves deletes that wait alone for later and says so.
func (s *recordStore) commit(force bool) (deferred bool) {
	work, deferred := s.takePending(force)
	if deferred {
		return true
	}
	now := time.Now()
	cutoff := uint64(now.Add(-s.conf.dedupeWindow).UnixNano())
	// Expired ids are swept once a second; past dedupe_max_ids, in every
	// commit, so that the bound holds whatever the rate (a sweep forgets at
	// most maxSweep ids).
	sweepDue := s.ids.enabled() && (now.Sub(s.lastSweep) >= sweepEvery || s.ids.overBound())
	if work.empty() && (!sweepDue || !s.ids.sweepNeeded(cutoff)) {
		s.lastSweep = now // an idle queue makes no commits
		return false
	}
	result := newCommitResult(len(work.puts), len(work.rewrites))
	err := s.db.Update(func(tx *bolt.Tx) error {
		s.db.AllocSize = growthStep(tx.Size()) // read by this transaction's commit only
		return s.write(tx, work, &result, now, cutoff, sweepDue)
	})
	if sweepDue && err == nil {
		s.lastSweep = now
	}
	s.settle(work, result, err)
	return false
}

// takePending takes what waits to be written, or leaves it and says
// deferred when it is only deletes, not yet deleteBatch of them: they wait
// for company (deleteDelay).
//
// A put with a claim its input abandoned (it answered "not stored" when its
// acknowledgement timeout passed) is dropped here, failed and never
// written; the others' claims are taken, so that from now on their inputs
// wait for this commit's result instead of giving up.
func (s *recordStore) takePending(force bool) (work pendingWrites, deferred bool) {
	s.mu.Lock()
	if p := s.pending; !force && len(p.puts) == 0 && len(p.damaged) == 0 && p.settling() > 0 && p.settling() < deleteBatch {
		s.mu.Unlock()
		return pendingWrites{}, true
	}
	work, s.pending = s.pending, pendingWrites{}
	work.puts, s.pending.puts = splitPuts(work.puts)
	if len(s.pending.puts) > 0 {
		signal(s.wakeWrite) // the big puts left wait for the next commit, at once
	}
	var abandoned []*putOp
	kept := work.puts[:0]
	for _, p := range work.puts {
		if claim.TakeAll(p.claims) {
			kept = append(kept, p)
			continue
		}
		abandoned = append(abandoned, p)
	}
	work.puts = kept
	s.mu.Unlock()
	if len(work.marked) > 0 || len(work.rewrites) > 0 {
		work.marks = s.owner.marksOf(work.marked, work.rewrites)
	}
	if len(abandoned) > 0 {
		s.owner.refused(abandoned)
	}
	for _, p := range abandoned {
		p.done(claim.ErrAbandoned, nil)
	}
	return work, false
}

func (w pendingWrites) empty() bool {
	return len(w.puts) == 0 && len(w.damaged) == 0 && w.settling() == 0
}

// settling counts the writes that follow deliveries: deletes, events
// written on their own, changed marks. None is urgent, since each only
// saves sending an event again after a crash.
func (w pendingWrites) settling() int {
	return len(w.deletes) + len(w.rewrites) + len(w.marked) + len(w.unmark)
}

// commitResult is what a transaction did with each put: the sequence numbers
// of the records it stored, and the records it did not because they repeat
// an event stored within the dedupe window.
type commitResult struct {
	stored       [][]uint64
	repeats      [][]int // events, counted across the put's records
	repeatBytes  []int64 // of records not stored, all their events repeats
	partRepeated []*openPost
	rewritten    []uint64 // the sequence number of each rewrite
}

func newCommitResult(puts, rewrites int) commitResult {
	return commitResult{stored: make([][]uint64, puts), repeats: make([][]int, puts), repeatBytes: make([]int64, puts), rewritten: make([]uint64, rewrites)}
}

// write makes the transaction's changes. It runs inside bbolt's Update and
// changes nothing the readers see: the owner does that once it committed
// (settle).
func (s *recordStore) write(tx *bolt.Tx, work pendingWrites, result *commitResult, now time.Time, cutoff uint64, sweepDue bool) error {
	s.ids.begin()
	events, dedupe := appendOnly(tx.Bucket(bucketEvents)), appendOnly(tx.Bucket(bucketDedupe))
	settled := tx.Bucket(bucketSettled)
	if err := s.storePuts(events, settled, work.puts, result, cutoff); err != nil {
		return err
	}
	for i, rw := range work.rewrites {
		seq, err := events.NextSequence()
		if err != nil {
			return err
		}
		to := events
		if rw.damaged {
			to = tx.Bucket(bucketDamaged)
		}
		if err := to.Put(seqKey(seq), rw.rec); err != nil {
			return err
		}
		result.rewritten[i] = seq
	}
	if err := writeMarks(settled, work.marks, work.unmark); err != nil {
		return err
	}
	for _, seq := range work.deletes {
		if err := events.Delete(seqKey(seq)); err != nil {
			return err
		}
	}
	if err := moveAside(events, tx.Bucket(bucketDamaged), work.damaged); err != nil {
		return err
	}
	if err := s.ids.write(dedupe, uint64(now.UnixNano())); err != nil {
		return err
	}
	if sweepDue {
		return s.ids.sweep(dedupe, cutoff)
	}
	return nil
}

// storePuts appends each put's records under new sequence numbers. A
// record whose events are all repeats is not stored; a post record with
// some is stored with those marked settled.
func (s *recordStore) storePuts(events, settled *bolt.Bucket, puts []*putOp, result *commitResult, cutoff uint64) error {
	for i, op := range puts {
		result.stored[i], result.repeats[i], result.repeatBytes[i] = result.stored[i][:0], result.repeats[i][:0], 0
		first := 0 // the first event of the record, counted across the put
		for j, rec := range op.records {
			n := recordEvents(rec)
			var marks *openPost // the repeats among a post's events, settled
			repeated := 0
			for k, key := range op.keys[j] {
				if !s.ids.enabled() || !s.ids.remember(key, cutoff) {
					continue
				}
				result.repeats[i] = append(result.repeats[i], first+k)
				repeated++
				if marks == nil {
					marks = newOpenPost(0, n)
				}
				marks.settle(k)
			}
			first += n
			if repeated == n {
				result.repeatBytes[i] += int64(len(rec))
				continue
			}
			seq, err := events.NextSequence()
			if err != nil {
				return err
			}
			if err := events.Put(seqKey(seq), rec); err != nil {
				return err
			}
			result.stored[i] = append(result.stored[i], seq)
			if marks != nil {
				marks.seq, marks.size = seq, int64(len(rec))
				if err := settled.Put(seqKey(seq), sealMarks(marks.settled)); err != nil {
					return err
				}
				result.partRepeated = append(result.partRepeated, marks)
			}
		}
	}
	return nil
}

// settle tells the owner how the transaction went, then answers the puts.
// Failed: what followed deliveries waits for the next commit, and the puts
// are refused (their posts get 503).
func (s *recordStore) settle(work pendingWrites, result commitResult, err error) {
	if err != nil {
		s.mu.Lock()
		s.pending.deletes = append(s.pending.deletes, work.deletes...)
		s.pending.damaged = append(s.pending.damaged, work.damaged...)
		s.pending.rewrites = append(s.pending.rewrites, work.rewrites...)
		s.pending.unmark = append(s.pending.unmark, work.unmark...)
		s.mu.Unlock()
	} else {
		s.ids.commit()
	}
	s.owner.committed(work, result, err)
	for i, op := range work.puts {
		if err != nil {
			result.repeats[i] = nil
		}
		op.done(err, result.repeats[i])
	}
}

// growthStep is how far beyond what it needs the file grows when a commit
// runs past its end: a quarter of its size, from 64 KiB to 64 MiB. Each
// growth costs an fsync of the file's size, so a file that keeps growing
// grows in steps; bbolt's own step (16 MiB, with the map sized for a full
// queue) would make even an empty queue's file 16 MiB.
func growthStep(size int64) int {
	return int(min(max(size/4, 64<<10), 64<<20))
}

// appendOnly tunes a bucket whose keys only ever grow (sequence numbers,
// times): pages are filled whole before a new one is started, instead of
// bbolt's default of splitting at half, which for appends leaves every page
// half empty: twice the pages to write, and twice the file.
func appendOnly(b *bolt.Bucket) *bolt.Bucket {
	b.FillPercent = 1.0
	return b
}

func moveAside(from, to *bolt.Bucket, seqs []uint64) error {
	for _, seq := range seqs {
		k := seqKey(seq)
		if v := from.Get(k); v != nil {
			if err := to.Put(k, append([]byte(nil), v...)); err != nil {
				return err
			}
			if err := from.Delete(k); err != nil {
				return err
			}
		}
	}
	return nil
}

// sweepEvery is how often forgotten ids are swept; a little under the
// committer's one-second tick, so that no tick is skipped.
const sweepEvery = 900 * time.Millisecond
