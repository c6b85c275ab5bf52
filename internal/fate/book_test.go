package fate

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/stage"
)

var t0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

func TestBookFollowsAnEventToEachEnd(t *testing.T) {
	b := NewBook(10)
	b.Stored("a", "post1", t0) // off: nothing kept
	if f := b.Of(KeyOf("a"), "post1"); f.State != Unknown {
		t.Fatalf("an off Book kept %v", f)
	}
	b.Enable()
	b.Stored("a", "post1", t0)
	b.Failed("a", &stage.StatusError{Status: 503, Err: errors.New("HTTP request returned unexpected response code (503): 503 Service Unavailable")}, t0, t0.Add(2*time.Second))
	f := b.Of(KeyOf("a"), "post1")
	if f.State != Waiting || f.Attempts != 1 || f.Status != 503 || !f.NextTry.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("after a 503: %+v", f)
	}
	b.Delivered("a", t0.Add(3*time.Second))
	if f := b.Of(KeyOf("a"), "post1"); f.State != Delivered || f.Waited() != 3*time.Second || f.Attempts != 1 {
		t.Fatalf("after delivery: %+v", f)
	}

	b.Stored("b", "post1", t0)
	b.DeadLettered("b", "data/dead-letter/x.jsonl", "HTTP request returned unexpected response code (422)", 422, t0.Add(time.Second))
	b.Delivered("b", t0.Add(time.Second)) // the queue's ack after the dead letter
	if f := b.Of(KeyOf("b"), "post1"); f.State != DeadLettered || f.File != "data/dead-letter/x.jsonl" || f.Status != 422 {
		t.Fatalf("a dead letter: %+v", f)
	}

	b.Repeated("a", "post2")
	if f := b.Of(KeyOf("a"), "post2"); f.State != Repeat || f.StoredBy != "post1" {
		t.Fatalf("the repeat in post2: %+v", f)
	}
	if f := b.Of(KeyOf("a"), "post3"); f.State != Unknown {
		t.Fatalf("a post that never held the event: %+v", f)
	}
	s := b.Summarize(t0.Add(time.Minute))
	if s.Delivered != 1 || s.DeadLettered != 1 || s.Failed != 1 {
		t.Errorf("summary: %+v, want 1 delivered (the dead letter not counted twice), 1 dead letter, 1 failure", s)
	}
}

// A fast output can settle an event before the queue says it stored it.
func TestBookKeepsWhatWasReportedBeforeStored(t *testing.T) {
	b := NewBook(10)
	b.Enable()
	b.Delivered("fast", t0.Add(time.Millisecond))
	b.Stored("fast", "post1", t0)
	if f := b.Of(KeyOf("fast"), "post1"); f.State != Delivered || f.StoredBy != "post1" {
		t.Fatalf("delivered before it was said stored: %+v, want delivered, stored by post1", f)
	}
	b.Stored("fast", "post9", t0.Add(time.Hour)) // stored again after the dedupe window
	if f := b.Of(KeyOf("fast"), "post9"); f.State != Waiting {
		t.Fatalf("stored again by another post: %+v, want waiting", f)
	}
}

func TestBookForgetsTheOldestPastItsCapacity(t *testing.T) {
	b := NewBook(100)
	b.Enable()
	for i := range 250 {
		b.Stored(fmt.Sprint(i), "p", t0)
	}
	if len(b.fates) != 100 {
		t.Fatalf("kept %d fates, want 100", len(b.fates))
	}
	if b.Of(KeyOf("149"), "p").State != Unknown || b.Of(KeyOf("150"), "p").State != Waiting || b.Of(KeyOf("249"), "p").State != Waiting {
		t.Error("the Book did not keep exactly the latest 100")
	}
}

func TestPipelineCountsPerMinuteForTheLastHour(t *testing.T) {
	b := NewBook(10)
	b.Enable()
	b.Received(10, t0)
	b.Received(5, t0.Add(30*time.Second))
	b.Received(7, t0.Add(90*time.Second))
	b.QueueState(Queue{Events: 3, Oldest: time.Second}, t0.Add(90*time.Second))
	s := b.Summarize(t0.Add(90 * time.Second))
	if got := s.ReceivedPerMinute[58:]; got[0] != 15 || got[1] != 7 {
		t.Errorf("the last two minutes: %v, want [15 7]", got)
	}
	if !s.HasQueue || s.Queue.Events != 3 {
		t.Errorf("queue: %+v", s)
	}
	if later := b.Summarize(t0.Add(2 * time.Hour)); later.HasQueue || later.ReceivedPerMinute[59] != 0 {
		t.Errorf("two hours later the queue still reports or old minutes count: %+v", later)
	}
}
