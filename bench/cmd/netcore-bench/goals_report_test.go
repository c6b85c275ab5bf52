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
		v := s.value(run)
		rep.Goals = append(rep.Goals, goalResult{Figure: s.figure, Goal: s.goal, Median: v, Values: []float64{v}, Met: s.met(v), unit: s.unit})
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
