package diskqueue

import (
	"context"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/netcore-connect/netcore-connect/internal/claim"
)

// recordStore is the queue's file: the bbolt database, the records in it, and the
// committer, the one goroutine that writes to it. The other parts ask for
// writes (pend*) and read records (read); what a commit did comes back to
// the queue through the storeOwner it was opened with, once it is on disk.
//
// Its mutex guards pending alone, and is never held while the queue's is
// taken: the queue may call pend* under its own mutex, and the committer
// calls the owner with this one let go. The committer owns ids and
// lastSweep.
type recordStore struct {
	db    *bolt.DB
	conf  *queueConfig
	owner storeOwner

	mu      sync.Mutex
	pending pendingWrites // waiting for the committer

	wakeWrite     chan struct{}
	stop          chan struct{}
	committerDone chan struct{}

	ids       *idIndex
	lastSweep time.Time
}

// storeOwner is what the store tells the queue, from the committer.
type storeOwner interface {
	// marksOf copies the settled marks of posts whose marks changed, and
	// of the posts of events written on their own (with those set): the
	// marks a commit writes.
	marksOf(marked []*openPost, rewrites []rewrite) map[uint64][]byte
	// refused gives back puts that will never be written (their input gave
	// up on them), before each is answered.
	refused(puts []*putOp)
	// committed says what a commit did with work (result), or that it
	// failed (err), before the puts are answered.
	committed(work pendingWrites, result commitResult, err error)
	// tick is called once a second by the committer.
	tick()
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

func newStore(db *bolt.DB, conf *queueConfig, owner storeOwner) *recordStore {
	return &recordStore{
		db:            db,
		conf:          conf,
		owner:         owner,
		wakeWrite:     make(chan struct{}, 1),
		stop:          make(chan struct{}),
		committerDone: make(chan struct{}),
		ids:           newIDIndex(int64(conf.dedupeWindow), int(conf.dedupeMaxIDs)),
	}
}

// pend hands a change to the committer, and wakes it.
func (s *recordStore) pend(change func(p *pendingWrites)) {
	s.mu.Lock()
	change(&s.pending)
	s.mu.Unlock()
	signal(s.wakeWrite)
}

// put writes op's records in the next commit that takes it (commit_share.go).
func (s *recordStore) put(op *putOp) { s.pend(func(p *pendingWrites) { p.puts = append(p.puts, op) }) }

// deleteRecord deletes a settled record.
func (s *recordStore) deleteRecord(seq uint64) {
	s.pend(func(p *pendingWrites) { p.deletes = append(p.deletes, seq) })
}

// setAside moves a damaged record to the damaged bucket.
func (s *recordStore) setAside(seq uint64) {
	s.pend(func(p *pendingWrites) { p.damaged = append(p.damaged, seq) })
}

// rewrite writes a failed (or damaged) event of a post as a record of its
// own, and its mark in the same commit.
func (s *recordStore) rewrite(rw rewrite) {
	s.pend(func(p *pendingWrites) { p.rewrites = append(p.rewrites, rw) })
}

// marksChanged writes p's settled marks (as marksOf copies them) in a
// commit to come.
func (s *recordStore) marksChanged(p *openPost) {
	s.pend(func(pw *pendingWrites) { pw.marked = append(pw.marked, p) })
}

// deletePost deletes a post record whose events are all settled, and its
// marks.
func (s *recordStore) deletePost(seq uint64) {
	s.pend(func(p *pendingWrites) {
		p.deletes = append(p.deletes, seq)
		p.unmark = append(p.unmark, seq)
	})
}

// deletePosts deletes records as deletePost does, in one change.
func (s *recordStore) deletePosts(seqs []uint64) {
	s.pend(func(p *pendingWrites) {
		p.deletes = append(p.deletes, seqs...)
		p.unmark = append(p.unmark, seqs...)
	})
}

// setAsidePost moves a damaged post record aside, and deletes its marks.
func (s *recordStore) setAsidePost(seq uint64) {
	s.pend(func(p *pendingWrites) {
		p.damaged = append(p.damaged, seq)
		p.unmark = append(p.unmark, seq)
	})
}

// idle says whether nothing waits for the committer.
func (s *recordStore) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending.empty()
}

// oldest is when the first record in the file was stored: the oldest,
// since sequence numbers grow and failed records keep theirs.
func (s *recordStore) oldest() (at time.Time, ok bool) {
	_ = s.db.View(func(tx *bolt.Tx) error {
		if _, v := tx.Bucket(bucketEvents).Cursor().First(); v != nil {
			at, ok = recordStoredAt(v)
		}
		return nil
	})
	return at, ok
}

// close commits what is pending, then closes the file. A ctx that ends
// first leaves the file to be closed once the last commit ends.
func (s *recordStore) close(ctx context.Context) (finished bool, err error) {
	close(s.stop)
	select {
	case <-s.committerDone:
		return true, s.db.Close()
	case <-ctx.Done():
		go func() { <-s.committerDone; _ = s.db.Close() }()
		return false, nil
	}
}
