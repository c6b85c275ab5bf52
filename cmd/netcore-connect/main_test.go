package main

import (
	"strings"
	"testing"
)

// What the run left undone is printed whatever Benthos returned, and a
// non-zero code from Benthos is kept.
func TestExitStatusPrintsReportsWhateverBenthosReturned(t *testing.T) {
	for _, c := range []struct {
		name    string
		code    int
		reports []string
		want    int
	}{
		{"clean run, nothing undone", 0, nil, 0},
		{"clean run, work undone", 0, []string{"archive replay: 13.jsonl cannot be read"}, exitIncomplete},
		{"Benthos failed, work undone", 1, []string{"archive replay stopped before the end of the range"}, 1},
		{"Benthos failed, nothing undone", 1, nil, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stderr strings.Builder
			if got := exitStatus(c.code, c.reports, &stderr); got != c.want {
				t.Errorf("exit status %d, want %d", got, c.want)
			}
			for _, r := range c.reports {
				if !strings.Contains(stderr.String(), r) {
					t.Errorf("stderr %q does not name %q", stderr.String(), r)
				}
			}
			if len(c.reports) == 0 && stderr.Len() > 0 {
				t.Errorf("printed %q with nothing undone", stderr.String())
			}
		})
	}
}
