// Package runstatus lets a component say that the run it is part of did not
// do all it was asked, so that the process exits non-zero. Benthos ends
// `run` with status 0 whenever the pipeline terminates, whatever an input
// could not read: a one-off run such as an archive replay reports here what
// it left undone, and cmd/netcore-connect turns any report into its exit
// status once the pipeline has shut down cleanly.
package runstatus

import "sync"

var (
	mu         sync.Mutex
	incomplete []string
)

// Incomplete records something the run was asked to do and did not, in a
// sentence that names it and says what to do.
func Incomplete(what string) {
	mu.Lock()
	defer mu.Unlock()
	incomplete = append(incomplete, what)
}

// Reports is every report so far, in the order made.
func Reports() []string {
	mu.Lock()
	defer mu.Unlock()
	return append([]string(nil), incomplete...)
}
