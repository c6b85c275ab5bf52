package catalog

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestLearnerLearnsOffersAndSavesOnClose(t *testing.T) {
	dir := t.TempDir()
	c := New(Options{})
	l := NewLearner(c, dir, func(err error) { t.Error(err) })
	for i := range 5 {
		l.Offer("p", [][]byte{usual(i), usual(i + 1)}, "r", t0)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	kept, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := kept.View().Find("p"); !ok || p.Events != 10 {
		t.Errorf("saved catalog: %+v", kept.View())
	}
}

// TestOffersPastTheQueueBoundAreCountedNotHeld: a post that finds the queue
// full of bytes is counted by its panel and not held for learning.
func TestOffersPastTheQueueBoundAreCountedNotHeld(t *testing.T) {
	l := &Learner{offers: make(chan offer, queuePosts)} // nothing takes them
	big := make([]byte, QueueBytes/2+1)
	l.Offer("p", [][]byte{big}, "r1", t0)
	l.Offer("p", [][]byte{big}, "r2", t0)
	first, second := <-l.offers, <-l.offers
	if first.events == nil || second.events != nil || second.seen != 1 || l.queued.Load() != int64(len(big)) {
		t.Errorf("second offer held %d events (seen %d), queue %d bytes", len(second.events), second.seen, l.queued.Load())
	}
	for range queuePosts + 3 {
		l.Offer("p", [][]byte{[]byte(`{}`)}, "r", t0)
	}
	if l.Unlearnt() != 3 {
		t.Errorf("%d events unlearnt past the queue's count, want 3", l.Unlearnt())
	}
}

// TestPageWhileLearning serves the page while posts are learned and the
// catalog saved (run with -race), and checks what it shows.
func TestPageWhileLearning(t *testing.T) {
	c := New(Options{})
	l := NewLearner(c, t.TempDir(), func(err error) { t.Error(err) })
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 300 {
			l.Offer("p<script>", [][]byte{usual(i)}, "r&1", t0)
		}
	}()
	page := Page{Catalog: c, Mask: func(_ string, v []byte) string { return string(v) }}
	for range 20 {
		page.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/catalog", nil))
	}
	<-done
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	page.ServeHTTP(rec, httptest.NewRequest("GET", "/catalog", nil))
	body := rec.Body.String()
	for _, want := range []string{"p&lt;script&gt;", `href="/posts/r&amp;1"`, "events 300", "integer 300"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if strings.Contains(body, "<script>") {
		t.Error("a panel name is not escaped")
	}
}

// A post's panels are taken or refused together, by what the post keeps
// in memory (its whole data, of which the events are slices), counted
// once (found in review: each panel counted only its events' bytes, so a
// post's small panel got in past the bound and kept its big data alive).
func TestAPostIsHeldByItsWholeDataOrNotAtAll(t *testing.T) {
	l := &Learner{offers: make(chan offer, queuePosts)} // nothing takes them
	held := int64(QueueBytes/2 + 1)
	panels := []PostPanel{{"big", [][]byte{[]byte(`{"a":1}`)}}, {"small", [][]byte{[]byte(`{}`)}}}
	l.OfferPost(panels, held, "r1", t0)
	l.OfferPost(panels, held, "r2", t0)
	if l.queued.Load() != held {
		t.Errorf("queue holds %d bytes, want the first post's %d, counted once", l.queued.Load(), held)
	}
	for i := range 4 {
		o := <-l.offers
		if walked := o.events != nil; walked != (i < 2) {
			t.Errorf("offer %d (%s of %s) walked: %v, want the first post's panels walked and none of the second's", i, o.panel, o.requestID, walked)
		}
	}
}
