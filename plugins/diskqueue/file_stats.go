package diskqueue

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
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
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return stats, fmt.Errorf("opening %s: %w (is a netcore-connect using it?)", path, err)
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
