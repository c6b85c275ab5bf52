package diskqueue

import (
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// idIndex remembers the ids of events stored within the dedupe window, so
// that a repeat is acknowledged without being stored again.
//
// On disk the ids live in the expiry bucket only, keyed by stored-at time
// then id: time-ordered keys make every write an append at the end of the
// B+tree (few dirty pages per commit) and make forgetting the oldest a scan
// from the start. Lookups go to a map of the same ids, rebuilt from the
// bucket when the queue opens, and bounded by maxIDs.
//
// Only the committer goroutine uses it. Changes made inside a transaction
// are staged and applied to the map only once the transaction commits.
type idIndex struct {
	window int64 // nanoseconds; 0 turns repeats detection off
	maxIDs int
	stored map[string]uint64 // id → stored at (unix nanos)

	staged    map[string]uint64 // stored by the transaction under way
	forgotten []expiryKey       // swept by the transaction under way
}

type expiryKey struct {
	at uint64
	id string
}

func newIDIndex(window int64, maxIDs int) *idIndex {
	return &idIndex{window: window, maxIDs: maxIDs, stored: map[string]uint64{}, staged: map[string]uint64{}}
}

func (x *idIndex) enabled() bool { return x.window > 0 }

// load reads the ids from the expiry bucket.
func (x *idIndex) load(expiry *bolt.Bucket) error {
	return expiry.ForEach(func(k, _ []byte) error {
		x.stored[string(k[8:])] = binary.BigEndian.Uint64(k)
		return nil
	})
}

// begin starts staging a transaction's changes.
func (x *idIndex) begin() {
	clear(x.staged)
	x.forgotten = x.forgotten[:0]
}

// remember records id as stored at now, unless it was stored after cutoff
// (within the window): then it is a repeat and nothing is written. An id
// last stored before the window is remembered anew.
func (x *idIndex) remember(expiry *bolt.Bucket, id string, now, cutoff uint64) (repeat bool, err error) {
	if _, ok := x.staged[id]; ok {
		return true, nil
	}
	if at, ok := x.stored[id]; ok {
		if at >= cutoff {
			return true, nil
		}
		if err := expiry.Delete(expiryKeyOf(at, id)); err != nil {
			return false, err
		}
	}
	x.staged[id] = now
	return false, expiry.Put(expiryKeyOf(now, id), nil)
}

// sweepNeeded says whether there are ids to forget: one stored before
// cutoff, or more than maxIDs.
func (x *idIndex) sweepNeeded(db *bolt.DB, cutoff uint64) bool {
	if len(x.stored) > x.maxIDs {
		return true
	}
	needed := false
	_ = db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketExpiry).Cursor().First()
		needed = k != nil && binary.BigEndian.Uint64(k) < cutoff
		return nil
	})
	return needed
}

// sweep forgets ids stored before cutoff, and the oldest beyond maxIDs, at
// most maxSweep of them per transaction.
func (x *idIndex) sweep(expiry *bolt.Bucket, cutoff uint64) error {
	excess := len(x.stored) + len(x.staged) - x.maxIDs
	// Keys are collected first: deleting under a moving cursor skips keys.
	c := expiry.Cursor()
	for k, _ := c.First(); k != nil && len(x.forgotten) < maxSweep; k, _ = c.Next() {
		at := binary.BigEndian.Uint64(k)
		if at >= cutoff && len(x.forgotten) >= excess {
			break
		}
		x.forgotten = append(x.forgotten, expiryKey{at: at, id: string(k[8:])})
	}
	for _, f := range x.forgotten {
		if err := expiry.Delete(expiryKeyOf(f.at, f.id)); err != nil {
			return err
		}
	}
	return nil
}

// commit applies the staged changes once their transaction is on disk.
func (x *idIndex) commit() {
	for _, f := range x.forgotten {
		if x.stored[f.id] == f.at { // not stored again since
			delete(x.stored, f.id)
		}
	}
	for id, at := range x.staged {
		x.stored[id] = at
	}
}

func expiryKeyOf(at uint64, id string) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(id)), at), id...)
}
