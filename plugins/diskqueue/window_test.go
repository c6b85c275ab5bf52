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
		w.failed(false, false, 64, clump, pause)
	}
	if w.probing() {
		t.Fatalf("%d failures in a row %s after a success made the queue probe", 2*outageFailures, clump.Sub(t0))
	}
	if wait, ok := w.admit(64, clump, time.Minute); !ok {
		t.Fatalf("after the clump the window (%.0f) held back the 65th record for %s", w.size, wait)
	}
	w.failed(false, false, 64, t0.Add(outageQuiet), pause)
	if !w.probing() {
		t.Fatalf("failures in a row and no success for %s did not make the queue probe", outageQuiet)
	}
}

// A delivery that timed out may still be running at the destination: its
// place is not given to another, as a failed answer's is. When every
// delivery out times out, one goes out at a time, and only a success makes
// room for more.
func TestWindowGivesNoPlaceOfATimedOutDelivery(t *testing.T) {
	pause := func(int) time.Duration { return time.Second }
	t0 := time.Now()
	for _, timedOut := range []bool{false, true} {
		w := newDeliveryWindow()
		w.succeeded(t0)
		w.failed(false, timedOut, 63, t0, pause)
		if _, ok := w.admit(63, t0, time.Minute); ok == timedOut {
			t.Errorf("timed out %v: with 63 still out, the place of the failed delivery was given to another: %v, want %v", timedOut, ok, !timedOut)
		}
	}

	w := newDeliveryWindow()
	w.succeeded(t0)
	for out := 63; out >= 0; out-- {
		w.failed(false, true, out, t0, pause)
	}
	if w.probing() {
		t.Fatal("64 timeouts right after a success made the queue probe: the premise is a window, not an outage")
	}
	if _, ok := w.admit(0, t0, time.Minute); !ok {
		t.Error("after every delivery out timed out, none may go out: want one at a time")
	}
	if _, ok := w.admit(1, t0, time.Minute); ok {
		t.Error("after every delivery out timed out, two may go out at once: want one at a time")
	}
	w.failed(false, false, 0, t0, pause)
	if _, ok := w.admit(1, t0, time.Minute); ok {
		t.Error("a failure widened the window: only a success may")
	}
	w.succeeded(t0)
	if _, ok := w.admit(1, t0, time.Minute); !ok {
		t.Error("a success did not widen the window")
	}
}
