package diskqueue

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	bolt "go.etcd.io/bbolt"

	"github.com/netcore-connect/netcore-connect/plugins/netcore"
)

// bucketSettled holds, for a post record some of whose events are settled
// while others still wait, which are settled: sequence (8 bytes) → a bitmap
// of the post's events, bit i for its event i (across its panels, in
// order). An event is settled once delivered, dead-lettered, found to be a
// repeat, or written as a record of its own after a failed delivery. The
// marks are written in the commits that also carry deletes, so that after a
// restart a post's settled events are not sent again; they go with the
// post's record when its last event is settled.
var bucketSettled = []byte("settled")

// openPost is what the queue holds of a post record while its events are
// handed out, or while some of them are marked settled.
//
// The queue's mutex guards it.
type openPost struct {
	seq      uint64
	events   int       // in the record
	size     int64     // the record's bytes, given back when it is deleted
	storedAt time.Time // the record's; an event written on its own keeps it
	settled  []byte    // the marks, as in bucketSettled
	waiting  int       // events not yet settled
	dirty    bool      // settled has changed since it was last written: in pending.marked

	// Set once the record is read: the post's metadata and when it
	// arrived, its panels of events (slices of the record), and where the
	// next event to hand out is. Events are made into messages one by one
	// as they are handed out, so that a big post is never in memory as
	// messages all at once.
	base     *service.Message
	received time.Time
	panels   []netcore.Panel
	next     int // the next event, counted across the panels
	panel    int // the panel it is in
	first    int // the number of that panel's first event
}

func newOpenPost(seq uint64, events int) *openPost {
	return &openPost{seq: seq, events: events, settled: make([]byte, (events+7)/8), waiting: events}
}

func (p *openPost) isSettled(i int) bool { return p.settled[i/8]&(1<<(i%8)) != 0 }

// settle marks event i settled and says whether it changed.
func (p *openPost) settle(i int) bool {
	if p.isSettled(i) {
		return false
	}
	p.settled[i/8] |= 1 << (i % 8)
	p.waiting--
	return true
}

// nextEvent takes the next event to hand out that is not settled: its
// number in the post, its panel and its JSON.
func (p *openPost) nextEvent() (i int, panel string, raw []byte, ok bool) {
	for p.panel < len(p.panels) {
		events := p.panels[p.panel].Events
		if p.next-p.first >= len(events) {
			p.first += len(events)
			p.panel++
			continue
		}
		i = p.next
		p.next++
		if !p.isSettled(i) {
			return i, p.panels[p.panel].Name, events[i-p.first], true
		}
	}
	return 0, "", nil, false
}

func countSettled(marks []byte) int {
	n := 0
	for _, b := range marks {
		n += bits.OnesCount8(b)
	}
	return n
}

// openRecord makes the post record seq, read as rec, the post being handed
// out. Events already settled (marked before a restart, or repeats) are
// skipped as it goes.
func (q *queue) openRecord(seq uint64, rec []byte) error {
	if q.conf.explode == nil {
		return fmt.Errorf("record %d is a whole post and this queue has no explode settings to split it with: set explode on the disk_queue", seq)
	}
	base, panels, damaged, err := decodePostRecord(rec)
	if err != nil {
		return err
	}
	storedAt, _ := recordStoredAt(rec)
	q.mu.Lock()
	p := q.posts[seq]
	if p == nil {
		p = newOpenPost(seq, recordEvents(rec))
		q.posts[seq] = p
	}
	p.size, p.storedAt = int64(len(rec)), storedAt
	p.base, p.received, p.panels = base, netcore.ReceivedAt(base), panels
	q.handing = p
	var aside []int
	for _, i := range damaged {
		if !p.isSettled(i) {
			q.setAsideLocked(p, i, p.event(i))
			aside = append(aside, i)
		}
	}
	q.mu.Unlock()
	for _, i := range aside {
		q.damagedEvent(seq, i, errChecksum)
	}
	return nil
}

// event is event i of an open post's record.
func (p *openPost) event(i int) []byte {
	for _, panel := range p.panels {
		if i < len(panel.Events) {
			return panel.Events[i]
		}
		i -= len(panel.Events)
	}
	return nil
}

// takeFromPostLocked hands out the next event of the post being handed
// out, if there is one. Its message is made by explodeLease, outside the
// lock.
func (q *queue) takeFromPostLocked() (*lease, bool) {
	p := q.handing
	if p == nil {
		return nil, false
	}
	i, panel, raw, ok := p.nextEvent()
	if !ok || p.next == p.events {
		q.stopHandingLocked()
		if p.waiting == 0 { // every event was settled before: only the record is left
			q.finishPostLocked(p)
		}
	}
	if !ok {
		return nil, false
	}
	return &lease{seq: p.seq, post: p, index: i, panel: panel, raw: raw, probe: q.window.probing()}, true
}

// stopHandingLocked lets go of the post being handed out, and of its
// record (the events out for delivery hold what they need of it).
func (q *queue) stopHandingLocked() {
	q.handing.panels = nil
	q.handing = nil
}

