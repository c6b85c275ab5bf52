package diskqueue

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A queue file written before the dedupe bucket kept its ids in the expiry
// bucket, one key per id: they are moved into blocks at open, so repeats
// of events stored before the upgrade are still removed.
func TestQueueKeepsIDsOfAFileWrittenBeforeBlocks(t *testing.T) {
	c := testConfig(t)
	if err := os.MkdirAll(filepath.Dir(c.path), 0o750); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(c.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := uint64(time.Now().UnixNano())
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketExpiry)
		if err != nil {
			return err
		}
		for _, id := range []string{"id-a", "0123456789abcdef0123456789abcdef"} {
			if err := b.Put(append(binary.BigEndian.AppendUint64(nil, at), id...), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || db.Close() != nil {
		t.Fatal(err)
	}

	q := open(t, c)
	if err := store(t, q, []string{"a", "b", "c"}, []string{"id-a", "0123456789abcdef0123456789abcdef", "id-c"}); err != nil {
		t.Fatal(err)
	}
	if events, _ := q.stats(); events != 1 {
		t.Errorf("%d events stored, want 1: the two ids from before the upgrade are repeats", events)
	}
	if err := q.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	db, err = bolt.Open(c.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketExpiry) != nil {
			t.Error("the expiry bucket is still there after the move")
		}
		if n := tx.Bucket(bucketDedupe).Stats().KeyN; n != 2 {
			t.Errorf("%d blocks of ids, want 2: the moved ids and the new one", n)
		}
		return nil
	})
}

// Ids are forgotten a block at a time, oldest first, once more than
// dedupe_max_ids are held: a forgotten id is stored again, a kept one is not.
func TestQueueForgetsTheOldestBlocksBeyondMaxIDs(t *testing.T) {
	c := testConfig(t)
	c.dedupeMaxIDs = 2
	q := open(t, c)
	for _, id := range []string{"id-1", "id-2", "id-3"} {
		if err := store(t, q, []string{id}, []string{id}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for blocks(t, q) > 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // the committer sweeps once a second
	}
	if n := blocks(t, q); n != 2 {
		t.Fatalf("%d blocks of ids on disk, want 2", n)
	}
	if err := store(t, q, []string{"1", "3"}, []string{"id-1", "id-3"}); err != nil {
		t.Fatal(err)
	}
	if events, _ := q.stats(); events != 4 {
		t.Errorf("%d events stored, want 4: id-1 forgotten and stored again, id-3 a repeat", events)
	}
}

// Past dedupe_max_ids, ids are forgotten in every commit, not once a second:
// at a burst of 70,000 events a second, a sweep a second (at most 10,000
// ids) let the table grow past the bound without end, to 786,000 ids for a
// bound of 500,000 within 12 s.
func TestQueueHoldsMaxIDsAtAnyRate(t *testing.T) {
	c := testConfig(t)
	c.dedupeMaxIDs, c.maxEvents = 1000, 100_000
	c.maxBytes = 64 << 20
	q := open(t, c)
	start := time.Now()
	for b := range 60 {
		bodies, ids := make([]string, 100), make([]string, 100)
		for i := range ids {
			ids[i] = fmt.Sprintf("id-%d-%d", b, i)
			bodies[i] = ids[i]
		}
		if err := store(t, q, bodies, ids); err != nil {
			t.Fatal(err)
		}
	}
	q.mu.Lock()
	held := q.store.ids.ids.len()
	q.mu.Unlock()
	// One commit's ids may wait for the next commit's sweep.
	if held > 1100 {
		t.Errorf("%d ids held in memory after storing 6,000 in %s, want at most dedupe_max_ids (1,000) and one commit's", held, time.Since(start).Round(time.Millisecond))
	}
}

// blocks counts the blocks of ids in the queue's file.
func blocks(t *testing.T, q *queue) int {
	t.Helper()
	var n int
	if err := q.store.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketDedupe).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}
