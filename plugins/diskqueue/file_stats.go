package diskqueue

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// FileStats is what waits in a queue file.
type FileStats struct {
	Events  int       // events waiting to be delivered: a post record's not yet settled, and each event record
	Bytes   int64     // the size of the records holding them
	Oldest  time.Time // when the oldest was stored; zero when none waits
	Damaged int       // records moved aside after failing their checksum
}

// ReadFileStats opens a queue file read-only and counts what waits in it.
// A file in use by a running netcore-connect is locked: stop it, or read
// its metrics instead. A damaged file is reported as an error; `queue
// salvage` gets its events back.
func ReadFileStats(path string) (stats FileStats, err error) {
	defer func() {
		if r := recover(); r != nil { // bbolt panics on some damaged pages
			err = fmt.Errorf("%s is damaged (%v): run `netcore-connect queue salvage` to get its events back", path, r)
		}
	}()
	db, err := openReadOnly(path)
	if errors.Is(err, ErrLocked) {
		return stats, fmt.Errorf("%w: stop it, or read its metrics (netcore_queue_events) instead", err)
	}
	if err != nil {
		return stats, err
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		events := tx.Bucket(bucketEvents)
		if events == nil {
			return fmt.Errorf("%s is not a netcore-connect queue file (no events bucket)", path)
		}
		// Absent from files written before posts were stored whole.
		settled := tx.Bucket(bucketSettled)
		c := events.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			waiting := waitingEvents(settled, k, v)
			if waiting == 0 { // every event settled: the next start deletes it
				continue
			}
			if stats.Events == 0 {
				stats.Oldest, _ = recordStoredAt(v)
			}
			stats.Events += waiting
			stats.Bytes += int64(len(v))
		}
		if damaged := tx.Bucket(bucketDamaged); damaged != nil {
			stats.Damaged = damaged.Stats().KeyN
		}
		return nil
	})
	return stats, err
}

// ErrLocked is the error of a queue file that a running netcore-connect
// holds: bbolt locks the file for as long as its process runs.
var ErrLocked = errors.New("the file is locked: a running netcore-connect is using it")

// openReadOnly opens a queue file read-only, as `queue stats` and `queue
// salvage` do, under a shared lock: none is granted while a netcore-connect
// runs on the file (it holds bbolt's exclusive lock), so that waiting a
// second tells that one runs, and the error wraps ErrLocked.
func openReadOnly(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return db, nil
}

// waitingEvents is how many events of the record rec at key k wait: those
// of a post record not marked settled, as the queue counts them when it
// opens the file (loadMarks), which also ignores a mark of the wrong size.
func waitingEvents(settled *bolt.Bucket, k, rec []byte) int {
	n := recordEvents(rec)
	if !isPostRecord(rec) || settled == nil {
		return n
	}
	if marks, ok := openMarks(settled.Get(k), n); ok {
		n -= countSettled(marks, n)
	}
	return max(n, 0)
}
