package fate

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Books are the fate books of a process, one for each destination. A
// process may deliver each event to several (the meiro-and-archive recipe:
// a disk queue for Meiro Events and one for the archive, fed the same
// posts): an event delivered to the archive may still wait for Meiro
// Events, so each destination's queue keeps an account of its own, and the
// inspector shows the event's fate at each.
type Books struct {
	on       atomic.Bool // one switch for all: the inspector turns them on
	capacity int

	mu    sync.Mutex
	books []*Book
}

// DefaultCapacity is how many events' fates each Book of Default keeps:
// about 100 bytes each, so 10 MB at most for each destination.
const DefaultCapacity = 100_000

// Default is the Books of this process.
var Default = NewBooks(DefaultCapacity)

// NewBooks is a process's Books, off, each keeping at most capacity fates.
func NewBooks(capacity int) *Books { return &Books{capacity: capacity} }

// Enable turns every Book on, those made later too.
func (s *Books) Enable() { s.on.Store(true) }

// Enabled says whether the Books keep anything.
func (s *Books) Enabled() bool { return s.on.Load() }

// For is the Book of destination, made empty on the first call: each disk
// queue asks for its own when it starts.
func (s *Books) For(destination string) *Book {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.books {
		if b.destination == destination {
			return b
		}
	}
	b := newBook(destination, s.capacity, &s.on)
	s.books = append(s.books, b)
	return b
}

// All is every destination's Book, by name: the same order on every page,
// whichever queue started first.
func (s *Books) All() []*Book {
	s.mu.Lock()
	defer s.mu.Unlock()
	books := slices.Clone(s.books)
	slices.SortFunc(books, func(a, b *Book) int { return strings.Compare(a.destination, b.destination) })
	return books
}

// Received counts n events of a stored post, at every destination: the
// receiver stores each post for all of them at once.
func (s *Books) Received(n int, at time.Time) {
	if !s.on.Load() {
		return
	}
	for _, b := range s.All() {
		b.Received(n, at)
	}
}

// bookKey is the context key of the Book a message's fates go to.
type bookKey struct{}

// WithBook is ctx naming b as the Book of the message it goes with: the
// disk queue hands its events out so, and a stage after it that settles an
// event on its own (the dead letter keeper) reports to that Book, not to
// another destination's.
func WithBook(ctx context.Context, b *Book) context.Context {
	return context.WithValue(ctx, bookKey{}, b)
}

// Of is the Book ctx names (WithBook), else the only Book there is; nil
// when there are several and ctx names none, as no destination can be told.
func (s *Books) Of(ctx context.Context) *Book {
	if b, ok := ctx.Value(bookKey{}).(*Book); ok {
		return b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.books) == 1 {
		return s.books[0]
	}
	return nil
}
