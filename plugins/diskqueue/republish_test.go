package diskqueue

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	bolt "go.etcd.io/bbolt"

	"github.com/netcore-connect/netcore-connect/internal/journal"
)

// sortedIDs delivers n events and returns their msgids, sorted.
func sortedIDs(t *testing.T, q *queue, n int) string {
	t.Helper()
	got := deliver(t, q, n)
	slices.Sort(got)
	return fmt.Sprint(got)
}

// Told to, a running journal hands out again every event it retains (a
// post whose events were all acknowledged, one of them from a record of
// its own after a failure), each once, before what was stored after; an
// event handed out again and acknowledged is retained again, from then,
// so that a second loss of the store is covered too.
func TestRetainedRecordsArePublishedAgainWhenTold(t *testing.T) {
	c := retainConfig(t)
	var counted int
	c.onRepublished = func(events int) { counted += events }
	q := open(t, c)
	storePost(t, q, `{"p":[{"msgid":"1"},{"msgid":"2"},{"msgid":"3"}]}`)
	first, second := mustTake(t, q), mustTake(t, q)
	q.ack(first, nil)
	q.ack(second, errors.New("503")) // written on its own, settled in the post
	waitSettled(t, q)
	if got := sortedIDs(t, q, 2); got != "[2 3]" {
		t.Fatalf("handed out %v, want 3 and the retry of 2", got)
	}
	waitSettled(t, q)
	storePost(t, q, `{"p":[{"msgid":"4"}]}`) // stored after, not yet out
	if n := q.retained.count(); n != 2 {
		t.Fatalf("%d records retained, want 2 (the post and the event written on its own)", n)
	}

	r, err := q.republish()
	if err != nil {
		t.Fatal(err)
	}
	if r.records != 2 || r.events != 3 || counted != 3 {
		t.Errorf("republish handed out %+v (%d counted), want 2 records and 3 events", r, counted)
	}
	if events, _ := q.stats(); events != 4 {
		t.Errorf("%d events waiting after the republish, want the 3 retained and the 1 new", events)
	}
	out := deliver(t, q, 4)
	if got := fmt.Sprint(out[3:]); got != "[4]" {
		t.Errorf("handed out %v: want the 3 retained, then 4 stored after them", out)
	}
	if got := slices.Sorted(slices.Values(out[:3])); fmt.Sprint(got) != "[1 2 3]" {
		t.Errorf("handed out again %v, want each of 1, 2, 3 once", got)
	}
	waitSettled(t, q)
	nothingHandedOut(t, q)

	// Retained again from their new acknowledgement: not deleted when
	// their first retention would have ended (an hour from the start).
	q.deleteRetained(time.Now().Add(c.retainAfterAck - 30*time.Second))
	waitSettled(t, q)
	if n := recordsInFile(t, q); n != 3 {
		t.Fatalf("%d records in the file, want the 3 retained again", n)
	}
	// A second republish covers a second loss.
	if r, err = q.republish(); err != nil || r.events != 4 {
		t.Fatalf("a second republish handed out %+v (%v), want the 4 events", r, err)
	}
	if got := sortedIDs(t, q, 4); got != "[1 2 3 4]" {
		t.Errorf("the second republish handed out %v", got)
	}
}

// An event out for delivery is never handed out twice at once: a post
// with one event acknowledged and one out when the journal is told to
// publish again hands out its rest, and its acknowledged events again once
// its last settles.
func TestRepublishWaitsForAPostsEventsOut(t *testing.T) {
	c := retainConfig(t)
	q := open(t, c)
	storePost(t, q, `{"p":[{"msgid":"1"},{"msgid":"2"},{"msgid":"3"}]}`)
	acked, out := mustTake(t, q), mustTake(t, q)
	q.ack(acked, nil)

	r, err := q.republish()
	if err != nil {
		t.Fatal(err)
	}
	if r.records != 0 || r.pending != 1 {
		t.Errorf("republish with a post open said %+v, want no record and 1 post pending", r)
	}
	if again, _ := q.republish(); again.pending != 0 {
		t.Errorf("a second republish counted the post again: %+v", again)
	}
	third := mustTake(t, q)
	if id := msgid(t, third); id != "3" {
		t.Fatalf("handed out %s while 2 was out, want 3", id)
	}
	nothingHandedOut(t, q) // 2 is out: not handed out again
	q.ack(third, nil)
	nothingHandedOut(t, q)
	q.ack(out, nil)
	if got := sortedIDs(t, q, 3); got != "[1 2 3]" {
		t.Errorf("once the post settled, handed out %v again, want its 3 events", got)
	}
	waitSettled(t, q)
	nothingHandedOut(t, q)
	if n := q.retained.count(); n != 1 {
		t.Errorf("%d records retained once all was acknowledged again, want the post", n)
	}
}

