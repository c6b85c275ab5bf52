package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeGoalsJSON writes a goals -json file of one run per steady ÷ direct
// value.
func writeGoalsJSON(t *testing.T, name string, steady ...float64) string {
	t.Helper()
	var rep goalReport
	for i, s := range steady {
		rep.Runs = append(rep.Runs, goalRun{Run: i + 1,
			Burst:  record{System: "burst", AckEventsPerSec: 60_000},
			Drain:  record{System: "drain", DeliveredPerSec: 40_000},
			Direct: record{System: "direct", DeliveredPerSec: 40_000},
			Steady: record{System: "steady", DeliveredPerSec: s * 40_000},
		})
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Two runs of three repetitions judged as six: the median is the six's,
// not either file's, and every repetition is listed in file order.
func TestPoolJudgesTheGoalsOverEveryRunOfTheFiles(t *testing.T) {
	a := writeGoalsJSON(t, "a.json", 0.50, 0.55, 0.70)
	b := writeGoalsJSON(t, "b.json", 0.61, 0.62, 0.63)
	runs, err := pooledRuns([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 6 || runs[3].Run != 4 {
		t.Fatalf("pooled %d runs, the fourth numbered %d; want 6, numbered on", len(runs), runs[min(3, len(runs)-1)].Run)
	}
	var md strings.Builder
	writePooledMarkdown(&md, []string{a, b}, runs)
	// File a alone has 0.55, file b 0.62: the six have 0.615.
	want := "| steady ÷ direct, delivered events/s | ≥ 0.6 | 0.61× | 0.50×, 0.55×, 0.70×, 0.61×, 0.62×, 0.63× | yes, 4 of 6 runs |"
	if !strings.Contains(md.String(), want) {
		t.Errorf("the pooled table lacks %q:\n%s", want, md.String())
	}
}

// Steady's reference row: steady at exactly 1/(1/burst + 1/drain) reads
// 1.00×. Burst 60k and drain 40k events/s make 24k together.
func TestSteadyIsSetAgainstBurstAndDrainTogether(t *testing.T) {
	runs, err := pooledRuns([]string{writeGoalsJSON(t, "a.json", 0.6, 0.3)})
	if err != nil {
		t.Fatal(err)
	}
	var md strings.Builder
	writePooledMarkdown(&md, nil, runs)
	want := "1.0 when steady costs what its parts cost apart (for reference) | – | 0.75× | 1.00×, 0.50× | – |"
	if !strings.Contains(md.String(), want) {
		t.Errorf("the table lacks %q:\n%s", want, md.String())
	}
}

// A file that is not a goals report is named, with what it should be.
func TestPoolRefusesAFileWithoutGoalRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.json")
	if err := os.WriteFile(path, []byte(`{"meta":{},"results":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := pooledRuns([]string{path})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "netcore-bench goals") {
		t.Fatalf("got %v; want an error naming %s and what it should be", err, path)
	}
}
