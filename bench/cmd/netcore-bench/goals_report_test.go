package main

import (
	"math"
	"strings"
	"testing"
)

// A system that posts at bare's cost and delivers at direct's, on the same
// cores, spends 1/bare + 1/direct seconds of the machine on each event.
func TestSteadyBoundAddsTheCostsOfPostingAndDelivering(t *testing.T) {
	g := goalRun{Bare: record{AckEventsPerSec: 90_000}, Direct: record{DeliveredPerSec: 45_000}}
	if got := steadyBound(g); math.Abs(got-30_000) > 1e-6 {
		t.Errorf("steadyBound = %.3f events/s, want 30,000 (1 / (1/90,000 + 1/45,000))", got)
	}
	if got := steadyBound(goalRun{Direct: g.Direct}); got != 0 {
		t.Errorf("steadyBound without bare = %v, want 0 (not measured)", got)
	}
}

// The report lists the engine beside the other scenarios, and its figures
// as references, not goals.
func TestGoalReportShowsTheEngine(t *testing.T) {
	run := goalRun{Run: 1,
		Bare:   record{System: "bare", AckEventsPerSec: 90_000},
		Direct: record{System: "direct", DeliveredPerSec: 45_000},
		Engine: record{System: "engine", Concurrency: 64, DeliveredPerSec: 30_000, Delivered: 400_000, AckEvents: 400_000},
		Drain:  record{System: "drain", DeliveredPerSec: 33_000},
		Steady: record{System: "steady", DeliveredPerSec: 21_000},
	}
	rep := goalReport{Runs: []goalRun{run}}
	for _, s := range goalSpecs {
		v := s.value(run)
		rep.Goals = append(rep.Goals, goalResult{Figure: s.figure, Goal: s.goal, Median: v, Values: []float64{v}, Met: s.met(v), unit: s.unit})
	}
	var md strings.Builder
	writeGoalMarkdown(&md, rep)
	for _, want := range []string{
		"| engine ÷ direct: Benthos alone, from a file, no queue (for reference) | – | 0.67× | 0.67× | – |",
		"| drain ÷ engine: the queue against Benthos's file input (for reference) | – | 1.10× | 1.10× | – |",
		"| steady ÷ steady's bound (for reference) | – | 0.70× | 0.70× | – |",
		"| 1 | engine | 64 | 0 |",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, md.String())
		}
	}
}
