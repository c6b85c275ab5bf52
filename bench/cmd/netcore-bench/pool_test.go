package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeGoalsJSON writes a goals -json file of one repetition per steady ÷
// direct value.
func writeGoalsJSON(t *testing.T, name string, steady ...float64) string {
	t.Helper()
	rep := goalReport{Meta: meta{Date: "2026-12-06T06:17:03Z", Binary: "/tmp/ncc-" + name, RunSeconds: 10}}
	for i, s := range steady {
		rep.Runs = append(rep.Runs, goalRun{Run: i + 1,
			Direct: record{System: "direct", DeliveredPerSec: 40_000},
			Steady: record{System: "steady", DeliveredPerSec: s * 40_000},
		})
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name+".json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Two runs of three repetitions judged as six: the median is the six's,
// neither file's, every repetition is listed in file order, and each file
// is named with what it ran.
func TestPoolJudgesTheGoalsOverEveryRepetitionOfTheFiles(t *testing.T) {
	files := []string{writeGoalsJSON(t, "a", 0.50, 0.55, 0.70), writeGoalsJSON(t, "b", 0.60, 0.62, 0.64)}
	reports, err := readGoalReports(files)
	if err != nil {
		t.Fatal(err)
	}
	var md strings.Builder
	writePooledMarkdown(&md, files, reports)
	// File a alone has a median of 0.55, file b 0.62; the six have 0.61.
	wantLines(t, md.String(),
		"# netcore-bench goals, 6 repetitions from 2 files",
		"- "+files[1]+": 3 repetitions of 10 s at 2026-12-06T06:17:03Z, ours `/tmp/ncc-b`",
		"| steady ÷ direct, delivered events/s | ≥ 0.6 | 0.61× | 0.50×, 0.55×, 0.70×, 0.60×, 0.62×, 0.64× | yes, 4 of 6 runs |",
	)
}

// A file that is not a goals report is named, with what it should be.
func TestPoolRefusesAFileWithoutGoalRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.json")
	if err := os.WriteFile(path, []byte(`{"meta":{},"results":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := readGoalReports([]string{path})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "netcore-bench goals") {
		t.Fatalf("got %v; want an error naming %s and what it should be", err, path)
	}
}
