package diskqueue

import (
	"time"

	"github.com/netcore-connect/netcore-connect/internal/stage"
)

// deliveryWindow bounds how many records are out for delivery at once and
// adapts the bound to failures, as TCP adapts its congestion window: each
// delivery that succeeds widens it by one, and failures narrow it to 70%,
// at most once per window's worth of deliveries, so that a share of
// failures costs a share of the rate instead of all of it. (Before, any
// failure switched the queue to one event at a time: with 30% of requests
// failing, delivery fell to about 580 events/s.)
//
// Only an outage — outageFailures failures in a row and no success for
// outageQuiet — makes the queue probe: one record at a time, pausing between
// failed probes on the retry schedule, so that a destination that is down is
// not sent the backlog again and again. The first success ends the outage
// and widens the window again. Failures in a row alone are not enough:
// failures are settled in runs (meiro_events hands a failed event to
// Benthos's reject output, which takes one at a time, while successes settle
// in parallel), and with 30% of requests failing at random, runs of 19 or 20
// were seen every few seconds, each one stopping delivery for a probe pause.
//
// A delivery that timed out narrows the window further, to the deliveries
// still out: its request may still be running at the destination (slower
// than the timeout, it answers later or never), so its place is not given
// to another. Only a success widens the window again. (Before, a timeout
// was a failure like any other: with a Meiro Events slower than the
// timeout (10 s, answers after 30 s), each freed place was taken at once,
// every event was sent again in parallel on its own backoff, 4 times in
// 40 s, and Meiro Events had 3 requests at once for each event.)
//
// The queue's mutex guards it.
type deliveryWindow struct {
	size     float64 // records that may be out at once
	sinceCut int     // deliveries settled since the window was last narrowed
	inARow   int     // failures since the last success
	// lastSuccess is when a delivery last succeeded; zero before the first.
	lastSuccess time.Time

	probes      int // failed probes in a row; > 0 while probing
	pausedUntil time.Time
	probeSince  time.Time
}

const (
	// maxWindow is the widest the window grows: more than any output here
	// takes at once (meiro_events sends 64 in parallel), so
	// that a healthy queue is never held back by it.
	maxWindow = 1024
	// windowCut is what a narrowing keeps. With a share f of deliveries
	// failing, the window still grows when (2-f)·0.7 > 1: up to f ≈ 0.57.
	windowCut      = 0.7
	outageFailures = 16
	// outageQuiet is how long no delivery may have succeeded, besides the
	// failures in a row, before the queue takes it for an outage: longer
	// than a clump of failed answers lasts, short against an outage.
	outageQuiet = time.Second
)

func newDeliveryWindow() deliveryWindow {
	return deliveryWindow{size: maxWindow, sinceCut: maxWindow}
}

// probing says whether deliveries are in an outage.
func (w *deliveryWindow) probing() bool { return w.probes > 0 }

// admit says whether one more record may go out now, with leased out
// already; when not, how long to wait (0: until a delivery settles).
func (w *deliveryWindow) admit(leased int, now time.Time, retryMax time.Duration) (time.Duration, bool) {
	if !w.probing() {
		return 0, leased < int(w.size)
	}
	// A probe is out: its settling wakes the queue. One held back longer
	// than retryMax (say, by an output that batches) does not stall it.
	if leased > 0 && now.Sub(w.probeSince) < retryMax {
		return retryMax - now.Sub(w.probeSince), false
	}
	if pause := w.pausedUntil.Sub(now); pause > 0 {
		return pause, false
	}
	w.probeSince = now
	return 0, true
}

// succeeded records a delivery, and says whether it ended an outage.
func (w *deliveryWindow) succeeded(now time.Time) (endedOutage bool) {
	endedOutage = w.probing()
	w.lastSuccess = now
	w.sinceCut++
	w.inARow, w.probes, w.pausedUntil = 0, 0, time.Time{}
	w.size = min(maxWindow, w.size+1)
	return endedOutage
}

// failed records a failed delivery, with stillOut deliveries out besides
// it; pause is the retry schedule's wait after n failed probes.
func (w *deliveryWindow) failed(wasProbe, timedOut bool, stillOut int, now time.Time, pause func(n int) time.Duration) {
	w.sinceCut++
	w.inARow++
	if w.sinceCut >= int(w.size) {
		w.size, w.sinceCut = max(1, w.size*windowCut), 0
	}
	if timedOut {
		w.size = max(1, min(w.size, float64(stillOut)))
	}
	outage := w.inARow >= outageFailures && now.Sub(w.lastSuccess) >= outageQuiet
	if wasProbe || (!w.probing() && outage) {
		w.probes++
		w.size = 1
		w.pausedUntil = now.Add(pause(w.probes - 1))
	}
}

// timedOut says whether a delivery failed for want of an answer in time: a
// stage.TimeoutError, as meiro_http hands it back.
func timedOut(err error) bool {
	return stage.IsTimeout(err)
}
