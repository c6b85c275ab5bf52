package diskqueue

import (
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	bolt "go.etcd.io/bbolt"

	"github.com/netcore-connect/netcore-connect/internal/claim"
	"github.com/netcore-connect/netcore-connect/internal/durabledir"
	"github.com/netcore-connect/netcore-connect/plugins/netcore"
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
	// explode splits post records into events; nil when the queue stores
	// events (netcore_explode before it).
	explode   *netcore.Exploder
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
	mu        sync.Mutex
	pending   pendingWrites     // waiting for the committer
	ready     seqRuns           // committed and not leased, oldest first
	readAhead map[uint64][]byte // records of ready read before their turn
	retries   retryHeap
	kept      keptRetries          // records of failed deliveries, for their retry
	posts     map[uint64]*openPost // post records being handed out or partly settled
	handing   *openPost            // the post whose events are handed out next
	toHand    []*openPost          // posts opened while another was handed out
	events    int64                // stored and reserved
	bytes     int64
	leased    int            // events handed out and not yet settled
	window    deliveryWindow // bounds leased; narrows with failures, probes in an outage
	ended     bool           // no more reads: the input ended or the queue closed
	closed    bool

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

// lease is an event handed out for delivery, as its message: an event
// record, or one event of a post record.
type lease struct {
	seq      uint64
	attempts int
	probe    bool // handed out while deliveries were failing
	size     int64
	rec      []byte // an event record as read; msg holds its body
	msg      *service.Message
	post     *openPost // set for an event of a post record
	index    int       // its place in the post, across its panels
	inPanel  int       // its place in its panel
	panel    string    // its panel
	raw      []byte    // its JSON, as stored
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
		readAhead:     map[uint64][]byte{},
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

// next blocks until an event can be delivered, and leases it.
func (q *queue) next(ctx context.Context) (*lease, error) {
	for {
		q.mu.Lock()
		if q.ended {
			q.mu.Unlock()
			return nil, errClosed
		}
		seq, attempts, event, wait, ok := q.popLocked(time.Now())
		if event != nil {
			q.leased++
			q.mu.Unlock()
			if q.explodeLease(event) {
				return event, nil
			}
			continue
		}
		probe := q.window.probing()
		var rec []byte
		var upcoming []uint64
		if ok {
			q.leased++
			rec = q.readAhead[seq]
			delete(q.readAhead, seq)
			if rec == nil {
				rec = q.kept.take(seq)
			}
			if rec == nil {
				// A retry is not read ahead; the records due after it
				// may well be: read only those that are not, or every
				// retry would read and copy the next 128 again.
				for _, s := range q.ready.appendFirst(nil, readAheadSize) {
					if _, have := q.readAhead[s]; !have {
						upcoming = append(upcoming, s)
					}
				}
			}
		}
		q.mu.Unlock()
		if !ok {
			if !q.waitForWork(ctx, wait) {
				return nil, ctx.Err()
			}
			continue
		}
		l := &lease{seq: seq, attempts: attempts, probe: probe}
		if rec == nil {
			var err error
			if rec, err = q.readAheadOf(seq, upcoming); err != nil {
				q.ack(l, err) // the file could not be read: try again later
				return nil, err
			}
		}
		if rec == nil { // cannot happen while we hold the lease
			q.release()
			continue
		}
		if isPostRecord(rec) {
			// Its events are handed out one by one, each under a lease
			// of its own: this one is given back.
			if err := q.openRecord(seq, rec); err != nil {
				q.quarantine(seq, rec, err)
			} else {
				q.release()
			}
			continue
		}
		l.size, l.rec = int64(len(rec)), rec
		var err error
		if l.msg, err = decodeRecord(rec); err != nil {
			q.quarantine(seq, rec, err)
			continue
		}
		return l, nil
	}
}

// release gives back a lease that handed nothing out.
func (q *queue) release() {
	q.mu.Lock()
	q.leased--
	q.mu.Unlock()
	signal(q.wakeRead)
}

// waitForWork waits for a wake-up, or until wait has passed when it is set.
// It says false when ctx ended first.
func (q *queue) waitForWork(ctx context.Context, wait time.Duration) bool {
	var due <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		due = t.C
	}
	select {
	case <-q.wakeRead:
	case <-due:
	case <-ctx.Done():
		return false
	}
	return true
}

// popLocked takes what is due next: retries whose time has come first
// (they are the oldest), then the next event of the post being handed out,
// then the next record. Without one it says how long until the next retry
// is due (0: none waits).
func (q *queue) popLocked(now time.Time) (seq uint64, attempts int, event *lease, wait time.Duration, ok bool) {
	if wait, ok := q.window.admit(q.leased, now, q.conf.retryMax); !ok {
		return 0, 0, nil, wait, false
	}
	if len(q.retries) > 0 {
		if r := q.retries[0]; !r.due.After(now) {
			heap.Pop(&q.retries)
			return r.seq, r.attempts, nil, 0, true
		}
		wait = q.retries[0].due.Sub(now)
	}
	if event, ok := q.takeFromPostLocked(); ok {
		return 0, 0, event, 0, true
	}
	if seq, ok := q.ready.pop(); ok {
		return seq, 0, nil, 0, true
	}
	return 0, 0, nil, wait, false
}

// ack settles a lease: a delivered event record is deleted, a delivered
// event of a post marked settled (its post deleted with its last event); a
// failed event comes back after a backoff that doubles with each of its attempts, up to
// retryMax, which it returns. Either way the delivery window learns of it
// (deliveryWindow).
func (q *queue) ack(l *lease, err error) (retryAt time.Time) {
	var retry []byte // the record a failed event of a post is retried from
	if err != nil && l.post != nil {
		var damage error
		if retry, damage = q.retryRecord(l); damage != nil {
			// It was made into a message once: only damage stops it now.
			q.setAside(l, damage)
			return time.Time{}
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.leased--
	now := time.Now()
	if err == nil {
		q.events--
		if l.post != nil {
			q.settlePostEventLocked(l.post, l.index)
		} else {
			q.bytes -= l.size
			q.pending.deletes = append(q.pending.deletes, l.seq)
			signal(q.wakeWrite)
		}
		if q.window.succeeded(now) {
			// The destination is back: what waits for a retry goes now.
			// (Other successes leave retries to their own backoff, so that
			// one event that keeps failing is not tried again each time.)
			for i := range q.retries {
				q.retries[i].due = now
			}
		}
		signal(q.wakeRead)
		return time.Time{}
	}
	q.window.failed(l.probe, timedOut(err), q.leased, now, q.backoff)
	retryAt = now.Add(q.backoff(l.attempts))
	if l.post != nil {
		q.rewriteLocked(l, retry, retryAt)
	} else {
		q.kept.keep(l.seq, l.rec)
		heap.Push(&q.retries, retryItem{seq: l.seq, attempts: l.attempts + 1, due: retryAt})
	}
	signal(q.wakeRead) // a place in the window is free
	return retryAt
}

// backoff is retryInitial doubled n times, at most retryMax.
func (q *queue) backoff(n int) time.Duration {
	d := q.conf.retryInitial << min(n, 30)
	if d > q.conf.retryMax || d <= 0 {
		return q.conf.retryMax
	}
	return d
}

// quarantine moves a damaged record aside, where it is kept but never
// delivered.
func (q *queue) quarantine(seq uint64, rec []byte, cause error) {
	q.mu.Lock()
	q.leased--
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
