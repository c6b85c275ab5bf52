package diskqueue

import (
	"encoding/hex"
	"slices"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/fate"
	"github.com/netcore-connect/netcore-connect/internal/stage"
)

// The queue sees every moment of an event's life after the receiver: stored
// or found to be a repeat, each failed delivery and when it is tried again,
// delivered. It tells its destination's fate book (each queue has one of
// its own: see fate.Books), which the inspector reads; while the inspector
// is off the book is off and this costs an atomic load.

// reportStored tells the book which events of a stored post were stored,
// and which were repeats of events stored before. ids are the events'
// dedupe keys, their event ids in the shipped pipelines.
func reportStored(book *fate.Book, batch service.MessageBatch, ids []string, repeats []int, at time.Time) {
	if !book.Enabled() || len(batch) == 0 {
		return
	}
	requestID, _ := batch[0].MetaGet(stage.MetaRequestID)
	next := 0
	for i, id := range ids {
		switch {
		case id == "":
		case next < len(repeats) && repeats[next] == i:
			book.Repeated(id, requestID)
		default:
			book.Stored(id, requestID, at)
		}
		if next < len(repeats) && repeats[next] == i {
			next++
		}
	}
}

// reportStoredPosts is reportStored for a batch of posts stored whole:
// keys are the dedupe keys of each post's events, repeats count events
// across the batch.
func reportStoredPosts(book *fate.Book, batch service.MessageBatch, keys [][]eventKey, repeats []int, at time.Time) {
	if !book.Enabled() {
		return
	}
	first := 0 // of the post's events, counted across the batch
	for j, msg := range batch {
		requestID, _ := msg.MetaGet(stage.MetaRequestID)
		for k, key := range keys[j] {
			id := hex.EncodeToString(key[:])
			if _, found := slices.BinarySearch(repeats, first+k); found {
				book.Repeated(id, requestID)
			} else {
				book.Stored(id, requestID, at)
			}
		}
		first += len(keys[j])
	}
}

// reportSettled tells the book how a delivery of msg ended.
func reportSettled(book *fate.Book, msg *service.Message, err error, at, retryAt time.Time) {
	if !book.Enabled() {
		return
	}
	id, ok := msg.MetaGet(stage.MetaEventID)
	if !ok {
		return
	}
	if err != nil {
		book.Failed(id, err, at, retryAt)
		return
	}
	book.Delivered(id, at)
}
