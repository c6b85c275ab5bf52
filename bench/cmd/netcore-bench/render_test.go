package main

import (
	"os"
	"strings"
	"testing"
)

// render writes a goals report again from its -json file, with the command
// and date it was measured with.
func TestRenderKeepsTheMeasuredHeader(t *testing.T) {
	path := writeGoalsJSON(t, "a", 0.65)
	if err := renderCommand([]string{path}); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(strings.TrimSuffix(path, ".json") + ".md")
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, string(md),
		"# netcore-bench goals 2026-12-06T06:17:03Z",
		"Written again from `"+path+"` by `netcore-bench render`",
		"| steady ÷ direct, delivered events/s | ≥ 0.6 | 0.65× | 0.65× | yes, 1 of 1 runs |",
	)
}
