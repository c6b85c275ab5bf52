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
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/netcore-connect/netcore-connect/internal/durabledir"
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
	onDamaged    func(seq uint64, err error)
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
	db   *bolt.DB
	conf queueConfig

	mu      sync.Mutex
	pending pendingWrites
	ready   []uint64 // committed and not leased, oldest first
	// readAhead holds records of ready read before their turn.
	readAhead map[uint64][]byte
	retries   retryHeap
	events    int64 // stored and reserved
	bytes     int64
	ended     bool // no more reads: the input ended or the queue closed
	leased    int  // records handed out and not yet settled
	// window bounds leased, narrowing with failures and probing in an
	// outage (see deliveryWindow).
	window    deliveryWindow
	closed    bool
	wakeRead  chan struct{}
	wakeWrite chan struct{}

	stop          chan struct{}
	committerDone chan struct{}
	closeOnce     sync.Once
	ids           *idIndex // committer only
	lastSweep     time.Time
}

type pendingWrites struct {
	puts    []*putOp
	deletes []uint64
	damaged []uint64
}

// putOp is a post's records waiting for the committer.
type putOp struct {
	records [][]byte
	ids     []string // dedupe key of each record, "" for none
	size    int64
	done    func(err error, repeats []int)
}

// lease is a record handed out for delivery, as its message.
type lease struct {
	seq      uint64
	attempts int
	probe    bool // handed out while deliveries were failing
	size     int64
	msg      *service.Message
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

// load creates the buckets and reads what waits for delivery. With
// checkOnStart it first reads every page of the file and checks its
// structure, so that damage stops the start instead of surfacing later.
func (q *queue) load() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w (%v)", errDamaged, r)
		}
	}()
	if q.conf.checkOnStart {
		if err := q.check(); err != nil {
			return err
		}
	}
	return q.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketEvents, bucketDamaged, bucketDedupe} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("creating bucket %s: %w", name, err)
			}
		}
		err := tx.Bucket(bucketEvents).ForEach(func(k, v []byte) error {
			q.ready = append(q.ready, binary.BigEndian.Uint64(k))
			q.events++
			q.bytes += int64(len(v))
			return nil
		})
		if err != nil {
			return err
		}
		if err := migrateExpiry(tx); err != nil {
			return err
		}
		return q.ids.load(tx.Bucket(bucketDedupe))
	})
}

// check reads every key and value, here, where a panic of bbolt on a
// damaged page is recovered by load; then bbolt's own check compares the
// free list with the pages in use. (That check runs in a goroutine of its
// own, where a panic could not be recovered: the walk first makes sure it
// will not meet a page it cannot read.)
func (q *queue) check() error {
	return q.db.View(func(tx *bolt.Tx) error {
		err := tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			return b.ForEach(func(_, _ []byte) error { return nil })
		})
		if err != nil {
			return err
		}
		var damage []error
		for err := range tx.Check() {
			damage = append(damage, err)
		}
		if len(damage) > 0 {
			return fmt.Errorf("%w: %w", errDamaged, errors.Join(damage...))
		}
		return nil
	})
}

// stats reports what the queue holds.
func (q *queue) stats() (events, bytes int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.events, q.bytes
}

// put stores records and calls done once they are on disk, or with the
// error that kept them off it; repeats are the records not stored again
// because their id was stored within the dedupe window. A full or closed
// queue fails at once.
func (q *queue) put(records [][]byte, ids []string, done func(err error, repeats []int)) error {
	var size int64
	for _, r := range records {
		size += int64(len(r))
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return errClosed
	}
	if q.events+int64(len(records)) > q.conf.maxEvents || q.bytes+size > q.conf.maxBytes {
		return fmt.Errorf("%w: %d events, %d bytes waiting (limits %d events, %d bytes)",
			ErrFull, q.events, q.bytes, q.conf.maxEvents, q.conf.maxBytes)
	}
	q.events += int64(len(records))
	q.bytes += size
	q.pending.puts = append(q.pending.puts, &putOp{records: records, ids: ids, size: size, done: done})
	signal(q.wakeWrite)
	return nil
}

