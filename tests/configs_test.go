package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The configs in config/ are what users copy: each must lint clean and pass
// its own config unit tests, run by the binary exactly as a user would.
func TestConfigsLintAndPassTheirUnitTests(t *testing.T) {
	root := repoRoot(t)
	configs, err := filepath.Glob(filepath.Join(root, "config", "*.yaml"))
	scaleOut, _ := filepath.Glob(filepath.Join(root, "config", "scale-out", "*.yaml"))
	destinations, _ := filepath.Glob(filepath.Join(root, "config", "destinations", "*.yaml"))
	configs = append(append(configs, scaleOut...), destinations...)
	if err != nil || len(scaleOut) == 0 || len(destinations) == 0 {
		t.Fatalf("configs not found: %v", err)
	}
	var pipelines []string
	for _, c := range configs {
		if !strings.HasSuffix(c, "_benthos_test.yaml") {
			pipelines = append(pipelines, c)
		}
	}
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(binary, args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "MEIRO_EVENTS_URL=http://127.0.0.1:1/collect", "NATS_URL=nats://127.0.0.1:1", "KAFKA_BROKERS=127.0.0.1:1", "POSTGRES_DSN=postgres://netcore@127.0.0.1:1/events")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("netcore-connect %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run(append([]string{"lint"}, pipelines...)...)
	run("test", "./config/...")
}
