package diskqueue

import (
	"testing"
	"time"
)

// A clump of failed answers right after a success is not an outage: the
// window narrows but keeps delivering. The same failures going on with no
// success for outageQuiet are one, and the queue probes.
func TestWindowTakesOnlyFailuresWithoutSuccessForAnOutage(t *testing.T) {
	pause := func(int) time.Duration { return time.Second }
	w := newDeliveryWindow()
	t0 := time.Now()
	w.succeeded(t0)
	clump := t0.Add(10 * time.Millisecond)
	for range 2 * outageFailures {
		w.failed(false, clump, pause)
	}
	if w.probing() {
		t.Fatalf("%d failures in a row %s after a success made the queue probe", 2*outageFailures, clump.Sub(t0))
	}
	if wait, ok := w.admit(64, clump, time.Minute); !ok {
		t.Fatalf("after the clump the window (%.0f) held back the 65th record for %s", w.size, wait)
	}
	w.failed(false, t0.Add(outageQuiet), pause)
	if !w.probing() {
		t.Fatalf("failures in a row and no success for %s did not make the queue probe", outageQuiet)
	}
}
