package diskqueue

import "container/list"

// readMemory bounds the bytes of records the read path holds, whatever the
// size of the posts (read_memory_bytes). Without it, a restart on a queue
// of 10 MB posts read 128 whole posts ahead: 1.7 GB of RSS.
//
// What it counts, in three parts:
//
//   - pinned: records in use, let go only as deliveries settle: the post
//     records open (their events handed out one by one, or out for
//     delivery), the events and event records out for delivery, and the
//     failed events of posts waiting to be written as records of their own;
//   - read ahead: records of ready read before their turn;
//   - kept: records of failed deliveries kept for their retry
//     (keptRetries), at most a quarter of the budget.
//
// The last two are caches (recordCache): they take only the room the
// pinned records leave, and are cut back when pinned records grow into it
// (kept records first, as they are wanted latest); a record cut is read
// from the file again when its turn comes. Pinned records are bounded by taking no
// further record (a post to open, an event record to lease) while they
// fill the budget, nor handing out a further event of an open post; but a
// record may always be taken while nothing is pinned, and an event handed
// out while none is out, so that a post bigger than the budget still goes,
// one event at a time. So the read path holds at most the budget, plus
// the last record taken and the last event handed out, plus the events of
// posts waiting to be written on their own past it: pendRewriteLocked pins
// them without asking, since a failed event cannot be dropped. No event is
// handed out while the budget is full, so these are at most the events out
// for delivery when it filled (bounded by the delivery window), and the
// damaged events of the post last opened, set aside as it opens.
//
// The queue's mutex guards it.
type readMemory struct {
	limit  int64
	pinned int64
	ahead  recordCache // records of ready read before their turn
	kept   keptRetries // records of failed deliveries, for their retry
}

func newReadMemory(limit int64) readMemory {
	return readMemory{limit: limit, kept: keptRetries{max: limit / keptShare}}
}

// keptShare is the share of the budget that records kept for their retry
// may take at most: 8 MiB of the default, the bound they had before the
// budget, at which keeping them was measured (with 30% of deliveries
// failing: 0.66× and 0.74× the healthy rate, against 0.58× reading each
// retry from the file). They take only room that is free, and are cut
// first when pinned records need it, so the larger share costs the
// records in use nothing.
const keptShare = 4

// eventSliceBytes is what an open post holds for each of its events
// besides the record: where the event is in it.
const eventSliceBytes = 24

// room is how many bytes the budget has left.
func (m *readMemory) room() int64 {
	return m.limit - m.pinned - m.ahead.bytes - m.kept.bytes
}

// pin counts n bytes in use, cutting the caches back to make room.
func (m *readMemory) pin(n int64) {
	m.pinned += n
	if over := -m.room(); over > 0 {
		m.ahead.shed(over - m.kept.shed(over))
	}
}

// unpin counts n bytes no longer in use.
func (m *readMemory) unpin(n int64) { m.pinned -= n }

// mayTakeRecord says whether the next record may be taken (read, or taken
// from a cache, and pinned).
func (m *readMemory) mayTakeRecord() bool {
	return m.pinned < m.limit || m.pinned == 0
}

// mayHandEvent says whether the next event of an open post may be handed
// out, with leased events out.
func (m *readMemory) mayHandEvent(leased int) bool {
	return m.pinned < m.limit || leased == 0
}

// take takes seq's record from a cache, pinned, or says nil.
func (m *readMemory) take(seq uint64) []byte {
	rec := m.ahead.take(seq)
	if rec == nil {
		rec = m.kept.take(seq)
	}
	if rec != nil {
		m.pin(int64(len(rec)))
	}
	return rec
}

// keepForRetry keeps a copy of a failed delivery's record for its retry,
// if there is room.
func (m *readMemory) keepForRetry(seq uint64, rec []byte) { m.kept.keep(seq, rec, m.room()) }

// readAhead keeps a record read before its turn, if there is room.
func (m *readMemory) readAhead(seq uint64, rec []byte) {
	if rec != nil && int64(len(rec)) <= m.room() {
		m.ahead.put(seq, rec)
	}
}

// recordCache holds records by sequence number, in the order they were
// kept, and counts their bytes, so that the budget can cut it back (shed)
// when the records in use need the room. It lets go of the records kept
// last first, as they are wanted last: records read ahead are kept in the
// order they are due, and records of failed deliveries in the order they
// failed, which in an outage (every retry waiting retryMax) is the order
// they are due. Keeping the order costs nothing per record let go: before,
// the read-ahead sorted all its records each time one was.
//
// The queue's mutex guards it.
type recordCache struct {
	recs  map[uint64]*list.Element // each a cachedRecord in order
	order list.List                // kept first to kept last
	bytes int64
}

type cachedRecord struct {
	seq uint64
	rec []byte
}

func (c *recordCache) has(seq uint64) bool {
	_, ok := c.recs[seq]
	return ok
}

// put keeps rec for seq, unless it holds one already.
func (c *recordCache) put(seq uint64, rec []byte) {
	if c.has(seq) {
		return
	}
	if c.recs == nil {
		c.recs = map[uint64]*list.Element{}
	}
	c.recs[seq] = c.order.PushBack(cachedRecord{seq: seq, rec: rec})
	c.bytes += int64(len(rec))
}

// take returns and forgets seq's record, or nil if it holds none.
func (c *recordCache) take(seq uint64) []byte {
	if e, ok := c.recs[seq]; ok {
		return c.remove(e)
	}
	return nil
}

func (c *recordCache) remove(e *list.Element) []byte {
	r := c.order.Remove(e).(cachedRecord)
	delete(c.recs, r.seq)
	c.bytes -= int64(len(r.rec))
	return r.rec
}

// shed lets go of the records kept last until n bytes are let go, or none
// is left, and says how many bytes it let go.
func (c *recordCache) shed(n int64) (freed int64) {
	for freed < n && c.order.Len() > 0 {
		freed += int64(len(c.remove(c.order.Back())))
	}
	return freed
}
