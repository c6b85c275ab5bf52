package diskqueue

import (
	"fmt"
	"testing"
)

// The table against a Go map as the reference, through growth, deletes that
// shift runs back, and shrinking: every id held is found with its time,
// every id forgotten is gone.
func TestIDTableAgreesWithAMap(t *testing.T) {
	table := newIDTable()
	defer table.free()
	want := map[eventKey]uint64{}
	key := func(i int) eventKey { return keyOf(fmt.Sprint("event-", i)) }
	const n = 20000
	for i := range n {
		table.set(key(i), uint64(i+1))
		want[key(i)] = uint64(i + 1)
	}
	for i := 0; i < n; i += 3 {
		table.set(key(i), uint64(n+i+1)) // stored again: the old time must not delete it
		want[key(i)] = uint64(n + i + 1)
		table.deleteIf(key(i), uint64(i+1))
	}
	for i := range n {
		if i%3 != 0 && i%2 == 0 {
			table.deleteIf(key(i), uint64(i+1))
			delete(want, key(i))
		}
	}
	if table.len() != len(want) {
		t.Errorf("table holds %d ids, want %d", table.len(), len(want))
	}
	for i := range n {
		at, ok := table.get(key(i))
		if wantAt, wantOK := want[key(i)]; ok != wantOK || at != wantAt {
			t.Fatalf("id %d: (%d, %v), want (%d, %v)", i, at, ok, wantAt, wantOK)
		}
	}
	for i := range n {
		table.deleteIf(key(i), want[key(i)])
	}
	if table.len() != 0 || len(table.slots) != minTableSize*slotSize {
		t.Errorf("emptied table holds %d ids in %d slots, want 0 in %d", table.len(), len(table.slots)/slotSize, minTableSize)
	}
}
