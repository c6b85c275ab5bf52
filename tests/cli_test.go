package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunWithAStreamsRootConfigNamesTheStreamsCommand: a streams root config
// (metrics and logs only, no input, no output) given to run is the first
// thing a user tries with the two-destination recipe. It must fail at once
// and name the streams command, not run Benthos's stdin to stdout default
// and exit 0 having said nothing useful.
func TestRunWithAStreamsRootConfigNamesTheStreamsCommand(t *testing.T) {
	root := filepath.Join(repoRoot(t), "config", "destinations", "meiro-and-archive.yaml")
	for _, args := range [][]string{{"run", root}, {"-c", root}} {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "MEIRO_EVENTS_URL=http://127.0.0.1:1/collect", "NETCORE_ADMIN_ADDRESS="+freeAddr(t))
		cmd.Dir = t.TempDir()
		cmd.Stdin = strings.NewReader("") // what the stdin default would read: nothing, then the end
		done := make(chan struct{})
		var out []byte
		var err error
		go func() { out, err = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("%v ran on for 20s: %s", args, out)
		}
		if err == nil {
			t.Errorf("%v exited 0; want a failure naming the streams command:\n%s", args, out)
		}
		for _, want := range []string{"streams", "-o " + root, "meiro-and-archive/"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%v said nothing of %q:\n%s", args, want, out)
			}
		}
	}
}

// TestStreamsHelpLinksToTheEngineGuide: streams --help ends with a link to
// the guide of streams mode, which is the engine's (Benthos's) and lives in
// its documentation, not in this repository.
func TestStreamsHelpLinksToTheEngineGuide(t *testing.T) {
	out, err := exec.Command(binary, "streams", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("streams --help: %v\n%s", err, out)
	}
	if want := "https://docs.redpanda.com/redpanda-connect/guides/streams_mode/about"; !strings.Contains(string(out), want) {
		t.Errorf("streams --help does not link to %s:\n%s", want, out)
	}
	if strings.Contains(string(out), "netcore-connect/guides") {
		t.Errorf("streams --help links to a guide this repository does not have:\n%s", out)
	}
}

// TestStartWithoutAConfigSaysItRunsTheEmbeddedDefault: with no config named,
// the start log says that the embedded default pipeline runs, and which,
// not only that a file was "found in a default path" (a temporary file
// this process wrote).
func TestStartWithoutAConfigSaysItRunsTheEmbeddedDefault(t *testing.T) {
	m := newMeiro(t)
	p := startProcess(t, options{env: map[string]string{"MEIRO_EVENTS_URL": m.URL}})
	if log := p.stderr.String() + p.stdout.String(); !strings.Contains(log, "embedded default pipeline") || !strings.Contains(log, "config/netcore-to-meiro.yaml") {
		t.Errorf("the start log does not say that the embedded default pipeline (config/netcore-to-meiro.yaml) runs:\n%s", log)
	}
}
