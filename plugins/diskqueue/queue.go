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

	bolt "go.etcd.io/bbolt"

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
	// explode splits post records into events; nil when the queue stores
	// events (netcore_explode before it).
	explode   *netcorepost.Exploder
	onDamaged func(seq uint64, err error)
	// onStats is told each second what waits: events, bytes, and how long
	// the oldest has waited.
	onStats func(events, bytes int64, oldest time.Duration)
}

// queue is a FIFO of records in a bbolt file.
//
// Durability: put returns (through done) only after the transaction holding
// the records is committed and fsync'd; a record is deleted only once its
// delivery is acknowledged. Everything between is on disk, so a crash at any
// moment loses nothing that put reported stored; records leased but not yet
// acknowledged are delivered again after a restart (at least once).
//
// One goroutine, the committer, makes every write. Whatever piles up while a
// commit is under way (new posts, acknowledged deletes) goes into the next
// transaction together: group commit, with no fixed delay to wait out.
type queue struct {
	// Set at open, read by all.
	db   *bolt.DB
	conf queueConfig

	// Guarded by mu: what readers and writers share.
	mu      sync.Mutex
	pending pendingWrites // waiting for the committer
	ready   seqRuns       // committed and not leased, oldest first
	ahead   recordCache   // records of ready read before their turn
	retries retryHeap
	kept    keptRetries          // records of failed deliveries, for their retry
	mem     readMemory           // the bytes of records held for reading, and their bound
	posts   map[uint64]*openPost // post records being handed out or partly settled
	handing *openPost            // the post whose events are handed out next
	toHand  []*openPost          // posts opened while another was handed out
	events  int64                // stored and reserved
	bytes   int64
	leased  int            // events handed out and not yet settled
	window  deliveryWindow // bounds leased; narrows with failures, probes in an outage
	ended   bool           // no more reads: the input ended or the queue closed
	closed  bool

	// Signals, safe from any goroutine.
	wakeRead      chan struct{}
	wakeWrite     chan struct{}
	stop          chan struct{}
	committerDone chan struct{}
	closeOnce     sync.Once

	// The committer's alone (commit.go).
	ids       *idIndex
	lastSweep time.Time
}

type pendingWrites struct {
	puts     []*putOp
	deletes  []uint64
	damaged  []uint64
	rewrites []rewrite   // failed events of posts, to be written on their own
	marked   []*openPost // posts whose settled marks changed
	unmark   []uint64    // deleted posts, whose marks go too

	marks map[uint64][]byte // the committer's copy of the marks to write
}

// putOp is a post's records waiting for the committer.
type putOp struct {
	records [][]byte
	keys    [][]eventKey // the dedupe keys of each record's events; none to keep repeats
	events  int64
	size    int64
	claims  []*claim.Claim // taken when the commit that writes it starts
	done    func(err error, repeats []int)
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
		db:            db,
		conf:          conf,
		wakeRead:      make(chan struct{}, 1),
		wakeWrite:     make(chan struct{}, 1),
		stop:          make(chan struct{}),
		committerDone: make(chan struct{}),
		kept:          keptRetries{max: conf.readMemory / keptShare},
		mem:           readMemory{limit: conf.readMemory},
		posts:         map[uint64]*openPost{},
		window:        newDeliveryWindow(),
		ids:           newIDIndex(int64(conf.dedupeWindow), int(conf.dedupeMaxIDs)),
	}
	if err := q.load(); err != nil {
		q.ids.close()
		db.Close()
		return nil, fmt.Errorf("queue file %s: %w", conf.path, err)
	}
	q.reportStats()
	go q.commitLoop()
	return q, nil
}

// stats reports what the queue holds.
func (q *queue) stats() (events, bytes int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.events, q.bytes
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
	q.pending.puts = append(q.pending.puts, &putOp{records: records, keys: keys, events: events, size: size, claims: claims, done: done})
	signal(q.wakeWrite)
	return nil
}

// quarantine moves a damaged record aside, where it is kept but never
// delivered.
func (q *queue) quarantine(seq uint64, rec []byte, cause error) {
	q.mu.Lock()
	q.leased--
	q.unpinLocked(int64(len(rec)))
	events := int64(recordEvents(rec))
	if p := q.posts[seq]; p != nil {
		events = int64(p.waiting)
		delete(q.posts, seq)
		q.pending.unmark = append(q.pending.unmark, seq)
	}
	q.events -= min(events, q.events) // a damaged count is not believed past what waits
	q.bytes -= int64(len(rec))
	q.pending.damaged = append(q.pending.damaged, seq)
	signal(q.wakeWrite)
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
		close(q.stop)
		select {
		case <-q.committerDone:
			err = q.db.Close()
		case <-ctx.Done():
			// The file is still closed, and its lock released, once the
			// last commit ends.
			go func() { <-q.committerDone; _ = q.db.Close() }()
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
