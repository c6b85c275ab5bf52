package diskqueue

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// A failed delivery's record is kept for its retry, as a copy, up to the
// bound; past it, retries are read from the file again.
func TestKeptRetriesHoldCopiesUpToTheBound(t *testing.T) {
	var k keptRetries
	rec := bytes.Repeat([]byte{'x'}, 1<<20)
	for seq := range uint64(keptRetriesMax>>20 + 2) {
		k.keep(seq, rec)
	}
	if len(k.recs) != keptRetriesMax>>20 || k.bytes != keptRetriesMax {
		t.Fatalf("kept %d records, %d bytes; want %d, the bound", len(k.recs), k.bytes, keptRetriesMax)
	}
	rec[0] = 'y' // the delivery's message may still hold the original
	if got := k.take(0); got == nil || got[0] != 'x' {
		t.Fatal("the kept record is not a copy made at the failure")
	}
	if k.take(0) != nil || k.bytes != keptRetriesMax-1<<20 {
		t.Errorf("a record was handed out twice, or its bytes not given back (%d)", k.bytes)
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
	if _, kept := q.kept.recs[l.seq]; !kept {
		t.Fatal("the failed record was not kept for its retry")
	}
	again, body := take(t, q)
	if body != "once failed" || again.seq != l.seq {
		t.Errorf("the retry handed out %q (seq %d), want the failed record again", body, again.seq)
	}
	q.ack(again, nil)
	if len(q.kept.recs) != 0 {
		t.Errorf("%d records still kept after the retry", len(q.kept.recs))
	}
}
