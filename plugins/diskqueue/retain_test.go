package diskqueue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// retainConfig is postConfig retaining settled records for an hour: long
// enough that none is deleted on its own while a test runs.
func retainConfig(t *testing.T) queueConfig {
	t.Helper()
	c := postConfig(t)
	c.retainAfterAck = time.Hour
	return c
}

// nothingHandedOut checks that the queue hands nothing out.
func nothingHandedOut(t *testing.T, q *queue) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if l, err := q.next(ctx); err == nil {
		t.Fatalf("handed out %s again while it was retained", l.raw)
	}
}

func recordsInFile(t *testing.T, q *queue) (n int) {
	t.Helper()
	_ = q.store.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketEvents).Stats().KeyN
		return nil
	})
	return n
}

// A post whose events were all acknowledged (one after a failure, from a
// record of its own) stays in the file, is not handed out again while the
// queue runs, and is handed out whole again after a restart: its marks in
// the file never said that the acknowledged events were settled.
func TestRetainedRecordsArePublishedAgainAfterARestart(t *testing.T) {
	c := retainConfig(t)
	q, err := openQueue(c)
	if err != nil {
		t.Fatal(err)
	}
	storePost(t, q, `{"p":[{"msgid":"1"},{"msgid":"2"},{"msgid":"3"},{"msgid":"4"}]}`)
	first, second := mustTake(t, q), mustTake(t, q)
	q.ack(first, nil)
	q.ack(second, errors.New("503")) // written on its own, settled in the post
	waitSettled(t, q)                // the post's marks are written with it
	if got := deliver(t, q, 3); !slices.Contains(got, "2") {
		t.Fatalf("handed out %v, want 3, 4 and the retry of 2", got)
	}
	waitSettled(t, q)
	nothingHandedOut(t, q)
	events, bytes := q.stats()
	if events != 0 || bytes == 0 {
		t.Errorf("%d events and %d bytes counted once all was acknowledged: want 0 events, the retained bytes", events, bytes)
	}
	if n := recordsInFile(t, q); n != 2 {
		t.Errorf("%d records in the file, want 2 retained (the post and the event written on its own)", n)
	}
	if err := q.close(context.Background()); err != nil {
		t.Fatal(err)
	}

	q = open(t, c)
	if events, _ := q.stats(); events != 4 {
		t.Errorf("%d events waiting after the restart, want the 4 retained", events)
	}
	got := deliver(t, q, 4)
	slices.Sort(got)
	if fmt.Sprint(got) != "[1 2 3 4]" {
		t.Errorf("after the restart handed out %v, want each of the 4 once", got)
	}
}

// Retained records are deleted once their time is up, and not before.
func TestRetainedRecordsAreDeletedWhenTheirTimeIsUp(t *testing.T) {
	c := retainConfig(t)
	q := open(t, c)
	storePost(t, q, `{"p":[{"msgid":"1"},{"msgid":"2"}]}`, `{"p":[{"msgid":"3"}]}`)
	deliver(t, q, 3)
	q.deleteRetained(time.Now().Add(c.retainAfterAck - time.Minute))
	waitSettled(t, q)
	if n := recordsInFile(t, q); n != 2 {
		t.Fatalf("%d records in the file before their retention was up, want 2", n)
	}
	q.deleteRetained(time.Now().Add(c.retainAfterAck + 2*time.Second))
	waitSettled(t, q)
	assertBucketsEmpty(t, q)
	if events, bytes := q.stats(); events != 0 || bytes != 0 {
		t.Errorf("%d events and %d bytes counted once the retained records were deleted, want none", events, bytes)
	}
	if n := q.retained.count(); n != 0 {
		t.Errorf("%d records still listed as retained", n)
	}
}

