package diskqueue

import (
	"bytes"
	"time"
)

// retryItem is a failed event waiting for its retry: its record's sequence
// number, the deliveries tried, and when it may be tried again.
type retryItem struct {
	seq      uint64
	attempts int
	due      time.Time
}

// retryHeap orders nacked records by when they may be tried again
// (container/heap's interface: use it through the schedule).
type retryHeap []retryItem

func (h retryHeap) Len() int           { return len(h) }
func (h retryHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h retryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *retryHeap) Push(x any)        { *h = append(*h, x.(retryItem)) }
func (h *retryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// keptRetries holds the records of failed deliveries until their retry,
// within the read path's budget (readMemory: at most a quarter of it, and
// only the room left), so that a retry needs no read transaction of its
// own. Records are read on the one goroutine that hands them out: with 30%
// of deliveries failing, one read transaction for every third event (and a
// scan of the next 128 for what else to read) slowed the handing out. Past
// the bound, or once cut back to make room, a retry is read from the file
// as before, so that memory stays flat through an outage however long the
// backlog.
//
// The queue's mutex guards it.
type keptRetries struct {
	recordCache
	max int64
}

// keep keeps a copy of rec (the delivery's message may still hold the
// original) for seq's retry, if there is room: under max, and within the
// room the budget has left.
func (k *keptRetries) keep(seq uint64, rec []byte, room int64) {
	if size := int64(len(rec)); rec != nil && k.bytes+size <= k.max && size <= room {
		k.put(seq, bytes.Clone(rec))
	}
}
