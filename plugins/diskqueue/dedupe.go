package diskqueue

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// eventKey is an event id as the index keeps it: 16 bytes. The ids of
// netcore_explode are 32 hex digits and are kept as the 16 bytes they spell;
// any other id is kept as the first 16 bytes of its SHA-256.
type eventKey [16]byte

func keyOf(id string) eventKey {
	var k eventKey
	if len(id) == 2*len(k) {
		if _, err := hex.Decode(k[:], []byte(id)); err == nil {
			return k
		}
	}
	sum := sha256.Sum256([]byte(id))
	copy(k[:], sum[:len(k)])
	return k
}

// idIndex remembers the ids of events stored within the dedupe window, so
// that a repeat is acknowledged without being stored again.
//
// On disk the ids are kept in blocks, one per commit that stored new ids,
// in the dedupe bucket: key stored-at (8 bytes) + block number (8 bytes),
// value the ids, 16 bytes each. A commit writes one record however many
// events it holds, always at the end of the B+tree (time-ordered keys), so
// the cost of a post grows linearly with its size; forgetting the oldest
// ids deletes whole blocks from the start. In memory an idTable from the
// id to the second it was stored (outside the Go heap) answers lookups,
// rebuilt from the bucket when the queue opens; it holds at most about
// maxIDs, oldest blocks forgotten first.
//
// Only the committer goroutine uses it. Changes made inside a transaction
// are staged and applied to the map only once the transaction commits.
type idIndex struct {
	window int64 // nanoseconds; 0 turns repeats detection off
	maxIDs int
	ids    *idTable  // id → when stored (that of its block), to the second
	blocks []idBlock // on disk, oldest first
	held   int       // ids in blocks, counting one stored again twice

	staged     map[eventKey]struct{} // stored by the transaction under way
	stagedIDs  []byte                // the same, in order: its block
	stagedSeq  uint64                // the number of that block, once written
	stagedAt   uint64
	forgotten  int // blocks swept by the transaction under way, from the start
	forgetting []forgottenID
}

// idBlock is one commit's ids on disk.
type idBlock struct {
	at, seq uint64
	n       int
}

type forgottenID struct {
	id eventKey
	at uint64
}

func newIDIndex(window int64, maxIDs int) *idIndex {
	return &idIndex{window: window, maxIDs: maxIDs, ids: newIDTable(), staged: map[eventKey]struct{}{}}
}

func (x *idIndex) enabled() bool { return x.window > 0 }

// load reads the blocks of ids from the dedupe bucket.
func (x *idIndex) load(dedupe *bolt.Bucket) error {
	return dedupe.ForEach(func(k, v []byte) error {
		if len(k) != 16 || len(v)%len(eventKey{}) != 0 {
			return fmt.Errorf("%w: dedupe record of %d+%d bytes", errDamaged, len(k), len(v))
		}
		b := idBlock{at: binary.BigEndian.Uint64(k), seq: binary.BigEndian.Uint64(k[8:]), n: len(v) / len(eventKey{})}
		x.blocks = append(x.blocks, b)
		x.held += b.n
		for i := 0; i < len(v); i += len(eventKey{}) {
			x.ids.set(eventKey(v[i:i+len(eventKey{})]), b.at)
		}
		return nil
	})
}

