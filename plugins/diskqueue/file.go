package diskqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// openDB opens the bbolt file. bbolt panics on some damaged pages; that
// is turned into an error here, so that the start stops with a message.
func openDB(path string, maxBytes int64) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w (%v)", errDamaged, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      2 * time.Second,
		FreelistType: bolt.FreelistMapType,
		PageSize:     16 << 10,
		// The map is sized at open for a full queue, so that bbolt does not
		// remap while the file grows: a remap copies every key and value of
		// the commit under way to the heap (a big post's whole 50 MB, again
		// at each doubling) and waits for every read transaction to end. The
		// map is address space only; RSS counts the pages read.
		InitialMmapSize: int(min(max(2*maxBytes, 256<<20), 16<<30)),
		// The free list is kept in the file (the default): rebuilding it on
		// open reads every page in a goroutine of bbolt's own, where a
		// damaged page would crash the process instead of stopping the start.
	})
	if err == nil {
		db.AllocSize = growthStep(0) // see growthStep; set again by each commit
	}
	if errors.Is(err, bolterrors.ErrTimeout) {
		err = fmt.Errorf("%w: the file is locked, is another netcore-connect using it?", err)
	}
	return db, err
}

var errDamaged = errors.New("the file is damaged; move it aside to start with an empty queue (its events are then not delivered)")

// load creates the buckets and reads what waits for delivery: each post
// some of whose events are settled (marked, first), then each record
// (waiting, in order). With
// checkOnStart it first reads every page of the file and checks its
// structure, so that damage stops the start instead of surfacing later.
func (s *recordStore) load(marked func(*openPost), waiting func(seq uint64, rec []byte)) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w (%v)", errDamaged, r)
		}
	}()
	if s.conf.checkOnStart {
		if err := s.check(); err != nil {
			return err
		}
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketEvents, bucketDamaged, bucketDedupe, bucketSettled} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("creating bucket %s: %w", name, err)
			}
		}
		if err := loadMarks(tx, marked); err != nil {
			return err
		}
		posts := 0
		release := mappedPagesReleaser(s.db, tx, releaseStep)
		err := tx.Bucket(bucketEvents).ForEach(func(k, v []byte) error {
			release(len(v))
			waiting(binary.BigEndian.Uint64(k), v)
			if isPostRecord(v) {
				posts++
			}
			return nil
		})
		if err != nil {
			return err
		}
		if posts > 0 && s.conf.explode == nil {
			return fmt.Errorf("%d of its records are whole posts, stored by a disk_queue with explode set: set explode on this disk_queue too, or they cannot be split into events", posts)
		}
		if err := migrateExpiry(tx); err != nil {
			return err
		}
		return s.ids.load(tx.Bucket(bucketDedupe))
	})
}

// check reads every key and value, here, where a panic of bbolt on a
// damaged page is recovered by load; then bbolt's own check compares the
// free list with the pages in use. (That check runs in a goroutine of its
// own, where a panic could not be recovered: the walk first makes sure it
// will not meet a page it cannot read.)
func (s *recordStore) check() error {
	return s.db.View(func(tx *bolt.Tx) error {
		release := mappedPagesReleaser(s.db, tx, releaseStep)
		err := tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			return b.ForEach(func(_, v []byte) error { release(len(v)); return nil })
		})
		if err != nil {
			return err
		}
		var damage []error
		stopReleasing := releaseWhileChecking(s.db, tx)
		for err := range tx.Check() {
			damage = append(damage, err)
		}
		stopReleasing()
		if len(damage) > 0 {
			return fmt.Errorf("%w: %w", errDamaged, errors.Join(damage...))
		}
		return nil
	})
}

// releaseStep is how many bytes of records a walk of the whole file reads
// between two releases of its mapped pages.
const releaseStep = 16 << 20

// mappedPagesReleaser returns a func that a reader of the file calls with
// the size of each record it read, and that lets go of the file's mapped
// pages every step bytes. Without it, the reads at start (a check of
// every page, then the records that wait) kept the whole file resident:
// 700-875 MiB of RSS after a restart on a full queue.
func mappedPagesReleaser(db *bolt.DB, tx *bolt.Tx, step int) func(read int) {
	pending := 0
	return func(read int) {
		if pending += read; pending >= step {
			releaseMappedPages(db, tx)
			pending = 0
		}
	}
}

// releaseWhileChecking lets go of the file's mapped pages every 200 µs until
// the returned func is called, and once more then: bbolt's Check reads every
// page in a goroutine of its own, where no walk of ours can count them
// (measured on a file of 650 MB: 191 MiB of RSS before the check, 679 MiB
// after it without this, a peak of 215 MiB with it).
func releaseWhileChecking(db *bolt.DB, tx *bolt.Tx) (stop func()) {
	if !releasesMappedPages {
		return func() {}
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				releaseMappedPages(db, tx)
				return
			case <-tick.C:
				releaseMappedPages(db, tx)
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
