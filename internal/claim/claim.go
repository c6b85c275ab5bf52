// Package claim settles one race between two stages: an input that stops
// waiting for a message to be stored (its acknowledgement timeout) and the
// buffer that stores it. Without it the input answers "not stored, send
// again" while the buffer may still store the message a moment later, and
// the sender is told to resend what is stored.
//
// The input puts a Claim in the message's context before handing it on.
// The buffer takes the claim when it starts the write that stores the
// message, and stores nothing of a message whose claim was abandoned. The
// input, when its timeout passes, abandons the claim: if that succeeds,
// nothing of the message will be stored; if the buffer took it first, the
// write is under way and its result is the answer to give. Either way the
// answer is exact.
//
// Files: claim.go holds all of it (the type, its three states, and the
// context and batch helpers); claim_test.go races Take against Abandon.
package claim

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// Claim is the state of one message between an input and a buffer. The
// zero value is waiting; it moves once, to taken or abandoned.
type Claim struct{ state atomic.Int32 }

const (
	waiting int32 = iota
	taken
	abandoned
)

// Take is the buffer's move, made before it writes the message: true if the
// message is to be stored (also for a nil claim: a message from an input
// that does not use claims), false if the input has abandoned it.
func (c *Claim) Take() bool {
	return c == nil || c.state.CompareAndSwap(waiting, taken) || c.state.Load() == taken
}

// Abandon is the input's move when it stops waiting: true if nothing of the
// message will be stored, false if the buffer took it first.
func (c *Claim) Abandon() bool {
	return c.state.CompareAndSwap(waiting, abandoned) || c.state.Load() == abandoned
}

// TakeAll takes every claim of cs, stopping at the first abandoned one:
// true if all are taken (the messages are to be stored), false if any was
// abandoned (then none of them may be stored; a claim already taken makes
// its input wait for the failure instead of giving up).
func TakeAll(cs []*Claim) bool {
	for _, c := range cs {
		if !c.Take() {
			return false
		}
	}
	return true
}

// ErrAbandoned fails what a stage was to store or publish after its input
// abandoned the claim: nothing of it is stored.
var ErrAbandoned = errors.New("not stored: the input stopped waiting for it (ack_timeout) and answered that it was not stored")

type key struct{}

// New returns ctx with a new claim in it, and the claim.
func New(ctx context.Context) (context.Context, *Claim) {
	c := &Claim{}
	return context.WithValue(ctx, key{}, c), c
}

// From returns the claim in ctx, or nil if there is none.
func From(ctx context.Context) *Claim {
	c, _ := ctx.Value(key{}).(*Claim)
	return c
}

// Of returns the distinct claims of the messages of a batch: one for the
// events of one post, several when a batching stage put posts together.
func Of(batch service.MessageBatch) []*Claim {
	var cs []*Claim
	for _, msg := range batch {
		if c := From(msg.Context()); c != nil && !slices.Contains(cs, c) {
			cs = append(cs, c)
		}
	}
	return cs
}