// migrateExpiry moves the ids of a queue file written before blocks (the expiry
// bucket: stored-at + id → nothing) into blocks, one per stored-at time.
func migrateExpiry(tx *bolt.Tx) error {
	old := tx.Bucket(bucketExpiry)
	if old == nil {
		return nil
	}
	dedupe := tx.Bucket(bucketDedupe)
	var at uint64
	var ids []byte
	flush := func() error {
		if len(ids) == 0 {
			return nil
		}
		seq, err := dedupe.NextSequence()
		if err != nil {
			return err
		}
		err = dedupe.Put(blockKey(at, seq), ids)
		ids = nil
		return err
	}
	err := old.ForEach(func(k, _ []byte) error {
		if len(k) < 8 {
			return nil
		}
		if t := binary.BigEndian.Uint64(k); t != at {
			if err := flush(); err != nil {
				return err
			}
			at = t
		}
		id := keyOf(string(k[8:]))
		ids = append(ids, id[:]...)
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return fmt.Errorf("moving the ids of the expiry bucket: %w", err)
	}
	return tx.DeleteBucket(bucketExpiry)
}

// begin starts staging a transaction's changes.
func (x *idIndex) begin() {
	clear(x.staged)
	x.stagedIDs = x.stagedIDs[:0]
	x.forgotten = 0
	x.forgetting = x.forgetting[:0]
}

// remember stages k as stored, unless it was stored after cutoff (within
// the window) or earlier in this transaction: then it is a repeat. A key
// last stored before the window is remembered anew.
func (x *idIndex) remember(k eventKey, cutoff uint64) (repeat bool) {
	if _, ok := x.staged[k]; ok {
		return true
	}
	if at, ok := x.ids.get(k); ok && at >= cutoff {
		return true
	}
	x.staged[k] = struct{}{}
	x.stagedIDs = append(x.stagedIDs, k[:]...)
	return false
}

// write stores the staged ids as one block, stored at now.
func (x *idIndex) write(dedupe *bolt.Bucket, now uint64) error {
	if len(x.stagedIDs) == 0 {
		return nil
	}
	seq, err := dedupe.NextSequence()
	if err != nil {
		return err
	}
	x.stagedSeq, x.stagedAt = seq, now
	return dedupe.Put(blockKey(now, seq), x.stagedIDs)
}

// overBound says whether more than maxIDs ids are held.
func (x *idIndex) overBound() bool { return x.held > x.maxIDs }

// sweepNeeded says whether there are ids to forget: a block stored before
// cutoff, or more than maxIDs.
func (x *idIndex) sweepNeeded(cutoff uint64) bool {
	return len(x.blocks) > 0 && (x.blocks[0].at < cutoff || x.held > x.maxIDs)
}

// maxSweep bounds the ids forgotten in one commit, so that a sweep after a
// long pause does not make one huge transaction; the next sweeps go on.
// Expired ids left over meanwhile are still not taken for repeats
// (remember compares times).
const maxSweep = 10000

// sweep forgets the blocks stored before cutoff, and the oldest beyond
// maxIDs, about maxSweep ids per transaction (at least one block).
func (x *idIndex) sweep(dedupe *bolt.Bucket, cutoff uint64) error {
	held := x.held + len(x.staged)
	for _, b := range x.blocks {
		if len(x.forgetting) >= maxSweep || (b.at >= cutoff && held <= x.maxIDs) {
			break
		}
		k := blockKey(b.at, b.seq)
		v := dedupe.Get(k)
		for i := 0; i+len(eventKey{}) <= len(v); i += len(eventKey{}) {
			x.forgetting = append(x.forgetting, forgottenID{eventKey(v[i : i+len(eventKey{})]), b.at})
		}
		if err := dedupe.Delete(k); err != nil {
			return err
		}
		x.forgotten++
		held -= b.n
	}
	return nil
}

// commit applies the staged changes once their transaction is on disk.
func (x *idIndex) commit() {
	for _, f := range x.forgetting {
		x.ids.deleteIf(f.id, f.at) // unless stored again since
	}
	for _, b := range x.blocks[:x.forgotten] {
		x.held -= b.n
	}
	x.blocks = x.blocks[x.forgotten:]
	if len(x.stagedIDs) > 0 {
		for k := range x.staged {
			x.ids.set(k, x.stagedAt)
		}
		x.blocks = append(x.blocks, idBlock{at: x.stagedAt, seq: x.stagedSeq, n: len(x.staged)})
		x.held += len(x.staged)
	}
	if cap(x.stagedIDs) > 1<<20 {
		// A big post's block and staging map are not kept for the next.
		x.stagedIDs, x.staged = nil, map[eventKey]struct{}{}
	}
}

// close frees the table; the index is unusable after.
func (x *idIndex) close() { x.ids.free() }

func blockKey(at, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 16), at), seq)
}
