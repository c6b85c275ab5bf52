package catalog

import (
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
