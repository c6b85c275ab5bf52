package diskqueue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/claim"
	"github.com/netcore-connect/netcore-connect/internal/durabledir"
	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
)

// Buckets of the queue file.
var (
	bucketEvents  = []byte("events")  // sequence (8 bytes) → record
	bucketDamaged = []byte("damaged") // records whose checksum failed, kept for inspection
	bucketDedupe  = []byte("dedupe")  // stored at (8 bytes) + block number (8 bytes) → event ids: see idIndex
	// ids as files written before the dedupe bucket kept them: stored at
	// (8 bytes) + event id → nothing; moved into dedupe at open
	bucketExpiry = []byte("expiry")
)

// ErrFull is returned by put when the queue holds max_events or max_bytes.
var ErrFull = errors.New("queue is full")

var errClosed = errors.New("queue is closed")

// queueConfig bounds and tunes a queue.
type queueConfig struct {
	path         string
	maxBytes     int64
	maxEvents    int64
	dedupeWindow time.Duration // 0: repeats are not removed
	dedupeMaxIDs int64
	retryInitial time.Duration
	retryMax     time.Duration
	checkOnStart bool
	readMemory   int64 // the bytes of records the read path may hold (readMemory)
	// retainAfterAck keeps settled records in the file this long (retain.go)
	retainAfterAck time.Duration
	// explode splits post records into events; nil when the queue stores
	// events (netcore_explode before it).
	explode   *netcorepost.Exploder
	onDamaged func(seq uint64, err error)
	// onStats is told each second what waits: events, bytes, and how long
	// the oldest has waited.
	onStats func(events, bytes int64, oldest time.Duration)
	// onRepublished counts events handed out again (republish.go), under
	// the queue's mutex.
	onRepublished func(events int)
}

// queue is a FIFO of records in a bbolt file, and the coordinator between
// its parts and Benthos's buffer (diskQueue): the store writes and reads
// the file, the schedule says what goes out next, the read memory bounds
// the records held, and the post cursors hand a post's events out one by
// one. See the package doc for the guarantees.
//
// Its mutex guards the schedule, the read memory, the cursors and the
// counts; the store guards its own writes, and is called under this mutex,
// never the other way round.
type queue struct {
	conf  queueConfig
	store *recordStore

	mu    sync.Mutex
	sched schedule
	mem   readMemory  // the bytes of records held for reading, and their bound
	posts postCursors // post records being handed out or partly settled
	// retained are records settled and kept for retainAfterAck
	retained retainedRecords
	events   int64 // stored and reserved
	bytes    int64
	ended    bool // no more reads: the input ended or the queue closed
	closed   bool

	wakeRead  chan struct{} // safe from any goroutine
	closeOnce sync.Once
}

func openQueue(conf queueConfig) (*queue, error) {
	if err := os.MkdirAll(filepath.Dir(conf.path), 0o750); err != nil {
		return nil, fmt.Errorf("creating folder for queue file %s: %w", conf.path, err)
	}
	db, err := openDB(conf.path, conf.maxBytes)
	if err != nil {
		return nil, fmt.Errorf("opening queue file %s: %w", conf.path, err)
	}
	// bbolt fsyncs the file, never its name: the folders holding it are
	// synced here, before any event is acknowledged, or a power cut could
	// take the whole file away.
	if err := durabledir.SyncChain(filepath.Dir(conf.path)); err != nil {
		db.Close()
		return nil, fmt.Errorf("queue file %s: %w", conf.path, err)
	}
	q := &queue{
		conf:     conf,
		sched:    newSchedule(conf.retryInitial, conf.retryMax),
		mem:      newReadMemory(conf.readMemory),
		posts:    newPostCursors(),
		retained: retainedRecords{after: conf.retainAfterAck},
		wakeRead: make(chan struct{}, 1),
	}
	q.store = newStore(db, &q.conf, q)
	if err := q.store.load(q.posts.add, q.loaded); err != nil {
		q.store.ids.close()
		db.Close()
		return nil, fmt.Errorf("queue file %s: %w", conf.path, err)
	}
	q.reportStats()
	go q.store.commitLoop()
	return q, nil
}

// loaded counts a record found waiting at open.
func (q *queue) loaded(seq uint64, rec []byte) {
	q.sched.committed(seq)
	if p := q.posts.get(seq); p != nil {
		q.events += int64(p.waiting)
	} else {
		q.events += int64(recordEvents(rec))
	}
	q.bytes += int64(len(rec))
}

// put stores event records and calls done once they are on disk, or with
// the error that kept them off it; repeats are the records not stored again
// because their id ("" for none) was stored within the dedupe window. A
// full or closed queue fails at once.
func (q *queue) put(records [][]byte, ids []string, claims []*claim.Claim, done func(err error, repeats []int)) error {
	keys := make([][]eventKey, len(records))
	for i, id := range ids {
		if id != "" {
			keys[i] = []eventKey{keyOf(id)}
		}
	}
	return q.putRecords(records, keys, claims, done)
}

// putRecords stores records of either kind; keys are the dedupe keys of
// each record's events, and repeats count events across all records.
func (q *queue) putRecords(records [][]byte, keys [][]eventKey, claims []*claim.Claim, done func(err error, repeats []int)) error {
	var size, events int64
	for _, r := range records {
		size += int64(len(r))
		events += int64(recordEvents(r))
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return errClosed
	}
	if q.events+events > q.conf.maxEvents || q.bytes+size > q.conf.maxBytes {
		return fmt.Errorf("%w: %d events, %d bytes waiting (limits %d events, %d bytes)",
			ErrFull, q.events, q.bytes, q.conf.maxEvents, q.conf.maxBytes)
	}
	q.events += events
	q.bytes += size
	q.store.put(&putOp{records: records, keys: keys, events: events, size: size, claims: claims, done: done})
	return nil
}

// quarantine moves a damaged record aside, where it is kept but never
// delivered.
func (q *queue) quarantine(seq uint64, rec []byte, cause error) {
	q.mu.Lock()
	q.sched.leased--
	q.mem.unpin(int64(len(rec)))
	events := int64(recordEvents(rec))
	if p := q.posts.get(seq); p != nil {
		events = int64(p.waiting)
		q.posts.close(p)
		q.store.setAsidePost(seq)
	} else {
		q.store.setAside(seq)
	}
	q.events -= min(events, q.events) // a damaged count is not believed past what waits
	q.bytes -= int64(len(rec))
	q.mu.Unlock()
	if q.conf.onDamaged != nil {
		q.conf.onDamaged(seq, cause)
	}
}

// endReads makes next return at once: the pipeline is stopping. What waits
// stays on disk for the next start.
func (q *queue) endReads() {
	q.mu.Lock()
	q.ended = true
	q.mu.Unlock()
	signal(q.wakeRead)
}

// close commits what is pending, then closes the file. Safe to call twice.
func (q *queue) close(ctx context.Context) error {
	var err error
	q.closeOnce.Do(func() {
		q.mu.Lock()
		q.closed, q.ended = true, true
		q.mu.Unlock()
		signal(q.wakeRead)
		var finished bool
		if finished, err = q.store.close(ctx); !finished {
			// The file is still closed, and its lock released, once the
			// last commit ends.
			err = fmt.Errorf("closing queue: pending writes not yet committed: %w", ctx.Err())
		}
	})
	return err
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }

// signal wakes a waiter without blocking; one pending wake is enough.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
