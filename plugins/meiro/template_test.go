package meiro

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
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

// TestTemplateRefusesTheContractStatuses keeps the template's list of
// refusal statuses equal to the stage contract's.
func TestTemplateRefusesTheContractStatuses(t *testing.T) {
	m := regexp.MustCompile(`let refused = \[([^\]]*)\]`).FindStringSubmatch(outputTemplate)
	if m == nil {
		t.Fatal("the template has no `let refused = [...]`")
	}
	var got []int
	for _, f := range strings.Split(m[1], ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			t.Fatalf("refused status %q: %v", f, err)
		}
		got = append(got, n)
	}
	if !slices.Equal(got, stage.RefusalStatuses) {
		t.Errorf("the template refuses %v, the stage contract %v", got, stage.RefusalStatuses)
	}
}
