package meiro

import (
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"

	_ "github.com/netcore-connect/netcore-connect/plugins/deadletter"
	_ "github.com/netcore-connect/netcore-connect/plugins/netcore"
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