// A journal that cannot read what it retains makes the endpoint answer
// 500 with its error, never a 200 that an operator takes for its tail
// published again; what it retains stays. The file is closed under the
// queue to make the read fail, as bbolt's reads fail only on a file they
// cannot use.
func TestARepublishThatCannotReadItsRecordsAnswers500(t *testing.T) {
	q := open(t, retainConfig(t))
	storePost(t, q, `{"p":[{"msgid":"1"}]}`)
	deliver(t, q, 1)
	waitSettled(t, q)
	if n := q.retained.count(); n != 1 {
		t.Fatalf("%d records retained, want the 1 delivered", n)
	}
	if err := q.store.db.Close(); err != nil {
		t.Fatal(err)
	}
	h := &journal.Hub{}
	h.Register(&diskQueue{q: q, log: service.MockResources().Logger()})
	srv := httptest.NewServer(journal.Handler(h))
	defer srv.Close()
	resp, err := http.Post(srv.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "database not open") {
		t.Errorf("a journal that could not read its file: %s %s, want 500 with the read error", resp.Status, body)
	}
	if n := q.retained.count(); n != 1 {
		t.Errorf("%d records retained after the failed republish, want the 1 kept", n)
	}
}

// A journal retaining more than a read's chunk hands out each record
// once; one retained record gone from the file (deleted behind the
// queue's back, as damage would) is skipped and no longer counts against
// max_bytes.
func TestARepublishOfMoreThanAChunkCountsWhatIsInTheFile(t *testing.T) {
	c := retainConfig(t)
	n := republishChunk + 100
	c.maxBytes, c.maxEvents, c.dedupeMaxIDs = 64<<20, int64(2*n), int64(2*n)
	q := open(t, c)
	posts := make([]string, n)
	for i := range posts {
		posts[i] = fmt.Sprintf(`{"p":[{"msgid":"%d"}]}`, i)
	}
	storePost(t, q, posts...)
	deliver(t, q, n)
	waitSettled(t, q)
	if got := q.retained.count(); got != n {
		t.Fatalf("%d records retained, want the %d delivered", got, n)
	}
	_, before := q.stats()
	var gone int64
	if err := q.store.db.Update(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bucketEvents).Cursor()
		_, v := cur.First()
		gone = int64(len(v))
		return cur.Delete()
	}); err != nil || gone == 0 {
		t.Fatalf("deleting a retained record behind the queue: %v", err)
	}

	r, err := q.republish()
	if err != nil || r.records != n-1 || r.events != n-1 {
		t.Fatalf("republish handed out %+v (%v), want the %d records still in the file", r, err, n-1)
	}
	if _, after := q.stats(); after != before-gone {
		t.Errorf("%d bytes counted after the republish, want %d: the %d of the record gone no longer count", after, before-gone, gone)
	}
	got := deliver(t, q, n-1)
	if distinct := len(slices.Compact(slices.Sorted(slices.Values(got)))); distinct != n-1 {
		t.Errorf("handed out %d distinct events of %d, want each of the %d once", distinct, len(got), n-1)
	}
	nothingHandedOut(t, q)
}

// Republishing is for journals: a queue that retains nothing hands
// nothing out again, and its delivered records are gone.
func TestRepublishWithoutRetentionHandsOutNothing(t *testing.T) {
	q := open(t, postConfig(t))
	storePost(t, q, `{"p":[{"msgid":"1"}]}`)
	deliver(t, q, 1)
	if r, err := q.republish(); err != nil || r != (republished{}) {
		t.Errorf("republish without retention: %+v, %v", r, err)
	}
	nothingHandedOut(t, q)
}

func TestMergeKeepsTheNumbersInOrder(t *testing.T) {
	var r seqRuns
	for _, s := range []uint64{5, 6, 7, 10, 20} {
		r.push(s)
	}
	r.merge([]uint64{1, 2, 8, 9, 30})
	if got := fmt.Sprint(r.appendFirst(nil, r.len()), len(r.runs)); got != "[1 2 5 6 7 8 9 10 20 30] 4" {
		t.Errorf("merged: %s, want the 10 numbers in order, in 4 runs", got)
	}
}
