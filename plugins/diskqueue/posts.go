package diskqueue

import (
	"fmt"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
)

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
	p := q.posts.opened(seq, recordEvents(rec))
	p.size, p.storedAt = int64(len(rec)), storedAt
	// The record was pinned when it was taken; where each event is in it
	// is held too, as long.
	p.held = p.size + int64(p.events)*eventSliceBytes
	q.mem.pin(p.held - p.size)
	// An event without a usable ts is timed by when its post was received:
	// for a post from another input than netcore_webhook, when it was
	// stored, not when it is read (which may be hours later).
	p.base, p.received, p.panels = base, netcorepost.ReceivedAtOr(base, storedAt), panels
	p.copies = netcorepost.CopiesOf(panels, true) // its event ids, as when it was stored
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

// takeFromPostLocked hands out the next event of the post being handed
// out, if there is one. Its message is made by explodeLease, outside the
// lock.
func (q *queue) takeFromPostLocked() (*lease, bool) {
	p, i, inPanel, panel, raw, ok := q.posts.take()
	if !ok {
		return nil, false
	}
	// Its message is a copy of raw, with a few fields more.
	q.mem.pin(int64(len(raw)))
	return &lease{seq: p.seq, post: p, index: i, inPanel: inPanel, panel: panel, raw: raw, held: int64(len(raw)), probe: q.sched.window.probing()}, true
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
	q.sched.leased--
	q.mem.unpin(l.held)
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
	if !p.dirty && !p.isAcked(i) { // an acknowledged event's mark is not written while retaining
		p.dirty = true
		q.store.marksChanged(p)
	}
}

// finishPostLocked deletes (or retains) a post whose events are all settled.
func (q *queue) finishPostLocked(p *openPost) {
	q.posts.close(p)
	q.mem.unpin(p.held)
	if p.republish && q.handOutAgainLocked(p) {
		return // its record stays, as when it was retained
	}
	q.dropLocked(p.seq, p.size, true)
}
