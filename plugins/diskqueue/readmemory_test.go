package diskqueue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// paddedPost is a post of n events of about size bytes each, told apart by
// their msgid (prefix-index).
func paddedPost(prefix string, n, size int) string {
	events := make([]string, n)
	for i := range events {
		events[i] = fmt.Sprintf(`{"msgid":"%s-%d","event_params":{"ts":240301101500,"pad":%q}}`, prefix, i, strings.Repeat("x", size))
	}
	return `{"panel":[` + strings.Join(events, ",") + `]}`
}

// heldBytes is what the read path holds: pinned, read ahead and kept.
func heldBytes(q *queue) int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.mem.pinned + q.mem.ahead.bytes + q.mem.kept.bytes
}

// A backlog of posts many times the read budget is delivered whole, with
// deliveries out and some of them failing (written as records of their
// own, kept for their retry or read again), and the read path never holds
// more than the budget plus the last record taken and the last event handed
// out. Before the budget, the first read took in the next 128 records.
func TestReadPathHoldsItsBudgetThroughABacklogWithFailures(t *testing.T) {
	const (
		posts, perPost, eventSize = 30, 20, 500
		budget                    = 64 << 10
		out                       = 16 // deliveries out at once
	)
	c := postConfig(t)
	c.readMemory = budget
	c.retryInitial, c.retryMax = time.Millisecond, time.Millisecond
	q := open(t, c)
	for i := range posts {
		storePost(t, q, paddedPost(fmt.Sprint(i), perPost, eventSize))
	}
	waiting := heldBytes(q) // nothing is read yet
	_, stored := q.stats()
	if waiting != 0 || stored < 4*budget {
		t.Fatalf("%d bytes held before any read, %d stored: want none, and a backlog of several budgets", waiting, stored)
	}

	post := int64(len(paddedPost("00", perPost, eventSize))) + perPost*eventSliceBytes + 256 // the record, with its header
	bound := budget + post + eventSize + 256
	var most int64
	got := map[string]int{}
	ctx, allDelivered := context.WithTimeout(context.Background(), 20*time.Second)
	defer allDelivered()
	leases := make(chan *lease, out)
	acked := make(chan struct{})
	go func() {
		defer close(acked)
		n := 0
		for l := range leases {
			// Every fifth event fails once: its post goes on without it,
			// and it comes back as a record of its own.
			if n++; n%5 == 0 && l.attempts == 0 {
				q.ack(l, errors.New("503"))
				continue
			}
			got[msgid(t, l)]++
			q.ack(l, nil)
			if len(got) == posts*perPost {
				allDelivered()
			}
		}
	}()
	for {
		l, err := q.next(ctx)
		if err != nil {
			break
		}
		most = max(most, heldBytes(q))
		leases <- l
	}
	close(leases)
	<-acked
	if len(got) != posts*perPost {
		t.Fatalf("%d events delivered of %d", len(got), posts*perPost)
	}
	t.Logf("held %d bytes at most, budget %d, backlog %d", most, budget, stored)
	if most > bound {
		t.Errorf("the read path held %d bytes at most, over the budget of %d plus a post and an event (%d)", most, budget, bound)
	}
	if most < budget/2 {
		t.Errorf("the read path held %d bytes at most: the budget of %d was never used, the premise did not happen", most, budget)
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
	}
	waitSettled(t, q)
	if held := heldBytes(q); held != 0 {
		t.Errorf("%d bytes still counted as held once everything was delivered", held)
	}
	assertBucketsEmpty(t, q)
}