// Retained records take room in the file: they count against max_bytes,
// so that a journal that cannot delete fills up and refuses, never grows
// without bound.
func TestRetainedRecordsCountAgainstMaxBytes(t *testing.T) {
	c := retainConfig(t)
	post := `{"p":[{"msgid":"1"}]}`
	rec, _, err := appendPostRecord(nil, postMessage(t, post), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c.maxBytes = int64(len(rec)) + 10
	q := open(t, c)
	storePost(t, q, post)
	deliver(t, q, 1)
	recs := [][]byte{rec}
	if err := q.putRecords(recs, [][]eventKey{nil}, nil, func(error, []int) {}); !errors.Is(err, ErrFull) {
		t.Fatalf("a put past max_bytes with a retained record answered %v, want %v", err, ErrFull)
	}
	q.deleteRetained(time.Now().Add(c.retainAfterAck + 2*time.Second))
	if err := q.putRecords(recs, [][]eventKey{nil}, nil, func(error, []int) {}); err != nil {
		t.Fatalf("a put once the retained record was deleted: %v", err)
	}
}

// Without retention, a delivered record is deleted as before.
func TestRecordsAreNotRetainedByDefault(t *testing.T) {
	q := open(t, postConfig(t))
	storePost(t, q, `{"p":[{"msgid":"1"}]}`)
	deliver(t, q, 1)
	waitSettled(t, q)
	assertBucketsEmpty(t, q)
}

// A store that acknowledges nothing for a while (a cluster without power)
// pauses the deletions, and for the retention once it acknowledges again:
// the records that covered its unsynced tail are still there to be given
// to it again. A single event failing among acknowledged ones pauses
// nothing.
func TestAnOutageOfTheStorePausesTheDeletions(t *testing.T) {
	c := retainConfig(t)
	q := open(t, c)
	storePost(t, q, `{"p":[{"msgid":"1"}]}`, `{"p":[{"msgid":"2"}]}`, `{"p":[{"msgid":"3"}]}`)
	deliver(t, q, 2)
	waitSettled(t, q)
	start := time.Now()
	due := start.Add(c.retainAfterAck + 2*time.Second)

	// A failure among acknowledgements is no outage.
	q.retained.noteAck(errors.New("too big"), start)
	if q.retained.paused(start.Add(time.Second)) {
		t.Fatal("one failure paused the deletions")
	}
	// Nothing acknowledged for outageAfter: an outage, until retention
	// after it ended.
	q.retained.noteAck(errors.New("no responders"), start.Add(outageAfter+time.Second))
	q.deleteRetained(due)
	if n := recordsInFile(t, q); n != 3 {
		t.Fatalf("%d records in the file after deletions due in an outage, want all 3 kept", n)
	}
	q.retained.noteAck(nil, due.Add(time.Second))
	q.deleteRetained(due.Add(2 * time.Second))
	if n := recordsInFile(t, q); n != 3 {
		t.Fatalf("%d records in the file just after the outage ended, want all 3 kept for the retention", n)
	}
	q.deleteRetained(due.Add(c.retainAfterAck + time.Second))
	waitSettled(t, q)
	if n := recordsInFile(t, q); n != 1 {
		t.Errorf("%d records in the file once the retention after the outage passed, want the 1 never delivered", n)
	}
}

// A store that loses power when nothing comes to be published fails
// nothing: the output's lost connection pauses the deletions, for as long
// as the outage lasts and for the retention after the next
// acknowledgement, so that the reconnect's republish still finds the
// records that covered the store's unsynced tail.
func TestAQuietOutageOfTheStorePausesTheDeletions(t *testing.T) {
	c := retainConfig(t)
	q := open(t, c)
	storePost(t, q, `{"p":[{"msgid":"1"}]}`, `{"p":[{"msgid":"2"}]}`)
	deliver(t, q, 2)
	waitSettled(t, q)
	if n := q.retained.count(); n != 2 {
		t.Fatalf("%d records retained, want the 2 delivered", n)
	}
	start := time.Now()
	due := start.Add(c.retainAfterAck + 2*time.Second)

	q.noteOutage(start) // no post comes, so no publish fails
	q.deleteRetained(due)
	q.deleteRetained(due.Add(time.Hour)) // a long outage
	waitSettled(t, q)
	if n := recordsInFile(t, q); n != 2 {
		t.Fatalf("%d records in the file after deletions due in a quiet outage, want both kept", n)
	}
	back := due.Add(time.Hour + time.Second)
	q.retained.noteAck(nil, back) // the store acknowledges again
	q.deleteRetained(back.Add(time.Second))
	if n := recordsInFile(t, q); n != 2 {
		t.Fatalf("%d records in the file just after the outage ended, want both kept for the retention", n)
	}
	q.deleteRetained(back.Add(c.retainAfterAck + time.Second))
	waitSettled(t, q)
	assertBucketsEmpty(t, q)
}
