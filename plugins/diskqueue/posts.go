package diskqueue

import (
	"fmt"
	"slices"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
)

// openPost is what the queue holds of a post record while its events are
// handed out, or while some of them are marked settled.
//
// The queue's mutex guards it.
type openPost struct {
	seq      uint64
	events   int       // in the record
	size     int64     // the record's bytes, given back when it is deleted
	held     int64     // what it pins of the read path's budget while open (readMemory)
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
	panels   []netcorepost.Panel
	next     int // the next event, counted across the panels
	panel    int // the panel it is in
	first    int // the number of that panel's first event

	// Which events are copies of others in the post, for their event ids,
	// kept after panels are let go: a retry makes its event's message again.
	copies netcorepost.Copies
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
// number in the post (for its mark), its number in its panel (its
// netcore_event_index), its panel and its JSON.
func (p *openPost) nextEvent() (i, inPanel int, panel string, raw []byte, ok bool) {
	for p.panel < len(p.panels) {
		events := p.panels[p.panel].Events
		if p.next-p.first >= len(events) {
			p.first += len(events)
			p.panel++
			continue
		}
		i, inPanel = p.next, p.next-p.first
		p.next++
		if !p.isSettled(i) {
			return i, inPanel, p.panels[p.panel].Name, events[inPanel], true
		}
	}
	return 0, 0, "", nil, false
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
	// The record was pinned when it was taken; where each event is in it
	// is held too, as long.
	p.held = p.size + int64(p.events)*eventSliceBytes
	q.pinLocked(p.held - p.size)
	// An event without a usable ts is timed by when its post was received:
	// for a post from another input than netcore_webhook, when it was
	// stored, not when it is read (which may be hours later).
	p.base, p.received, p.panels = base, netcorepost.ReceivedAtOr(base, storedAt), panels
	p.copies = netcorepost.CopiesOf(panels, true) // its event ids, as when it was stored
	if q.handing == nil {
		q.handing = p
	} else {
		q.toHand = append(q.toHand, p) // a retry of a record that could not be read
	}
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
	i, inPanel, panel, raw, ok := p.nextEvent()
	if !ok || p.next == p.events {
		q.stopHandingLocked()
	}
	if !ok {
		return nil, false
	}
	// Its message is a copy of raw, with a few fields more.
	q.pinLocked(int64(len(raw)))
	return &lease{seq: p.seq, post: p, index: i, inPanel: inPanel, panel: panel, raw: raw, held: int64(len(raw)), probe: q.window.probing()}, true
}

// stopHandingLocked lets go of the post being handed out, and of its
// record (the events out for delivery hold what they need of it), and
// goes on to the next post opened, if any.
func (q *queue) stopHandingLocked() {
	q.handing.panels = nil
	q.handing = nil
	if len(q.toHand) > 0 {
		q.handing, q.toHand = q.toHand[0], q.toHand[1:]
	}
}

// explodeLease makes the message of a post's event. An event that cannot
// be made into one (its JSON was checked when it was received, so only
// damage that kept its checksum could do this) is set aside.
func (q *queue) explodeLease(l *lease) bool {
	msg, err := q.eventMessage(l)
	if err == nil {
		l.msg = msg
		return true
	}
	q.setAside(l, err)
	return false
}

// setAside settles a leased event of a post that cannot be made into a
// message, by setting it aside.
func (q *queue) setAside(l *lease, cause error) {
	q.mu.Lock()
	q.leased--
	q.unpinLocked(l.held)
	q.setAsideLocked(l.post, l.index, l.raw)
	q.mu.Unlock()
	signal(q.wakeRead) // a place in the window is free
	q.damagedEvent(l.post.seq, l.index, cause)
}

// eventMessage makes the message of a post's event, as it was stored: for
// its delivery, and again for the record its retry reads (the message
// delivered may have been changed by the pipeline's processors since).
func (q *queue) eventMessage(l *lease) (*service.Message, error) {
	p := l.post
	return q.conf.explode.ExplodeEvent(p.base, p.received, l.panel, l.inPanel, p.copies.Of(l.index), l.raw, true)
}

// setAsideLocked takes a damaged event out of its post: it is written to the
// damaged bucket as an event record of its own (its JSON as stored, the
// post's metadata), kept for inspection and never delivered; the post goes
// on without it. Both happen in one commit. Its checksum is stored
// inverted, so that no reader takes it for an event to deliver: `queue
// salvage` reads every page of the file, whatever bucket it belongs to.
func (q *queue) setAsideLocked(p *openPost, i int, raw []byte) {
	aside := p.base.Copy()
	aside.SetBytes(raw)
	rec, _ := encodeRecord(aside, p.storedAt) // its body is bytes: it encodes
	for b := range 4 {
		rec[b] ^= 0xff
	}
	q.pendRewriteLocked(rewrite{post: p, index: i, rec: rec, damaged: true})
	q.events--
	q.settlePostEventLocked(p, i)
	signal(q.wakeWrite)
}

// damagedEvent logs and counts an event set aside, as a damaged record is:
// an operator must learn that an event was not delivered.
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
	// What it has left to hand out, if anything, is settled already.
	if q.handing == p {
		q.stopHandingLocked()
	}
	q.toHand = slices.DeleteFunc(q.toHand, func(o *openPost) bool { return o == p })
	delete(q.posts, p.seq)
	q.bytes -= p.size
	q.unpinLocked(p.held)
	q.pending.deletes = append(q.pending.deletes, p.seq)
	q.pending.unmark = append(q.pending.unmark, p.seq)
	signal(q.wakeWrite)
}
