package diskqueue

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
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

// Big puts still pending when the queue closes are all stored and
// acknowledged, although a commit takes them only commitPutBytes at a time.
//
// The test holds the committer back by holding the file's write
// transaction: the committer takes the first big put and waits for the
// file, while the other puts stay pending. Its wake-up is taken away before
// close, so that once the file is let go the committer sees only the stop,
// with puts still pending, whatever order its select picks.
func TestCloseStoresEveryBigPutPending(t *testing.T) {
	c := testConfig(t)
	c.maxBytes, c.maxEvents = 64<<20, 10
	q, err := openQueue(c)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := q.store.db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	const puts = 6
	big := record(t, `"`+strings.Repeat("x", 5<<20)+`"`) // two do not fit in commitPutBytes
	done := make(chan error, puts)
	for range puts {
		if err := q.put([][]byte{big}, []string{""}, nil, func(err error, _ []int) { done <- err }); err != nil {
			t.Fatal(err)
		}
	}
	for deadline, pending := time.Now().Add(5*time.Second), puts; pending == puts; { // until the committer takes the first
		if time.Now().After(deadline) {
			t.Fatal("the committer never took a put")
		}
		runtime.Gosched()
		q.store.mu.Lock()
		pending = len(q.store.pending.puts)
		q.store.mu.Unlock()
	}
	select {
	case <-q.store.wakeWrite:
	default:
	}
	q.store.mu.Lock()
	pending := len(q.store.pending.puts)
	q.store.mu.Unlock()
	if answered := len(done); pending < 2 || answered > 0 {
		t.Fatalf("premise: %d big puts pending and %d answered before close, want at least 2 pending and none answered", pending, answered)
	}
	closed := make(chan error, 1)
	go func() { closed <- q.close(context.Background()) }()
	<-q.store.stop
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	for i := range puts {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("put %d: %v", i, err)
			}
		default:
			t.Fatalf("%d of %d big puts pending at close were never answered", puts-i, puts)
		}
	}
	q = open(t, c)
	if events, _ := q.stats(); events != puts {
		t.Errorf("%d events in the queue after reopening, want %d", events, puts)
	}
}
