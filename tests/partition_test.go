package tests

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// Two ingest and two deliver instances on three JetStream nodes (3
// replicas), each in its own network namespace, under load. The stream's
// leader is cut off from everything for 20 s, healed; then another node (one
// an ingest instance is connected to, else the new leader) is cut off from
// its peers only, so that it keeps its clients, for 20 s, healed. Every
// event answered 200 is delivered; repeats are counted and must come from a
// cut (at least once delivery); an ingest instance left connected only to
// the cut-off node answers no 200. A 200 for an event that only a minority
// stored would be lost when the minority rejoins and drops its unreplicated
// entries, so "every acknowledged event delivered" checks that too.
//
//	go test ./tests -run 'Partitioned|CutOff' -v                       (CI: two cuts of 20 s)
//	go test ./tests -run 'Partitioned|CutOff' -v -long -timeout 30m   (six cuts of 30 s)
func TestScaleOutSurvivesANodePartitioned(t *testing.T) {
	pl := newPartitionLab(t)
	m := newMeiro(t)
	arrived := recordArrivals(m)
	ingest := map[string]*process{}
	for _, name := range []string{"ingest1", "ingest2"} {
		ingest[name], _ = pl.startIngest(t, name)
	}
	var deliverers []*process
	for _, name := range []string{"deliver1", "deliver2"} {
		deliverers = append(deliverers, pl.startDeliverer(t, name, m))
	}

	l := newPostLog()
	for name, p := range ingest {
		l.drive(p.webhook, name, 4)
	}
	waitFor(t, "events acknowledged by both ingest instances", 30*time.Second, func() bool {
		_, ok1 := l.firstOK("ingest1", time.Time{})
		_, ok2 := l.firstOK("ingest2", time.Time{})
		return ok1 && ok2
	})
	cuts, hold := []cut{cutAll, cutPeers}, 20*time.Second
	if *long {
		cuts, hold = []cut{cutAll, cutPeers, cutAll, cutPeers, cutAll, cutPeers}, 30*time.Second
	}
	var windows []window
	var last *labNode
	for _, from := range cuts {
		target := pl.nextTarget(t, from, last)
		windows = append(windows, pl.partition(t, target, from, hold, l, ingest))
		last = target
	}
	time.Sleep(2 * time.Second) // load on the healed cluster
	stopped := time.Now()
	l.finish()

	acked := l.acked()
	ackedDuringCuts := 0
	for _, w := range windows {
		ackedDuringCuts += statuses(l.within("", w.cutAt, w.healedAt))["200"]
	}
	if len(acked) == 0 || ackedDuringCuts == 0 {
		t.Fatalf("premise: %d events acknowledged, %d posts during the cuts: the load did not run through them", len(acked), ackedDuringCuts)
	}
	waitDelivered(t, m, acked, 3*time.Minute)
	delivered := time.Since(stopped)
	// Only once nothing is out for delivery is no repeat still to come.
	waitFor(t, "the consumer drained (nothing pending, nothing unacknowledged)", ackWait()+time.Minute, func() bool { return pl.drained() })
	reportRepeats(t, arrived, windows, acked, statuses(l.within("", time.Time{}, stopped)), delivered, deliverers)
}