// explodeLease makes the message of a post's event. An event that cannot
// be made into one (its JSON was checked when it was received, so only
// damage that kept its checksum could do this) is set aside.
func (q *queue) explodeLease(l *lease) bool {
	p := l.post
	msg, err := q.conf.explode.ExplodeEvent(p.base, p.received, l.panel, l.index, l.raw, true)
	if err == nil {
		l.msg = msg
		return true
	}
	q.mu.Lock()
	q.leased--
	q.setAsideLocked(p, l.index, l.raw)
	q.mu.Unlock()
	q.damagedEvent(p.seq, l.index, err)
	return false
}

// setAsideLocked takes a damaged event out of its post: it is written to the
// damaged bucket as an event record of its own (its JSON as stored, the
// post's metadata), kept for inspection and never delivered; the post goes
// on without it. Both happen in one commit.
func (q *queue) setAsideLocked(p *openPost, i int, raw []byte) {
	aside := p.base.Copy()
	aside.SetBytes(raw)
	rec, _ := encodeRecord(aside, p.storedAt) // its body is bytes: it encodes
	q.pending.rewrites = append(q.pending.rewrites, rewrite{post: p, index: i, rec: rec, damaged: true})
	q.events--
	q.settlePostEventLocked(p, i)
	signal(q.wakeWrite)
}

// damagedEvent tells of an event set aside.
func (q *queue) damagedEvent(seq uint64, i int, cause error) {
	if q.conf.onDamaged != nil {
		q.conf.onDamaged(seq, fmt.Errorf("event %d of the post: %w", i, cause))
	}
}

// settlePostEventLocked settles event i of p: the post's record is deleted
// with its last event, its marks written otherwise.
func (q *queue) settlePostEventLocked(p *openPost, i int) {
	if !p.settle(i) {
		return
	}
	if p.waiting == 0 {
		q.finishPostLocked(p)
		return
	}
	if !p.dirty {
		p.dirty = true
		q.pending.marked = append(q.pending.marked, p)
	}
}

// finishPostLocked deletes a post whose events are all settled.
func (q *queue) finishPostLocked(p *openPost) {
	if q.handing == p { // what it has left to hand out is settled already
		q.stopHandingLocked()
	}
	delete(q.posts, p.seq)
	q.bytes -= p.size
	q.pending.deletes = append(q.pending.deletes, p.seq)
	q.pending.unmark = append(q.pending.unmark, p.seq)
	signal(q.wakeWrite)
}

// rewrite is a failed event of a post, written as a record of its own so
// that the rest of the post can be settled without it; its retry is
// scheduled once that record is committed. A damaged one goes to the
// damaged bucket instead, with no retry.
type rewrite struct {
	post     *openPost
	index    int
	rec      []byte
	attempts int
	due      time.Time
	damaged  bool
}

// writeMarks writes the settled marks of the posts whose marks changed,
// with the events written on their own set, and deletes those of deleted
// posts.
func writeMarks(settled *bolt.Bucket, marks map[uint64][]byte, unmark []uint64) error {
	for seq, m := range marks {
		if err := settled.Put(seqKey(seq), m); err != nil {
			return err
		}
	}
	for _, seq := range unmark {
		if err := settled.Delete(seqKey(seq)); err != nil {
			return err
		}
	}
	return nil
}

// loadMarks reads the settled marks at open, before the records: each
// marked post waits with its settled events counted out. A post whose
// events were all settled (its delete not yet committed when the process
// stopped) is deleted now, and so are marks whose record is gone.
func (q *queue) loadMarks(tx *bolt.Tx) error {
	events, settled := tx.Bucket(bucketEvents), tx.Bucket(bucketSettled)
	var done, orphans [][]byte
	err := settled.ForEach(func(k, v []byte) error {
		rec := events.Get(k)
		if len(k) != 8 || rec == nil || !isPostRecord(rec) || len(v) != (recordEvents(rec)+7)/8 {
			orphans = append(orphans, bytes.Clone(k))
			return nil
		}
		p := newOpenPost(binary.BigEndian.Uint64(k), recordEvents(rec))
		copy(p.settled, v)
		if p.waiting -= countSettled(p.settled); p.waiting <= 0 {
			done = append(done, bytes.Clone(k))
			return nil
		}
		q.posts[p.seq] = p
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range done {
		if err := events.Delete(k); err != nil {
			return err
		}
	}
	for _, k := range append(done, orphans...) {
		if err := settled.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// rewriteLocked takes a failed event of a post out of it: the event is
// written as an event record of its own, retried as any other from then
// on, and the post is no longer held back by it. Until that record is
// committed the event stays unsettled in its post, so that a crash loses
// nothing.
func (q *queue) rewriteLocked(l *lease, due time.Time) {
	rec, err := encodeRecord(l.msg, l.post.storedAt)
	if err != nil {
		// The output left a body that cannot be read back as bytes: the
		// event stays unsettled in its post, delivered again after the
		// next start.
		return
	}
	q.bytes += int64(len(rec))
	q.pending.rewrites = append(q.pending.rewrites, rewrite{post: l.post, index: l.index, rec: rec, attempts: l.attempts + 1, due: due})
	signal(q.wakeWrite)
}
