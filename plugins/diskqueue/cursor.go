package diskqueue

import (
	"slices"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
)

// openPost is what the queue holds of a post record while its events are
// handed out, or while some of them are marked settled: the post's cursor,
// made of its settled marks and of where its reading is.
//
// The queue's mutex guards it.
type openPost struct {
	seq      uint64
	size     int64     // the record's bytes, given back when it is deleted
	held     int64     // what it pins of the read path's budget while open (readMemory)
	storedAt time.Time // the record's; an event written on its own keeps it
	// republish hands its acknowledged events out again once it is settled
	// (republish.go)
	republish bool
	postMarks
	postReading
}

// postMarks are which events of a post are settled: what the settled bucket
// holds of it, and what is no longer handed out.
type postMarks struct {
	events  int    // in the record
	settled []byte // the marks, as in bucketSettled
	waiting int    // events not yet settled
	dirty   bool   // settled has changed since it was last written (store.marksChanged)
	acked   []byte // with retain_after_ack: settled by the output's ack, never written (retain.go)
}

// postReading is set once the record is read: the post's metadata and when
// it arrived, its panels of events (slices of the record), and where the
// next event to hand out is. Events are made into messages one by one as
// they are handed out, so that a big post is never in memory as messages
// all at once.
type postReading struct {
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
	return &openPost{seq: seq, postMarks: postMarks{events: events, settled: make([]byte, (events+7)/8), waiting: events}}
}

func (m *postMarks) isSettled(i int) bool { return m.settled[i/8]&(1<<(i%8)) != 0 }

// settle marks event i settled and says whether it changed.
func (m *postMarks) settle(i int) bool {
	if m.isSettled(i) {
		return false
	}
	m.settled[i/8] |= 1 << (i % 8)
	m.waiting--
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

// postCursors are the post records open: those whose events are being
// handed out, in the order they were opened, and those some of whose events
// are settled while others wait (marked in the file, or out for delivery).
//
// The queue's mutex guards it.
type postCursors struct {
	open    map[uint64]*openPost
	handing *openPost   // the post whose events are handed out next
	toHand  []*openPost // posts opened while another was handed out
}

func newPostCursors() postCursors { return postCursors{open: map[uint64]*openPost{}} }

// get is the open post of record seq, or nil.
func (c *postCursors) get(seq uint64) *openPost { return c.open[seq] }

// add holds p open: a post with events settled before it is read.
func (c *postCursors) add(p *openPost) { c.open[p.seq] = p }

// opened is the open post of record seq, of events events, held open if it
// was not; it is handed out after the posts opened before it.
func (c *postCursors) opened(seq uint64, events int) *openPost {
	p := c.open[seq]
	if p == nil {
		p = newOpenPost(seq, events)
		c.open[seq] = p
	}
	if c.handing == nil {
		c.handing = p
	} else {
		c.toHand = append(c.toHand, p) // a retry of a record that could not be read
	}
	return p
}

// take takes the next event to hand out of the post handed out, as
// nextEvent does, and goes on to the next post once it has none left.
func (c *postCursors) take() (p *openPost, i, inPanel int, panel string, raw []byte, ok bool) {
	if p = c.handing; p == nil {
		return nil, 0, 0, "", nil, false
	}
	i, inPanel, panel, raw, ok = p.nextEvent()
	if !ok || p.next == p.events {
		c.stopHanding()
	}
	return p, i, inPanel, panel, raw, ok
}

// stopHanding lets go of the post being handed out, and of its record (the
// events out for delivery hold what they need of it), and goes on to the
// next post opened, if any.
func (c *postCursors) stopHanding() {
	c.handing.panels = nil
	c.handing = nil
	if len(c.toHand) > 0 {
		c.handing, c.toHand = c.toHand[0], c.toHand[1:]
	}
}

// close forgets p, whose events are all settled or whose record is gone.
func (c *postCursors) close(p *openPost) {
	// What it has left to hand out, if anything, is settled already.
	if c.handing == p {
		c.stopHanding()
	}
	c.toHand = slices.DeleteFunc(c.toHand, func(o *openPost) bool { return o == p })
	delete(c.open, p.seq)
}