// next blocks until a record can be delivered, and leases it.
func (q *queue) next(ctx context.Context) (*lease, error) {
	for {
		q.mu.Lock()
		if q.ended {
			q.mu.Unlock()
			return nil, errClosed
		}
		seq, attempts, wait, ok := q.popLocked(time.Now())
		probe := q.window.probing()
		var rec []byte
		var upcoming []uint64
		if ok {
			q.leased++
			rec = q.readAhead[seq]
			delete(q.readAhead, seq)
			if rec == nil {
				upcoming = append(upcoming, q.ready[:min(len(q.ready), readAheadSize)]...)
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
			q.mu.Lock()
			q.leased--
			q.mu.Unlock()
			continue
		}
		l.size = int64(len(rec))
		var err error
		if l.msg, err = decodeRecord(rec); err != nil {
			q.quarantine(seq, l.size, err)
			continue
		}
		return l, nil
	}
}

// readAheadSize is how many records one read transaction fetches: the one
// wanted and those due after it, so that a transaction is not paid per event.
const readAheadSize = 128

// readAheadOf reads seq and upcoming records in one transaction, keeps the
// upcoming ones for their turn and returns seq's.
func (q *queue) readAheadOf(seq uint64, upcoming []uint64) ([]byte, error) {
	recs, err := q.read(append([]uint64{seq}, upcoming...))
	if err != nil {
		return nil, err
	}
	q.mu.Lock()
	for i, s := range upcoming {
		if recs[i+1] != nil {
			q.readAhead[s] = recs[i+1]
		}
	}
	q.mu.Unlock()
	return recs[0], nil
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

// popLocked takes the next record due: retries whose time has come first
// (they are the oldest), then new records. Without one it says how long
// until the next retry is due (0: none waits).
func (q *queue) popLocked(now time.Time) (seq uint64, attempts int, wait time.Duration, ok bool) {
	if wait, ok := q.window.admit(q.leased, now, q.conf.retryMax); !ok {
		return 0, 0, wait, false
	}
	if len(q.retries) > 0 {
		if r := q.retries[0]; !r.due.After(now) {
			heap.Pop(&q.retries)
			return r.seq, r.attempts, 0, true
		}
		wait = q.retries[0].due.Sub(now)
	}
	if len(q.ready) > 0 {
		seq = q.ready[0]
		q.ready = q.ready[1:]
		if len(q.ready) == 0 {
			q.ready = nil // let the backing array go
		}
		return seq, 0, 0, true
	}
	return 0, 0, wait, false
}

// read copies records out of the file; nil for one that is not there.
func (q *queue) read(seqs []uint64) ([][]byte, error) {
	recs := make([][]byte, len(seqs))
	err := q.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		size := 0
		for i, seq := range seqs {
			recs[i] = b.Get(seqKey(seq)) // in the map: valid in this transaction only
			size += len(recs[i])
		}
		// One copy for all, one object for the garbage collector; each
		// record capped, so that appending to one cannot reach the next.
		arena := make([]byte, 0, size)
		for i, v := range recs {
			if v != nil {
				start := len(arena)
				arena = append(arena, v...)
				recs[i] = arena[start:len(arena):len(arena)]
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading records from %d: %w", seqs[0], err)
	}
	return recs, nil
}

// ack settles a lease: a delivered record is deleted; a failed one comes
// back after a backoff that doubles with each of its attempts, up to
// retryMax, which it returns. Either way the delivery window learns of it
// (deliveryWindow).
func (q *queue) ack(l *lease, err error) (retryAt time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.leased--
	now := time.Now()
	if err == nil {
		q.events--
		q.bytes -= l.size
		q.pending.deletes = append(q.pending.deletes, l.seq)
		signal(q.wakeWrite)
		if q.window.succeeded() {
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
	q.window.failed(l.probe, now, q.backoff)
	retryAt = now.Add(q.backoff(l.attempts))
	heap.Push(&q.retries, retryItem{seq: l.seq, attempts: l.attempts + 1, due: retryAt})
	signal(q.wakeRead)
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
func (q *queue) quarantine(seq uint64, size int64, cause error) {
	q.mu.Lock()
	q.leased--
	q.events--
	q.bytes -= size
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

func (q *queue) commitLoop() {
	defer close(q.committerDone)
	defer q.ids.close()
	sweep := time.NewTicker(time.Second)
	defer sweep.Stop()
	var flushDeletes <-chan time.Time // set while deletes wait for company
	for {
		force := false
		select {
		case <-q.wakeWrite:
		case <-flushDeletes:
			flushDeletes, force = nil, true
		case <-sweep.C:
			q.reportStats()
			_ = q.db.View(func(tx *bolt.Tx) error { releaseMappedPages(q.db, tx); return nil })
		case <-q.stop:
			q.commit(true) // what was put before close is still stored and acknowledged
			return
		}
		if q.commit(force) && flushDeletes == nil {
			flushDeletes = time.After(deleteDelay)
		}
	}
}

// Deletes of delivered records wait up to deleteDelay (or until deleteBatch
// of them pile up) for a commit to ride with. Alone they cost an fsync'd
// commit every few events while a backlog drains, and losing them in a crash
// only means those events are delivered again, which at least once allows.
const (
	deleteDelay = 100 * time.Millisecond
	deleteBatch = 4096
)

// reportStats tells onStats what waits; the oldest record is the first in
// the file, since sequence numbers grow and failed records keep theirs.
func (q *queue) reportStats() {
	if q.conf.onStats == nil {
		return
	}
	events, bytes := q.stats()
	var oldest time.Duration
	_ = q.db.View(func(tx *bolt.Tx) error {
		if _, v := tx.Bucket(bucketEvents).Cursor().First(); v != nil {
			if at, ok := recordStoredAt(v); ok {
				oldest = max(time.Since(at), 0)
			}
		}
		return nil
	})
	q.conf.onStats(events, bytes, oldest)
}

// commit writes everything pending in one transaction. Unless forced, it
// leaves deletes that wait alone for later and says so.
func (q *queue) commit(force bool) (deferred bool) {
	q.mu.Lock()
	if p := q.pending; !force && len(p.puts) == 0 && len(p.damaged) == 0 && len(p.deletes) > 0 && len(p.deletes) < deleteBatch {
		q.mu.Unlock()
		return true
	}
	work := q.pending
	q.pending = pendingWrites{}
	q.mu.Unlock()

	now := time.Now()
	cutoff := uint64(now.Add(-q.conf.dedupeWindow).UnixNano())
	sweepDue := q.ids.enabled() && now.Sub(q.lastSweep) >= sweepEvery
	if len(work.puts) == 0 && len(work.deletes) == 0 && len(work.damaged) == 0 {
		if !sweepDue || !q.ids.sweepNeeded(cutoff) {
			q.lastSweep = now // an idle queue makes no commits
			return false
		}
	}
	stored := make([][]uint64, len(work.puts))
	repeats := make([][]int, len(work.puts)) // records of each put that were repeats
	dupBytes := make([]int64, len(work.puts))
	err := q.db.Update(func(tx *bolt.Tx) error {
		q.db.AllocSize = growthStep(tx.Size()) // read by this transaction's commit only
		q.ids.begin()
		events, dedupe := appendOnly(tx.Bucket(bucketEvents)), appendOnly(tx.Bucket(bucketDedupe))
		for i, op := range work.puts {
			stored[i], repeats[i], dupBytes[i] = stored[i][:0], repeats[i][:0], 0
			for j, rec := range op.records {
				id := op.ids[j]
				if id != "" && q.ids.enabled() {
					if q.ids.remember(id, cutoff) {
						repeats[i] = append(repeats[i], j)
						dupBytes[i] += int64(len(rec))
						continue
					}
				}
				seq, err := events.NextSequence()
				if err != nil {
					return err
				}
				if err := events.Put(seqKey(seq), rec); err != nil {
					return err
				}
				stored[i] = append(stored[i], seq)
			}
		}
		for _, seq := range work.deletes {
			if err := events.Delete(seqKey(seq)); err != nil {
				return err
			}
		}
		if err := moveAside(events, tx.Bucket(bucketDamaged), work.damaged); err != nil {
			return err
		}
		if err := q.ids.write(dedupe, uint64(now.UnixNano())); err != nil {
			return err
		}
		if sweepDue {
			return q.ids.sweep(dedupe, cutoff)
		}
		return nil
	})
	if sweepDue && err == nil {
		q.lastSweep = now
	}

	q.mu.Lock()
	if err != nil {
		// Deletes and moves are retried with the next commit; the puts
		// failed and their posts are refused.
		q.pending.deletes = append(q.pending.deletes, work.deletes...)
		q.pending.damaged = append(q.pending.damaged, work.damaged...)
		for _, op := range work.puts {
			q.events -= int64(len(op.records))
			q.bytes -= op.size
		}
	} else {
		q.ids.commit()
		for i := range work.puts {
			q.ready = append(q.ready, stored[i]...)
			q.events -= int64(len(repeats[i]))
			q.bytes -= dupBytes[i]
		}
	}
	q.mu.Unlock()
	signal(q.wakeRead)
	for i, op := range work.puts {
		if err != nil {
			repeats[i] = nil
		}
		op.done(err, repeats[i])
	}
	return false
}

// growthStep is how far beyond what it needs the file grows when a commit
// runs past its end: a quarter of its size, from 64 KiB to 64 MiB. Each
// growth costs an fsync of the file's size, so a file that keeps growing
// grows in steps; bbolt's own step (16 MiB, with the map sized for a full
// queue) would make even an empty queue's file 16 MiB.
func growthStep(size int64) int {
	return int(min(max(size/4, 64<<10), 64<<20))
}

// appendOnly tunes a bucket whose keys only ever grow (sequence numbers,
// times): pages are filled whole before a new one is started, instead of
// bbolt's default of splitting at half, which for appends leaves every page
// half empty: twice the pages to write, and twice the file.
func appendOnly(b *bolt.Bucket) *bolt.Bucket {
	b.FillPercent = 1.0
	return b
}

func moveAside(from, to *bolt.Bucket, seqs []uint64) error {
	for _, seq := range seqs {
		k := seqKey(seq)
		if v := from.Get(k); v != nil {
			if err := to.Put(k, append([]byte(nil), v...)); err != nil {
				return err
			}
			if err := from.Delete(k); err != nil {
				return err
			}
		}
	}
	return nil
}

// maxSweep bounds the ids forgotten in one commit, so that a sweep after a
// long pause does not make one huge transaction; the next sweeps go on.
// Expired ids left over meanwhile are still not taken for repeats
// (remember compares times).
const maxSweep = 10000

// sweepEvery is how often forgotten ids are swept; a little under the
// committer's one-second tick, so that no tick is skipped.
const sweepEvery = 900 * time.Millisecond

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }

// signal wakes a waiter without blocking; one pending wake is enough.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

type retryItem struct {
	seq      uint64
	attempts int
	due      time.Time
}

// retryHeap orders nacked records by when they may be tried again.
type retryHeap []retryItem

func (h retryHeap) Len() int           { return len(h) }
func (h retryHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h retryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *retryHeap) Push(x any)        { *h = append(*h, x.(retryItem)) }
func (h *retryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
