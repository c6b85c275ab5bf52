package netcore

import (
	"errors"
	"io"
	"sync"

	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
)

// bodyBudget bounds the bytes that posts hold at once, from the first byte
// of a body read to the answer, however many connections are open. A count
// of posts alone does not bound memory: 250 connections each holding 10 MB
// of an unfinished body took the process to 2.6 GB of RSS. Nor does the
// body alone: a form post of 9.7 MB held 33 MB by the time it was stored
// (its body, the data decoded from it, the queue's record of its events and
// bbolt's copy of that record as it writes its pages), and 100 such posts
// at once took RSS to 675–917 MiB against a budget of 256 MiB for bodies.
//
// Each request holds its share through a budgetHold. The last smallShare of
// the budget is kept for small posts (those holding at most smallPostBytes):
// big posts can never take it all, so a small one is not refused, nor made
// to wait for a retry, while big ones stream in.
type bodyBudget struct {
	mu    sync.Mutex
	used  int64
	limit int64
}

const (
	// budgetStep is how much a body of unknown length takes at a time.
	budgetStep = 64 << 10
	// smallPostBytes is the most a post may hold and still count as small:
	// a body of some 250 KB, hundreds of events.
	smallPostBytes = 1 << 20
	// smallShareDivisor: small posts alone may take the last 1/8 of the
	// budget (32 MiB of the default 256 MiB, at least 32 small posts).
	smallShareDivisor = 8
	// eventBytes is what an event holds besides its JSON while its post is
	// decoded and stored: its place among the post's parts and events
	// (slices that grow by doubling), its dedupe key and its lengths in the
	// record.
	eventBytes = 128
	// recordBytes covers a record's fixed fields and metadata.
	recordBytes = 1 << 10
)

// errBudgetSpent is returned by a budgeted read when the budget is spent.
var errBudgetSpent = errors.New("the budget for posts being read and stored is spent")

// smallShare is the part of the budget that only small posts may take.
func (b *bodyBudget) smallShare() int64 { return b.limit / smallShareDivisor }

// take reserves n bytes, or reports false when fewer than n are left; a
// request that is not small may not take the small posts' share.
func (b *bodyBudget) take(n int64, small bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	limit := b.limit
	if !small {
		limit -= b.smallShare()
	}
	if b.used+n > limit {
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

// budgetHold is what one request holds of the budget. Not safe for
// concurrent use: a request is handled by one goroutine.
type budgetHold struct {
	budget *bodyBudget
	held   int64
}

func (b *bodyBudget) hold() *budgetHold { return &budgetHold{budget: b} }

// take adds n bytes to the hold, or reports false when the budget has not
// got them.
func (h *budgetHold) take(n int64) bool {
	if n <= 0 {
		return true
	}
	if !h.budget.take(n, h.held+n <= smallPostBytes) {
		return false
	}
	h.held += n
	return true
}

// ensure makes the hold at least total bytes.
func (h *budgetHold) ensure(total int64) bool { return h.take(total - h.held) }

// settle makes the hold exactly total bytes: what it holds beyond is given
// back, what it lacks is taken (or false when the budget has not got it).
func (h *budgetHold) settle(total int64) bool {
	if total < h.held {
		h.budget.give(h.held - total)
		h.held = total
		return true
	}
	return h.ensure(total)
}

// release gives back everything held: call it once the request is
// answered and recorded.
func (h *budgetHold) release() { h.settle(0) }

// costBeforeDecoding is what a body of n bytes is taken to hold until it is
// decoded: the body, the data decoded from it (a form's is a copy as long
// as the body), the queue's record and bbolt's copy of it (each at most as
// long as the data). Its events are counted once they are known
// (costOfPost): a tenth of this for events as Netcore sends them.
func costBeforeDecoding(n int64) int64 {
	return 4*n + 2*recordBytes
}

// costOfPost is what a decoded post holds until its answer: the body it
// was decoded from, the data when it is a copy (a form's), the events, and
// the queue's record of them with bbolt's copy of it.
func costOfPost(body []byte, post *netcorepost.Post) int64 {
	events := int64(post.EventCount())
	cost := int64(len(body)) + events*eventBytes + 2*(int64(len(post.Data))+events*8+recordBytes)
	if !sameBacking(body, post.Data) {
		cost += int64(cap(post.Data))
	}
	return cost
}

// sameBacking says whether part is a slice of whole's memory: slices of one
// array share its end.
func sameBacking(whole, part []byte) bool {
	if cap(whole) == 0 || cap(part) == 0 {
		return false
	}
	return &whole[:cap(whole)][cap(whole)-1] == &part[:cap(part)][cap(part)-1]
}

// largestPostCost is the most one post of up to maxBody bytes and maxEvents
// events can hold: a compressed body besides its inflated body, and the
// data, the record and its copy, each as long as the body.
func largestPostCost(maxBody int64, maxEvents int) int64 {
	return 5*maxBody + int64(maxEvents)*(eventBytes+16) + 2*recordBytes + 2*budgetStep
}

// budgetedReader takes from the hold ahead of what it reads.
type budgetedReader struct {
	r     io.Reader
	hold  *budgetHold
	read  int64
	taken int64
}

func (br *budgetedReader) Read(p []byte) (int, error) {
	// io.ReadAll offers all of its buffer's spare room, which grows
	// geometrically: take a step at a time for what is actually read, not
	// for the room offered.
	if len(p) > budgetStep {
		p = p[:budgetStep]
	}
	if br.read+int64(len(p)) > br.taken {
		if !br.hold.take(budgetStep) {
			return 0, errBudgetSpent
		}
		br.taken += budgetStep
	}
	n, err := br.r.Read(p)
	br.read += int64(n)
	return n, err
}
