package diskqueue

import (
	"slices"
	"testing"
)

// seqRuns against a slice: the same numbers come out in the same order,
// across runs with gaps and runs taken apart one number at a time.
func TestSeqRunsIsAFIFO(t *testing.T) {
	var runs seqRuns
	var want []uint64
	for seq := uint64(1); seq < 2000; seq++ {
		if seq%7 == 0 || seq%100 < 3 {
			continue // gaps, as deleted records leave at load
		}
		runs.push(seq)
		want = append(want, seq)
	}
	if len(runs.runs) >= len(want)/4 {
		t.Errorf("%d runs for %d numbers: consecutive numbers are not merged", len(runs.runs), len(want))
	}
	if got := runs.appendFirst(nil, 10); !slices.Equal(got, want[:10]) {
		t.Errorf("first 10: %v, want %v", got, want[:10])
	}
	for i, w := range want {
		if runs.len() != len(want)-i {
			t.Fatalf("len %d, want %d", runs.len(), len(want)-i)
		}
		if got, ok := runs.pop(); !ok || got != w {
			t.Fatalf("pop %d: %d, %v; want %d", i, got, ok, w)
		}
	}
	if _, ok := runs.pop(); ok || runs.runs != nil {
		t.Error("an emptied FIFO still gives numbers or holds its runs")
	}
}
