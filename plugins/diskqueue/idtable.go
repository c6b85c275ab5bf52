package diskqueue

import "encoding/binary"

// idTable maps event ids to when they were stored: an open-addressing hash
// table with linear probing, in memory outside the Go heap (see allocTable).
// It holds no pointers and the garbage collector never sees it, so its size
// is not multiplied by GOGC's headroom as a Go map's would be: 16 bytes a
// slot, at most 3/4 full, is what it costs (500,000 ids: 16 MiB).
//
// A slot is a 12-byte key made from the whole id (see slotKeyOf), then the
// second it was stored (4 bytes, unix seconds; 0 marks a free slot). Two ids
// share a key with odds of about n²/2^97 (10^-18 for 500,000 ids); to the
// second is enough, because the window is at least a second (see get and
// deleteIf). With 24-byte slots (the whole id and nanoseconds) the table and
// its copy while it doubled were half again as big: 36 MiB at the peak
// instead of 24 for 500,000 ids.
type idTable struct {
	slots []byte
	mask  uint64 // slots-1; the slot count is a power of two
	n     int
}

const (
	slotSize     = 16
	slotKeySize  = 12
	minTableSize = 1 << 12 // slots
)

func newIDTable() *idTable {
	t := &idTable{}
	t.resize(minTableSize)
	return t
}

func (t *idTable) len() int { return t.n }

// slotKeyOf makes the 12-byte key of k from all 16 of its bytes. Truncating
// would do for SHA-256 output, but an id of 32 hex digits from a dedupe_key
// of the user's is kept as the bytes it spells (see keyOf), and such ids
// (counters, a prefix and a sequence) may differ only in their last bytes.
// Its first 8 bytes, mix(lo ^ mix(hi)), differ for any two ids that differ
// in one half only (mix is a bijection), and spread the homes evenly.
func slotKeyOf(k *eventKey) (key [slotKeySize]byte) {
	lo, hi := binary.LittleEndian.Uint64(k[:8]), binary.LittleEndian.Uint64(k[8:])
	binary.LittleEndian.PutUint64(key[:8], mix64(lo^mix64(hi^0x9e3779b97f4a7c15)))
	binary.LittleEndian.PutUint32(key[8:], uint32(mix64(hi^mix64(lo^0xc2b2ae3d27d4eb4f))))
	return key
}

// mix64 is MurmurHash3's 64-bit finalizer: a bijection whose every output
// bit depends on every input bit.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// home is the first slot to look at for a key; slotKeyOf spreads them.
func (t *idTable) home(key []byte) uint64 {
	return binary.LittleEndian.Uint64(key[:8]) & t.mask
}

func (t *idTable) slot(i uint64) []byte { return t.slots[i*slotSize : (i+1)*slotSize] }

func storedSecondOf(s []byte) uint32 { return binary.LittleEndian.Uint32(s[slotKeySize:]) }

// secondOf is the second of at (unix nanoseconds), never 0, which marks a
// free slot (no event is stored in the first second of 1970).
func secondOf(at uint64) uint32 { return uint32(max(at/1e9, 1)) }

// find returns the slot of key (from slotKeyOf), or the free slot where it
// would go.
func (t *idTable) find(key []byte) (i uint64, found bool) {
	for i = t.home(key); ; i = (i + 1) & t.mask {
		s := t.slot(i)
		if storedSecondOf(s) == 0 {
			return i, false
		}
		if string(s[:slotKeySize]) == string(key) {
			return i, true
		}
	}
}

// get says until when k counts as stored, if it is held: the last
// nanosecond of the second it was stored in, so that an id is remembered
// for at least the window, never less.
func (t *idTable) get(k eventKey) (uint64, bool) {
	key := slotKeyOf(&k)
	i, ok := t.find(key[:])
	if !ok {
		return 0, false
	}
	return (uint64(storedSecondOf(t.slot(i)))+1)*1e9 - 1, true
}

// set records k as stored at at (unix nanoseconds).
func (t *idTable) set(k eventKey, at uint64) {
	key := slotKeyOf(&k)
	t.setSecond(key[:], secondOf(at))
}

func (t *idTable) setSecond(key []byte, second uint32) {
	if 4*(t.n+1) > 3*int(t.mask+1) {
		t.resize(2 * int(t.mask+1))
	}
	i, ok := t.find(key)
	s := t.slot(i)
	if !ok {
		copy(s, key)
		t.n++
	}
	binary.LittleEndian.PutUint32(s[slotKeySize:], second)
}

// deleteIf forgets k if it is held as stored at at: an id stored again
// since is kept. Since is a later second: an id is stored again only once
// its window, at least a second, has passed (dedupe_window refuses less).
func (t *idTable) deleteIf(k eventKey, at uint64) {
	key := slotKeyOf(&k)
	i, ok := t.find(key[:])
	if !ok || storedSecondOf(t.slot(i)) != secondOf(at) {
		return
	}
	// Backward-shift deletion: move later slots of the same run back so
	// that no lookup stops early at the hole.
	for j := (i + 1) & t.mask; ; j = (j + 1) & t.mask {
		s := t.slot(j)
		if storedSecondOf(s) == 0 {
			break
		}
		h := t.home(s[:slotKeySize])
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
		if s := old[off : off+slotSize]; storedSecondOf(s) != 0 {
			t.setSecond(s[:slotKeySize], storedSecondOf(s))
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
