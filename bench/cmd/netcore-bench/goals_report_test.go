package main

import (
	"math"
	"strings"
	"testing"
)

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
	rep.Goals = judgeGoals(rep.Runs)
	var md strings.Builder
	writeGoalMarkdown(&md, rep)
	wantLines(t, md.String(),
		"| engine ÷ direct: Benthos alone, from a file, no queue (for reference) | – | 0.67× | 0.67× | – |",
		"| drain ÷ engine: the queue against Benthos's file input (for reference) | – | 1.10× | 1.10× | – |",
		"| 1 | engine | 64 | 0 |",
	)
}

// A goal met by the median but not by every run says so: three runs of
// one binary on these shared cores can straddle a goal.
func TestGoalReportCountsTheRunsThatMeetEachGoal(t *testing.T) {
	var runs []goalRun
	for i, steady := range []float64{0.59, 0.61, 0.65} {
		runs = append(runs, goalRun{Run: i + 1,
			Bare:   record{System: "bare", AckEventsPerSec: 80_000},
			Burst:  record{System: "burst", AckEventsPerSec: 60_000},
			Direct: record{System: "direct", DeliveredPerSec: 40_000},
			Steady: record{System: "steady", DeliveredPerSec: steady * 40_000},
		})
	}
	rep := goalReport{Runs: runs}
	rep.Goals = judgeGoals(runs)
	var md strings.Builder
	writeGoalMarkdown(&md, rep)
	wantLines(t, md.String(),
		"| steady ÷ direct, delivered events/s | ≥ 0.6 | 0.61× | 0.59×, 0.61×, 0.65× | yes, 2 of 3 runs |",
		"| burst ÷ bare, acked events/s at 64 senders | ≥ 0.8 (stretch 1.0) | 0.75× | 0.75×, 0.75×, 0.75× | no, 0 of 3 runs |",
	)
}

// Steady at exactly 1/(1/burst + 1/drain) reads 1.00×: burst 60k and drain
// 40k events/s make 24k together. A run without one of them has no figure.
func TestSteadyIsSetAgainstBurstAndDrainTogether(t *testing.T) {
	if got := together(60_000, 40_000); math.Abs(got-24_000) > 1e-6 {
		t.Errorf("together(60k, 40k) = %v; want 24,000", got)
	}
	if got := together(0, 40_000); got != 0 {
		t.Errorf("together(0, 40k) = %v; want 0, nothing to set steady against", got)
	}
	run := func(steady float64) goalRun {
		return goalRun{
			Burst:  record{System: "burst", AckEventsPerSec: 60_000},
			Drain:  record{System: "drain", DeliveredPerSec: 40_000},
			Steady: record{System: "steady", DeliveredPerSec: steady},
		}
	}
	var md strings.Builder
	writeGoalTable(&md, judgeGoals([]goalRun{run(24_000), run(12_000)}))
	want := "1.0 when steady costs what its parts cost apart (for reference) | – | 0.75× | 1.00×, 0.50× | – |"
	wantLines(t, md.String(), want)
	steadyAlone := run(24_000)
	steadyAlone.Drain = record{}
	md.Reset()
	writeGoalTable(&md, judgeGoals([]goalRun{steadyAlone}))
	want = "1.0 when steady costs what its parts cost apart (for reference) | – | not measured | – | – |"
	wantLines(t, md.String(), want)
}

// A figure is judged over the runs that measured it: a run of -scenarios
// big-post says nothing of steady, and is not a steady of 0.
func TestAFigureLeavesOutTheRunsThatDidNotMeasureIt(t *testing.T) {
	runs := []goalRun{
		{Direct: record{System: "direct", DeliveredPerSec: 40_000}, Steady: record{System: "steady", DeliveredPerSec: 26_000}},
		{BigPost: bigPost{Events: 100_000, Status: 200, Seconds: 0.9, SmallStatus: 200, SmallSeconds: 0.2}},
	}
	var md strings.Builder
	writeGoalTable(&md, judgeGoals(runs))
	wantLines(t, md.String(),
		"| steady ÷ direct, delivered events/s | ≥ 0.6 | 0.65× | 0.65× | yes, 1 of 1 runs |",
		"| big post: seconds to its 200 | 200 within 5 s | 0.90 s | 0.90 s | yes, 1 of 1 runs |",
		"| CPU per event, burst ÷ bare | ≤ 1.2 | not measured | – | – |",
	)
	// Nor does the table of each run list the scenarios it did not run.
	md.Reset()
	writeGoalMarkdown(&md, goalReport{Runs: runs, Goals: judgeGoals(runs)})
	if strings.Contains(md.String(), "|  | 0 |") {
		t.Errorf("the table of each run lists a scenario not run:\n%s", md.String())
	}
}

// wantLines fails t for each of wants that report lacks.
func wantLines(t *testing.T, report string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(report, want) {
			t.Errorf("the report lacks %q:\n%s", want, report)
		}
	}
}
