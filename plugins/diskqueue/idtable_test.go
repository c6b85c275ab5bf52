package diskqueue

import (
	"fmt"
	"testing"
	"time"
)

// The table against a Go map as the reference, through growth, deletes that
// shift runs back, and shrinking: every id held is found with its time (to
// the end of its second), every id forgotten is gone.
func TestIDTableAgreesWithAMap(t *testing.T) {
	table := newIDTable()
	defer table.free()
	want := map[eventKey]uint64{}
	key := func(i int) eventKey { return keyOf(fmt.Sprint("event-", i)) }
	// Stored-at times a second and a quarter apart, a quarter into their second.
	base := uint64(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC).UnixNano())
	at := func(i int) uint64 { return base + uint64(i)*1_250_000_000 }
	const n = 20000
	for i := range n {
		table.set(key(i), at(i))
		want[key(i)] = at(i)
	}
	for i := 0; i < n; i += 3 {
		table.set(key(i), at(n+i)) // stored again: the old time must not delete it
		want[key(i)] = at(n + i)
		table.deleteIf(key(i), at(i))
	}
	for i := range n {
		if i%3 != 0 && i%2 == 0 {
			table.deleteIf(key(i), at(i))
			delete(want, key(i))
		}
	}
	if table.len() != len(want) {
		t.Errorf("table holds %d ids, want %d", table.len(), len(want))
	}
	for i := range n {
		until, ok := table.get(key(i))
		wantAt, wantOK := want[key(i)]
		endOfSecond := wantAt - wantAt%1e9 + 1e9 - 1
		if ok != wantOK || (ok && until != endOfSecond) {
			t.Fatalf("id %d: (%d, %v), want (%d, %v)", i, until, ok, endOfSecond, wantOK)
		}
	}
	for i := range n {
		table.deleteIf(key(i), want[key(i)])
	}
	if table.len() != 0 || len(table.slots) != minTableSize*slotSize {
		t.Errorf("emptied table holds %d ids in %d slots, want 0 in %d", table.len(), len(table.slots)/slotSize, minTableSize)
	}
}

// Ids of 32 hex digits from a dedupe_key of the user's are kept as the bytes
// they spell, and may differ only in their last bytes (a sequence) or their
// first (a prefix): each is still an id of its own. With the first 12 bytes
// of the id as the table's key, the 256 ids that differ in their last byte
// were taken for one.
func TestIDTableTellsApartIDsThatDifferInOneByte(t *testing.T) {
	table := newIDTable()
	defer table.free()
	at := uint64(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC).UnixNano())
	ids := map[eventKey]bool{}
	for i := range 256 {
		ids[keyOf(fmt.Sprintf("0123456789abcdef0123456789abcd%02x", i))] = true
		ids[keyOf(fmt.Sprintf("%02x23456789abcdef0123456789abcdef", i))] = true
	}
	for k := range ids {
		if _, held := table.get(k); held {
			t.Fatalf("id %x taken for one already held", k)
		}
		table.set(k, at)
	}
	if table.len() != len(ids) {
		t.Errorf("%d ids held, want %d", table.len(), len(ids))
	}
}
