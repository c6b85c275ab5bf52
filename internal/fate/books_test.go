package fate

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Two destinations fed the same events: each keeps its own fate of an
// event, a dead letter goes to the Book its message names, and what was
// received counts at both.
func TestBooksKeepAnAccountPerDestination(t *testing.T) {
	books := NewBooks(10)
	meiro, archive := books.For("Meiro Events"), books.For("archive")
	if books.For("archive") != archive {
		t.Fatal("a destination's Book was made twice")
	}
	books.Enable() // after the Books were made, as the inspector may be
	if !meiro.Enabled() || !archive.Enabled() {
		t.Fatal("Enable did not turn on the Books made before it")
	}
	for _, b := range []*Book{meiro, archive} {
		b.Stored("a", "post1", t0)
		b.Stored("b", "post1", t0)
	}
	books.Received(2, t0)
	archive.Delivered("a", t0.Add(time.Second))
	meiro.Failed("a", errors.New("503"), t0.Add(time.Second), t0.Add(2*time.Second))
	ctx := WithBook(context.Background(), meiro)
	books.Of(ctx).DeadLettered("b", "dead-letter/x.jsonl", "400", 400, t0.Add(time.Second))

	if f := meiro.Of(KeyOf("a"), "post1"); f.State != Waiting || f.Attempts != 1 {
		t.Errorf("at Meiro Events: %+v, want waiting after a failure", f)
	}
	if f := archive.Of(KeyOf("a"), "post1"); f.State != Delivered {
		t.Errorf("at the archive: %+v, want delivered", f)
	}
	if f := archive.Of(KeyOf("b"), "post1"); f.State != Waiting {
		t.Errorf("Meiro Events' dead letter reached the archive's Book: %+v", f)
	}
	if f := meiro.Of(KeyOf("b"), "post1"); f.State != DeadLettered {
		t.Errorf("the dead letter at Meiro Events: %+v", f)
	}
	for _, b := range []*Book{meiro, archive} {
		if got := b.Summarize(t0).ReceivedPerMinute[59]; got != 2 {
			t.Errorf("%s counts %d received, want 2", b.Destination(), got)
		}
	}
	if all := books.All(); len(all) != 2 || all[0] != meiro || all[1] != archive {
		t.Errorf("All is %v, want Meiro Events, then archive", all)
	}
	if books.Of(context.Background()) != nil {
		t.Error("with two destinations, a message that names none was given one")
	}
	one := NewBooks(10)
	if only := one.For("events"); one.Of(context.Background()) != only {
		t.Error("with one destination, a message that names none was not given it")
	}
}