// reportRepeats counts what arrived against what was acknowledged, and
// checks that every repeat is explained by the cuts: its first copy came
// after the first cut began and before ack_wait had passed since the
// cluster was whole again, the time in which a deliverer's acknowledgement
// to the stream can be lost (the stream then delivers the event again, at
// least once being the promise). The deliverers' failed acknowledgements
// are counted beside them: each is logged, and a repeat follows one.
func reportRepeats(t *testing.T, arrived *arrivals, windows []window, acked []string, answers map[string]int, delivered time.Duration, deliverers []*process) {
	t.Helper()
	ackedSet := map[string]bool{}
	for _, mk := range acked {
		ackedSet[mk] = true
	}
	arrived.mu.Lock()
	distinct, unacked := len(arrived.at), 0
	for mk := range arrived.at {
		if !ackedSet[mk] {
			unacked++
		}
	}
	arrived.mu.Unlock()
	failedAcks := 0
	for _, p := range deliverers {
		failedAcks += strings.Count(p.stdout.String(), "Failed to acknowledge message")
	}
	first, last := windows[0], windows[len(windows)-1]
	from, to := first.cutAt.Add(-time.Second), last.healedAt.Add(last.recovered+ackWait())
	repeats := arrived.repeats()
	extra, perCut := 0, make([]int, len(windows))
	var gaps []time.Duration
	for mk, times := range repeats {
		extra += len(times) - 1
		gaps = append(gaps, times[1].Sub(times[0]))
		if times[0].Before(from) || times[0].After(to) {
			t.Errorf("%s arrived %d times, the first at %s: a repeat outside the cuts and the ack_wait (%s) after them",
				mk, len(times), times[0].Format(time.StampMilli), ackWait())
			continue
		}
		// The cut it came in or after: the last one begun before it.
		next := slices.IndexFunc(windows, func(w window) bool { return times[0].Before(w.cutAt.Add(-time.Second)) })
		if next < 0 {
			next = len(windows)
		}
		perCut[next-1]++
	}
	slices.Sort(gaps)
	gapRange := "-"
	if len(gaps) > 0 {
		gapRange = fmt.Sprintf("%s to %s", gaps[0].Round(time.Millisecond), gaps[len(gaps)-1].Round(time.Millisecond))
	}
	t.Logf("posts answered: %v; events acknowledged: %d; distinct events delivered: %d (answered 503 but stored and delivered: %d); repeats: %d events, %d extra copies, first copies by cut %v, second copies %s later; acknowledgements the deliverers logged as failed: %d; every acknowledged event delivered %s after the load stopped",
		answers, len(acked), distinct, unacked, len(repeats), extra, perCut, gapRange, failedAcks, delivered.Round(time.Millisecond))
}

// An ingest instance cut off from the whole cluster, while Netcore can
// still reach it, answers 503 to every post it takes, never 200; healed, it
// answers 200 again without a restart, and every event answered 200 is
// delivered.
func TestIngestCutOffFromTheClusterAnswers503(t *testing.T) {
	pl := newPartitionLab(t)
	m := newMeiro(t)
	arrived := recordArrivals(m)
	p, link := pl.startIngest(t, "ingest")
	deliverer := pl.startDeliverer(t, "deliver", m)

	l := newPostLog()
	l.drive(p.webhook, "ingest", 16)
	waitFor(t, "events acknowledged before the cut", 30*time.Second, func() bool { _, ok := l.firstOK("", time.Time{}); return ok })
	// Each post to a cut-off instance waits out ack_timeout (10 s) for its
	// 503: 25 s lets every sender take a whole post inside the cut.
	hold := 25 * time.Second
	if *long {
		hold = 2 * time.Minute
	}
	if err := link.Cut(); err != nil {
		t.Fatal(err)
	}
	cutAt := time.Now()
	time.Sleep(hold)
	healedAt := time.Now()
	if err := link.Heal(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a 200 after the heal", 60*time.Second, func() bool { _, ok := l.firstOK("", healedAt); return ok })
	first, _ := l.firstOK("", healedAt)
	time.Sleep(2 * time.Second)
	stopped := time.Now()
	l.finish()

	during := l.within("", cutAt, healedAt)
	answers := statuses(during)
	if len(during) == 0 {
		t.Fatal("premise: no post was sent and answered while the ingest instance was cut off")
	}
	if answers["200"] > 0 || answers["503"] != len(during) {
		t.Errorf("posts to an ingest instance cut off from the cluster: %v, want every one 503", answers)
	}
	acked := l.acked()
	waitDelivered(t, m, acked, 2*time.Minute)
	waitFor(t, "the consumer drained", ackWait()+time.Minute, func() bool { return pl.drained() })
	w := window{cutAt: cutAt, healedAt: healedAt}
	t.Logf("ingest cut off for %s: answers during the cut %v; first 200 %s after the heal", hold, answers, first.Sub(healedAt).Round(time.Millisecond))
	reportRepeats(t, arrived, []window{w}, acked, statuses(l.within("", time.Time{}, stopped)), time.Since(stopped), []*process{deliverer})
}
