package diskqueue

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
)

// BenchmarkIDTable looks up, stores and forgets ids in a table holding
// 500,000 (dedupe_max_ids' default) as a burst does: each id is new, and
// the oldest is forgotten as it is stored.
func BenchmarkIDTable(b *testing.B) {
	const held = 500000
	key := func(i int) (k eventKey) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(i))
		sum := sha256.Sum256(n[:])
		copy(k[:], sum[:])
		return k
	}
	t := newIDTable()
	defer t.free()
	const at = uint64(1_800_000_000e9)
	for i := range held {
		t.set(key(i), at)
	}
	keys := make([]eventKey, held+b.N)
	for i := range keys {
		keys[i] = key(i)
	}
	b.ResetTimer()
	for i := range b.N {
		k := keys[held+i]
		if _, ok := t.get(k); ok {
			b.Fatal("a new id was found")
		}
		t.set(k, at)
		t.deleteIf(keys[i], at)
	}
}
