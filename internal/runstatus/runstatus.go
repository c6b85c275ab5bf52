// Package runstatus lets a component say that the run it is part of did not
// do all it was asked, so that the process exits non-zero. Benthos ends
// `run` with status 0 whenever the pipeline terminates, whatever an input
// could not read or however it was stopped: a one-off run such as an archive
// replay reports here what it left undone, and cmd/netcore-connect turns any
// report into its exit status once Benthos has returned.
package runstatus

import "sync"

var (
	mu         sync.Mutex
	incomplete []string
	pending    = map[*func() string]bool{}
)

// Incomplete records something the run was asked to do and did not, in a
// sentence that names it and says what to do.
func Incomplete(what string) {
	mu.Lock()
	defer mu.Unlock()
	incomplete = append(incomplete, what)
}

// Pending records work that counts as undone until done is called, so that
// a run that ends before (SIGTERM, a shutdown that does not wait for every
// component to close) is reported with what describe says at that moment.
// done may be called more than once.
func Pending(describe func() string) (done func()) {
	key := &describe
	mu.Lock()
	pending[key] = true
	mu.Unlock()
	return func() {
		mu.Lock()
		delete(pending, key)
		mu.Unlock()
	}
}

// Reports is every report so far, in the order made, then the work still
// pending.
func Reports() []string {
	mu.Lock()
	defer mu.Unlock()
	out := append([]string(nil), incomplete...)
	for describe := range pending {
		out = append(out, (*describe)())
	}
	return out
}
