package diskqueue

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// A failed delivery's record is kept for its retry, as a copy, up to its
// bound and within the room the read path's budget has left; past them,
// and once shed, retries are read from the file again.
func TestKeptRetriesHoldCopiesUpToTheBound(t *testing.T) {
	const bound = 8 << 20
	k := keptRetries{max: bound}
	rec := bytes.Repeat([]byte{'x'}, 1<<20)
	for seq := range uint64(bound>>20 + 2) {
		k.keep(seq, rec, 1<<30)
	}
	if len(k.recs) != bound>>20 || k.bytes != bound {
		t.Fatalf("kept %d records, %d bytes; want %d, the bound", len(k.recs), k.bytes, bound)
	}
	rec[0] = 'y' // the delivery's message may still hold the original
	if got := k.take(0); got == nil || got[0] != 'x' {
		t.Fatal("the kept record is not a copy made at the failure")
	}
	if k.take(0) != nil || k.bytes != bound-1<<20 {
		t.Errorf("a record was handed out twice, or its bytes not given back (%d)", k.bytes)
	}
	if k.keep(100, rec, 1<<20-1); k.take(100) != nil {
		t.Error("a record was kept with less room left in the budget than its size")
	}
	if freed := k.shed(1); freed != 1<<20 || k.bytes != bound-2<<20 {
		t.Errorf("shedding a byte let go of %d bytes, %d kept; want one record let go", freed, k.bytes)
	}
	if freed := k.shed(1 << 40); freed != bound-2<<20 || k.bytes != 0 || len(k.recs) != 0 {
		t.Errorf("shedding everything let go of %d bytes, %d kept in %d records", freed, k.bytes, len(k.recs))
	}
}

// End to end in the queue: a failed record comes back intact from memory.
func TestAFailedRecordComesBackIntactForItsRetry(t *testing.T) {
	c := testConfig(t)
	c.retryInitial, c.retryMax = 10*time.Millisecond, 10*time.Millisecond
	q := open(t, c)
	if err := store(t, q, []string{"once failed"}, nil); err != nil {
		t.Fatal(err)
	}
	l, _ := take(t, q)
	q.ack(l, errors.New("500"))
	if _, kept := q.mem.kept.recs[l.seq]; !kept {
		t.Fatal("the failed record was not kept for its retry")
	}
	again, body := take(t, q)
	if body != "once failed" || again.seq != l.seq {
		t.Errorf("the retry handed out %q (seq %d), want the failed record again", body, again.seq)
	}
	q.ack(again, nil)
	if len(q.mem.kept.recs) != 0 {
		t.Errorf("%d records still kept after the retry", len(q.mem.kept.recs))
	}
}
