package diskqueue

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// readAheadSize is how many records one read transaction fetches at most:
// the one wanted and those due after it, so that a transaction is not paid
// per event. How many bytes of them it fetches is bounded by the room the
// read path's budget has left (readMemory).
const readAheadSize = 128

// readReleaseStep is how many bytes a read for delivery copies between two
// releases of the file's mapped pages.
const readReleaseStep = 1 << 20

// recordLocked takes seq's record from memory (read ahead, or kept for its
// retry) and pins it. Without it, it says which records to read with it:
// those due next that are not read ahead (a retry is not, and the records
// due after it may well be: without this, every retry would read and copy
// the next 128 again), and how many bytes of them the budget has room for.
func (q *queue) recordLocked(seq uint64) (rec []byte, upcoming []uint64, room int64) {
	if rec = q.mem.take(seq); rec != nil {
		return rec, nil, 0
	}
	if room = q.mem.room(); room > 0 {
		for _, s := range q.sched.upcoming(readAheadSize) {
			if !q.mem.ahead.has(s) {
				upcoming = append(upcoming, s)
			}
		}
	}
	return nil, upcoming, room
}

// readAheadOf reads seq and the upcoming records that fit in room, in one
// transaction; it pins seq's record and returns it, and keeps the upcoming
// ones for their turn.
func (q *queue) readAheadOf(seq uint64, upcoming []uint64, room int64) ([]byte, error) {
	recs, err := q.store.read(append([]uint64{seq}, upcoming...), room)
	if err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.mem.pin(int64(len(recs[0])))
	for i, s := range upcoming {
		q.mem.readAhead(s, recs[i+1])
	}
	return recs[0], nil
}

// read copies records out of the file: the first always, the next ones in
// order while all of them together fit in room bytes; nil for one not
// copied or not there. Each record is a copy of its own, so that letting
// go of one frees it: with one copy for all, a single event out for
// delivery held every record read with it.
func (s *recordStore) read(seqs []uint64, room int64) ([][]byte, error) {
	recs := make([][]byte, len(seqs))
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		// The copies are read through the file's map, whose pages would
		// stay resident as a second copy until the committer's next
		// release: up to 45 MiB more RSS in a drain of 10 MB posts.
		release := mappedPagesReleaser(s.db, tx, readReleaseStep)
		for i, seq := range seqs {
			v := b.Get(seqKey(seq)) // in the map: valid in this transaction only
			if room -= int64(len(v)); i > 0 && room < 0 {
				break
			}
			if v != nil {
				recs[i] = bytes.Clone(v)
				release(len(v))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading records from %d: %w", seqs[0], err)
	}
	return recs, nil
}
