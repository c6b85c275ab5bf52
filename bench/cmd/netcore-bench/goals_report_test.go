package main

import (
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
	for _, s := range goalSpecs {
		rep.Goals = append(rep.Goals, s.judge(rep.Runs))
	}
	var md strings.Builder
	writeGoalMarkdown(&md, rep)
	for _, want := range []string{
		"| engine ÷ direct: Benthos alone, from a file, no queue (for reference) | – | 0.67× | 0.67× | – |",
		"| drain ÷ engine: the queue against Benthos's file input (for reference) | – | 1.10× | 1.10× | – |",
		"| 1 | engine | 64 | 0 |",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, md.String())
		}
	}
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
	for _, s := range goalSpecs {
		rep.Goals = append(rep.Goals, s.judge(runs))
	}
	var md strings.Builder
	writeGoalMarkdown(&md, rep)
	for _, want := range []string{
		"| steady ÷ direct, delivered events/s | ≥ 0.6 | 0.61× | 0.59×, 0.61×, 0.65× | yes, 2 of 3 runs |",
		"| burst ÷ bare, acked events/s at 64 senders | ≥ 0.8 (stretch 1.0) | 0.75× | 0.75×, 0.75×, 0.75× | no, 0 of 3 runs |",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, md.String())
		}
	}
}
