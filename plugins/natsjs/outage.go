package natsjs

import (
	"sync/atomic"

	"github.com/netcore-connect/netcore-connect/internal/journal"
)

// serverOutage tells, when a connection is back, whether it had lost every
// server of its pool: the one it was on, and each other one failed at least
// once since (nats.go tries the servers of its pool in turn). One server
// lost, the client moves to another at its first try.
//
// A cluster whose servers all went down may have lost what it acknowledged
// since its last sync: a journal in front of it then publishes again what it
// retains (republishJournals).
type serverOutage struct {
	failed atomic.Int64 // reconnect attempts failed since the last disconnect
}

func (o *serverOutage) disconnected()  { o.failed.Store(0) }
func (o *serverOutage) attemptFailed() { o.failed.Add(1) }

// everyServerLost says, once reconnected to a pool of servers, whether
// they were all lost.
func (o *serverOutage) everyServerLost(servers int) bool {
	return o.failed.Load() >= int64(max(servers-1, 1))
}

// pauseJournals tells the process's journals that the store may be down,
// so that they delete nothing they retain until it acknowledges again: in
// an outage in which nothing comes to be published, no publish fails to
// tell them. Any lost connection counts, even to one server of several
// (the client moves to another at once): telling one server's loss from
// the cluster's is not possible when it happens, and a pause costs only
// disk for the retention. At each failed reconnect attempt too, so that a
// late acknowledgement of a publish sent before the loss does not end the
// pause while the store is still down.
func pauseJournals() { journal.Default.NoteOutage() }

// republishJournals tells the process's journals to publish again what they
// retain, in a goroutine of its own: nats.go runs its callbacks one by one.
func republishJournals() {
	go journal.Default.Republish("NATS connection back after losing every server")
}
