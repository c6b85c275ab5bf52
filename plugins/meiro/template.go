package meiro

import (
	_ "embed"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// outputTemplate defines the meiro_events output (output_meiro_events.yaml).
//
//go:embed output_meiro_events.yaml
var outputTemplate string

func init() {
	service.MustRegisterTemplateYAML(outputTemplate)
}
