package netcore

import (
	"errors"
	"io"
	"sync"
)

// bodyBudget bounds the bytes of request bodies held at once, however many
// connections are open. A count of posts alone does not bound memory: 250
// connections each holding 10 MB of an unfinished body took the process to
// 2.6 GB of RSS.
//
// A body of known length takes its whole length before a byte of it is read;
// a body of unknown length (chunked) takes budgetStep bytes at a time as it
// arrives. What is taken is given back when the request ends.
type bodyBudget struct {
	mu    sync.Mutex
	used  int64
	limit int64
}

// budgetStep is how much a body of unknown length takes at a time.
const budgetStep = 64 << 10

// errBudgetSpent is returned by a budgeted read when the budget is spent.
var errBudgetSpent = errors.New("the budget for bodies being read is spent")

// take reserves n bytes, or reports false when fewer than n are left.
func (b *bodyBudget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}

func (b *bodyBudget) give(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// budgetedReader takes from the budget ahead of what it reads; held is what
// it has taken so far, to give back when the request ends.
type budgetedReader struct {
	r      io.Reader
	budget *bodyBudget
	read   int64
	held   int64
}

func (br *budgetedReader) Read(p []byte) (int, error) {
	// io.ReadAll offers all of its buffer's spare room, which grows
	// geometrically: take a step at a time for what is actually read, not
	// for the room offered.
	if len(p) > budgetStep {
		p = p[:budgetStep]
	}
	if br.read+int64(len(p)) > br.held {
		if !br.budget.take(budgetStep) {
			return 0, errBudgetSpent
		}
		br.held += budgetStep
	}
	n, err := br.r.Read(p)
	br.read += int64(n)
	return n, err
}
