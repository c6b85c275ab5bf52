package diskqueue

import "encoding/binary"

// idTable maps 16-byte event ids to when they were stored: an
// open-addressing hash table with linear probing, in memory outside the Go
// heap (see allocTable). It holds no pointers and the garbage collector
// never sees it, so its size is not multiplied by GOGC's headroom as a Go
// map's would be: 24 bytes a slot, at most 5/8 full (a lookup of an id not
// held, the common case, then reads about 4 slots), is what it costs.
//
// A slot is the id (16 bytes) then stored-at (8 bytes, unix nanoseconds);
// stored-at 0 marks a free slot (no event is stored at the epoch).
type idTable struct {
	slots []byte
	mask  uint64 // slots-1; the slot count is a power of two
	n     int
}

const (
	slotSize     = 24
	minTableSize = 1 << 12 // slots
)

func newIDTable() *idTable {
	t := &idTable{}
	t.resize(minTableSize)
	return t
}

func (t *idTable) len() int { return t.n }

// home is the first slot to look at for k. The ids are SHA-256 output (or
// hex of it), so their first bytes are already uniformly spread.
func (t *idTable) home(k *eventKey) uint64 {
	return binary.LittleEndian.Uint64(k[:8]) & t.mask
}

func (t *idTable) slot(i uint64) []byte { return t.slots[i*slotSize : (i+1)*slotSize] }

func storedAtOf(s []byte) uint64 { return binary.LittleEndian.Uint64(s[16:]) }

// find returns the slot of k, or the free slot where it would go.
func (t *idTable) find(k *eventKey) (i uint64, found bool) {
	for i = t.home(k); ; i = (i + 1) & t.mask {
		s := t.slot(i)
		if storedAtOf(s) == 0 {
			return i, false
		}
		if [16]byte(s[:16]) == *k {
			return i, true
		}
	}
}

// get says when k was stored, if it is held.
func (t *idTable) get(k eventKey) (uint64, bool) {
	i, ok := t.find(&k)
	if !ok {
		return 0, false
	}
	return storedAtOf(t.slot(i)), true
}

// set records k as stored at at (not 0).
func (t *idTable) set(k eventKey, at uint64) {
	if 8*(t.n+1) > 5*int(t.mask+1) {
		t.resize(2 * int(t.mask+1))
	}
	i, ok := t.find(&k)
	s := t.slot(i)
	if !ok {
		copy(s, k[:])
		t.n++
	}
	binary.LittleEndian.PutUint64(s[16:], at)
}

// deleteIf forgets k if it is held as stored at at: an id stored again
// since is kept.
func (t *idTable) deleteIf(k eventKey, at uint64) {
	i, ok := t.find(&k)
	if !ok || storedAtOf(t.slot(i)) != at {
		return
	}
	// Backward-shift deletion: move later slots of the same run back so
	// that no lookup stops early at the hole.
	for j := (i + 1) & t.mask; ; j = (j + 1) & t.mask {
		s := t.slot(j)
		if storedAtOf(s) == 0 {
			break
		}
		h := t.home((*eventKey)(s[:16]))
		// s may fill the hole at i only if its home is not in (i, j].
		if (j > i && (h <= i || h > j)) || (j < i && h <= i && h > j) {
			copy(t.slot(i), s)
			i = j
		}
	}
	clear(t.slot(i))
	t.n--
	if t.n < int(t.mask+1)/8 && t.mask+1 > minTableSize {
		t.resize(int(t.mask+1) / 2)
	}
}

// resize moves every id into a table of size slots.
func (t *idTable) resize(size int) {
	old := t.slots
	t.slots, t.mask, t.n = allocTable(size*slotSize), uint64(size-1), 0
	for off := 0; off < len(old); off += slotSize {
		if s := old[off : off+slotSize]; storedAtOf(s) != 0 {
			t.set(eventKey(s[:16]), storedAtOf(s))
		}
	}
	if old != nil {
		freeTable(old)
	}
}

// free gives the table's memory back; the table is unusable after.
func (t *idTable) free() {
	if t.slots != nil {
		freeTable(t.slots)
		t.slots = nil
	}
}
