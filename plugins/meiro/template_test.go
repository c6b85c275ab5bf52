package meiro

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"

	"github.com/netcore-connect/netcore-connect/internal/stage"
	_ "github.com/netcore-connect/netcore-connect/plugins/deadletter"
)

// TestTemplateLintsAndPassesItsTests runs the tests inside the template:
// the config it expands to, field by field.
func TestTemplateLintsAndPassesItsTests(t *testing.T) {
	tester := service.GlobalEnvironment().NewStreamTemplateTester()
	lints, err := tester.RunYAML([]byte(outputTemplate))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lints {
		t.Errorf("template: %v", l)
	}
}

// TestTemplateRefusesTheContractStatuses keeps the statuses that
// meiro_events makes dead letters equal to the stage contract's: the
// template spells no list of its own, meiro_http decides by
// stage.RefusedForGood; every 4xx and the 5xx it retries are sent through
// it.
func TestTemplateRefusesTheContractStatuses(t *testing.T) {
	m := newMeiroStandIn(t)
	var got []int
	for status := 400; status <= 451; status++ {
		dir := t.TempDir()
		err := sendThroughMeiroEvents(t, m.URL, dir, status)
		files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
		if (err == nil) != (len(files) == 1) {
			t.Fatalf("a %d gave %v and %d dead letter files: acknowledged exactly when kept, want", status, err, len(files))
		}
		if len(files) == 1 {
			got = append(got, status)
		}
	}
	if !slices.Equal(got, stage.RefusalStatuses) {
		t.Errorf("meiro_events refuses %v, the stage contract %v", got, stage.RefusalStatuses)
	}
}
