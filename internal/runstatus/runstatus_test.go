package runstatus

import (
	"slices"
	"testing"
)

// reset forgets every report, so that each test starts from none.
func reset(t *testing.T) {
	t.Helper()
	mu.Lock()
	incomplete, pending = nil, map[*func() string]bool{}
	mu.Unlock()
}

func TestReportsListIncompleteWorkInTheOrderMade(t *testing.T) {
	reset(t)
	if r := Reports(); len(r) != 0 {
		t.Fatalf("reports before any: %q", r)
	}
	Incomplete("first")
	Incomplete("second")
	if r := Reports(); !slices.Equal(r, []string{"first", "second"}) {
		t.Errorf("Reports() = %q, want first then second", r)
	}
}

// Pending work is reported with what its description says when asked,
// after the incomplete work, until it is done; done twice is harmless.
func TestPendingIsReportedUntilDone(t *testing.T) {
	reset(t)
	delivered := 0
	done := Pending(func() string { return "stopped early, delivered " + string(rune('0'+delivered)) })
	Incomplete("a file unread")
	delivered = 3
	if r := Reports(); !slices.Equal(r, []string{"a file unread", "stopped early, delivered 3"}) {
		t.Errorf("Reports() = %q, want the unread file then the pending work as it stands", r)
	}
	done()
	done()
	if r := Reports(); !slices.Equal(r, []string{"a file unread"}) {
		t.Errorf("after done, Reports() = %q, want only the unread file", r)
	}
}

// Two pending pieces of work with the same description are two reports,
// each removed by its own done.
func TestEachPendingIsItsOwn(t *testing.T) {
	reset(t)
	describe := func() string { return "pending" }
	doneA := Pending(describe)
	Pending(describe)
	if r := Reports(); len(r) != 2 {
		t.Fatalf("Reports() = %q, want two", r)
	}
	doneA()
	if r := Reports(); !slices.Equal(r, []string{"pending"}) {
		t.Errorf("after one done, Reports() = %q, want the other", r)
	}
}