// A post bigger than the whole budget still goes: its events one at a
// time, the next handed out once the one out settles.
func TestAPostOverTheBudgetGoesOneEventAtATime(t *testing.T) {
	c := postConfig(t)
	c.readMemory = 1 << 10
	q := open(t, c)
	storePost(t, q, paddedPost("big", 10, 500), paddedPost("next", 2, 10))
	var got []string
	for range 10 {
		l, _ := take(t, q)
		got = append(got, msgid(t, l))
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		if again, err := q.next(ctx); err == nil {
			t.Fatalf("%s handed out while %s was out and the budget full", msgid(t, again), got[len(got)-1])
		}
		cancel()
		q.ack(l, nil)
	}
	got = append(got, deliver(t, q, 2)...)
	if want := "big-0 big-9 next-0 next-1"; got[0]+" "+got[9]+" "+got[10]+" "+got[11] != want {
		t.Errorf("handed out %v, want the big post's ten events in order, then the next post's", got)
	}
	waitSettled(t, q)
	assertBucketsEmpty(t, q)
}

// When records in use grow into the room the caches took, kept records go
// first (they are wanted latest), then the records read ahead that are due
// last; each is read from the file again when its turn comes.
func TestPinnedRecordsCutTheCachesBackInOrder(t *testing.T) {
	q := &queue{mem: readMemory{limit: 100, kept: keptRetries{max: 50}}}
	for seq := uint64(1); seq <= 3; seq++ {
		q.mem.ahead.put(seq, bytes.Repeat([]byte{'a'}, 20))
	}
	q.mem.kept.keep(9, bytes.Repeat([]byte{'k'}, 20), q.mem.room())
	if q.mem.room() != 20 {
		t.Fatalf("room %d, want 20 left of 100 after 60 read ahead and 20 kept", q.mem.room())
	}
	q.mem.pin(30) // 10 over: the kept record goes
	if q.mem.kept.bytes != 0 || q.mem.ahead.bytes != 60 {
		t.Fatalf("kept %d, read ahead %d; want the kept record let go first", q.mem.kept.bytes, q.mem.ahead.bytes)
	}
	q.mem.pin(30) // 20 over: the record due last goes
	if q.mem.ahead.has(3) || !q.mem.ahead.has(1) || !q.mem.ahead.has(2) {
		t.Errorf("read ahead still holds 1: %t, 2: %t, 3: %t; want 3, due last, let go", q.mem.ahead.has(1), q.mem.ahead.has(2), q.mem.ahead.has(3))
	}
	if !q.mem.mayTakeRecord() {
		t.Error("no record may be taken with 60 of 100 bytes pinned")
	}
	q.mem.pin(40)
	if q.mem.mayTakeRecord() || q.mem.ahead.bytes != 0 {
		t.Errorf("with the budget pinned whole, a record may be taken: %t, %d bytes still read ahead", q.mem.mayTakeRecord(), q.mem.ahead.bytes)
	}
}

// A cache lets go of the records it kept last first, whole records until
// the bytes asked for are let go, whatever was taken from its middle.
func TestRecordCacheLetsGoOfTheRecordsKeptLastFirst(t *testing.T) {
	var c recordCache
	for seq := uint64(1); seq <= 5; seq++ {
		c.put(seq, bytes.Repeat([]byte{byte('0' + seq)}, 10))
	}
	if rec := c.take(3); string(rec) != "3333333333" {
		t.Fatalf("took %q for 3", rec)
	}
	c.put(3, bytes.Repeat([]byte{'3'}, 10)) // kept again: now the last
	c.put(3, []byte("not again"))
	if freed := c.shed(15); freed != 20 || c.has(3) || c.has(5) {
		t.Errorf("shedding 15 bytes let go of %d, 3 still held: %t, 5: %t; want 3 and 5, kept last, let go", freed, c.has(3), c.has(5))
	}
	if c.bytes != 30 || !c.has(1) || !c.has(2) || !c.has(4) || len(c.recs) != 3 {
		t.Errorf("%d bytes in %d records left, holding 1, 2, 4: %t %t %t; want 30 in those three", c.bytes, len(c.recs), c.has(1), c.has(2), c.has(4))
	}
	if freed := c.shed(1 << 20); freed != 30 || c.bytes != 0 || c.order.Len() != 0 {
		t.Errorf("shedding everything let go of %d bytes, %d left", freed, c.bytes)
	}
}
