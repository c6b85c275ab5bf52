package fate

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/stage"
)

// State is where an event stands.
type State int

const (
	// Unknown: the Book has no fate for the event (it is off, the event is
	// older than the Book keeps, or it went another way).
	Unknown State = iota
	// Waiting: stored, not yet tried, or tried and failed and waiting for
	// its next try.
	Waiting
	// Delivered: accepted by Meiro Events (or by whatever output is set).
	Delivered
	// DeadLettered: refused for good and kept in a dead letter file.
	DeadLettered
	// Repeat: the post held an event that was already stored; it was not
	// stored again.
	Repeat
)

var stateNames = [...]string{Unknown: "unknown", Waiting: "waiting", Delivered: "delivered", DeadLettered: "dead letter", Repeat: "repeat"}

func (s State) String() string { return stateNames[s] }

// Fate is what is known of one event.
type Fate struct {
	State     State
	StoredBy  string    // the request id of the post that stored it
	StoredAt  time.Time // when it was stored
	Attempts  int       // failed deliveries so far
	LastError string    // the last failure, as the output reported it
	Status    int       // the HTTP status of the last failure, when the error names one
	NextTry   time.Time // when it is tried again, while waiting after a failure
	DoneAt    time.Time // when it was delivered or dead-lettered
	File      string    // the dead letter file
}

// Waited is how long the event waited from being stored until it was done.
func (f Fate) Waited() time.Duration { return f.DoneAt.Sub(f.StoredAt) }

// ID is an event's id as 16 bytes: the event ids of netcore_explode are 32
// hex digits, kept here as the bytes they spell, so that a million of them
// take 16 MB rather than 48.
type ID [16]byte

// KeyOf is the ID of an event id: the bytes of 32 hex digits, or for any
// other id (a custom dedupe key) the first 16 bytes of its SHA-256.
func KeyOf(id string) ID {
	var k ID
	if len(id) == 2*len(k) {
		if _, err := hex.Decode(k[:], []byte(id)); err == nil {
			return k
		}
	}
	sum := sha256.Sum256([]byte(id))
	copy(k[:], sum[:])
	return k
}

// entry is a Fate with the posts that repeated its event.
type entry struct {
	Fate
	repeatedBy []string
}

// maxRepeatsKept bounds the request ids of repeats kept per event.
const maxRepeatsKept = 8

// Book keeps the fates of the latest events at one destination, at most
// capacity of them: an older one is forgotten as a new one is stored. All
// methods are safe for concurrent use, and cost an atomic load while the
// Book is off.
type Book struct {
	on          *atomic.Bool // shared by the Books of a process
	destination string
	capacity    int

	mu    sync.Mutex
	fates map[ID]*entry
	order []ID // event ids in the order they were first seen, a ring
	next  int  // where the ring is written next
	pipeline
}

// NewBook is an empty Book, off, keeping at most capacity fates.
func NewBook(capacity int) *Book { return newBook("", capacity, &atomic.Bool{}) }

func newBook(destination string, capacity int, on *atomic.Bool) *Book {
	return &Book{on: on, destination: destination, capacity: capacity, fates: map[ID]*entry{}, order: make([]ID, 0, min(capacity, 1024))}
}

// Destination is the name of the destination whose fates the Book keeps.
func (b *Book) Destination() string { return b.destination }

// Enable turns the Book on: from now on it keeps what it is told.
func (b *Book) Enable() { b.on.Store(true) }

// Enabled says whether the Book keeps anything.
func (b *Book) Enabled() bool { return b.on.Load() }

// entryLocked finds the entry of id, making one if there is none.
func (b *Book) entryLocked(id ID) *entry {
	e := b.fates[id]
	if e != nil {
		return e
	}
	if len(b.order) < b.capacity {
		b.order = append(b.order, id)
	} else {
		delete(b.fates, b.order[b.next])
		b.order[b.next] = id
		b.next = (b.next + 1) % b.capacity
	}
	e = &entry{}
	b.fates[id] = e
	return e
}

// record runs fn on the entry of event id, made if it is new, under the
// Book's lock, when the Book is on.
func (b *Book) record(id string, fn func(e *entry)) {
	if !b.on.Load() {
		return
	}
	key := KeyOf(id)
	b.mu.Lock()
	defer b.mu.Unlock()
	fn(b.entryLocked(key))
}

// Stored records that the post requestID stored the event id. A fast
// output can deliver (or fail) the event before the queue gets round to
// saying it stored it: what was reported meanwhile is kept. An event stored
// again by another post (after the dedupe window) starts afresh.
func (b *Book) Stored(id, requestID string, at time.Time) {
	b.record(id, func(e *entry) {
		if e.StoredBy != "" || e.State == Unknown {
			e.Fate = Fate{State: Waiting}
		}
		e.StoredBy, e.StoredAt = requestID, at
	})
}

// Repeated records that the post requestID held the event id again, and
// that it was not stored again.
func (b *Book) Repeated(id, requestID string) {
	b.record(id, func(e *entry) {
		if e.State == Unknown {
			e.State = Repeat // the first post is older than the Book keeps
		}
		if len(e.repeatedBy) < maxRepeatsKept {
			e.repeatedBy = append(e.repeatedBy, requestID)
		}
	})
}

// Failed records a delivery of id that failed at at, to be tried again at
// next.
func (b *Book) Failed(id string, err error, at, next time.Time) {
	if err == nil {
		return
	}
	b.record(id, func(e *entry) {
		b.failed.add(at, 1)
		if e.State == Unknown {
			e.State = Waiting // before Stored: see Stored
		}
		if e.State != Waiting {
			return
		}
		e.Attempts++
		e.LastError, e.NextTry, e.Status = err.Error(), next, stage.StatusOf(err)
	})
}

// Delivered records that id left the queue accepted by the output. An
// event already dead-lettered stays so: the dead letter is its fate.
func (b *Book) Delivered(id string, at time.Time) {
	b.record(id, func(e *entry) {
		if e.State == DeadLettered {
			return // acknowledged because its dead letter is on disk
		}
		b.delivered.add(at, 1)
		if e.State == Waiting || e.State == Unknown {
			e.State, e.DoneAt, e.NextTry = Delivered, at, time.Time{}
		}
	})
}

// DeadLettered records that id was refused for good and written to file.
func (b *Book) DeadLettered(id, file, reason string, status int, at time.Time) {
	b.record(id, func(e *entry) {
		b.deadLettered.add(at, 1)
		e.State, e.DoneAt, e.NextTry = DeadLettered, at, time.Time{}
		e.File, e.LastError, e.Status = file, reason, status
	})
}

// Of is the fate of event id as seen from the post requestID: a post that
// repeated an event stored by another sees a Repeat, with StoredBy naming
// the post that stored it.
func (b *Book) Of(id ID, requestID string) Fate {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.fates[id]
	switch {
	case e == nil:
		return Fate{}
	case e.StoredBy == requestID:
		return e.Fate
	}
	for _, r := range e.repeatedBy {
		if r == requestID {
			return Fate{State: Repeat, StoredBy: e.StoredBy, StoredAt: e.StoredAt}
		}
	}
	return Fate{}
}
