package diskqueue

import (
	"slices"
	"testing"
)

// A commit takes every small put and big ones up to commitPutBytes, in
// order; the big ones left go first in the next.
func TestSplitPutsLetsSmallPutsPastBigOnes(t *testing.T) {
	const big = 6 << 20 // two do not fit in commitPutBytes
	puts := []*putOp{{size: big}, {size: 700}, {size: big}, {size: 900}, {size: big}}
	now, later := splitPuts(puts)
	if want := []*putOp{puts[0], puts[1], puts[3]}; !slices.Equal(now, want) {
		t.Errorf("this commit takes %v, want the first big put and both small ones", sizes(now))
	}
	if want := []*putOp{puts[2], puts[4]}; !slices.Equal(later, want) {
		t.Errorf("left for later %v, want the two other big puts in order", sizes(later))
	}
	if now, later := splitPuts([]*putOp{{size: 3 * commitPutBytes}}); len(now) != 1 || len(later) != 0 {
		t.Errorf("a put over commitPutBytes alone: %v now, %v later; want it taken", sizes(now), sizes(later))
	}
}

func sizes(puts []*putOp) []int64 {
	var out []int64
	for _, p := range puts {
		out = append(out, p.size)
	}
	return out
}
