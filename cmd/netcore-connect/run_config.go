package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"
)

// runsEmbeddedDefault is set when run (or the bare command) was named no
// config, so that the embedded default pipeline runs: Benthos then logs
// only that it found a file "in a default path", a temporary one this
// process wrote (writeDefaultConfig), and logEmbeddedDefault says which.
var runsEmbeddedDefault bool

// logEmbeddedDefault says, first thing in the log, that the embedded
// default pipeline runs, when it does.
func logEmbeddedDefault(l *service.Logger) {
	if runsEmbeddedDefault {
		l.Info("No config named: running the embedded default pipeline (config/netcore-to-meiro.yaml of this version); name a config to run another")
	}
}

// isRun says whether c is the run command, or the bare command, which
// runs too.
func isRun(c *cli.Context) bool {
	return c.Command.Name == "run" || c.Command.Name == c.App.Name || c.Command.Name == ""
}

// checkNotAStreamsRoot stops `run` (or the bare command) given a streams
// root config: one with neither input nor output, such as
// config/destinations/meiro-and-archive.yaml, which holds only the metrics
// and logs its streams share. Benthos would run it with its defaults, stdin
// to stdout, and exit 0 at the end of stdin, saying nothing useful; the
// user meant the streams command, which the error spells out. A config
// that cannot be read or parsed is left for Benthos to report.
func checkNotAStreamsRoot(c *cli.Context) error {
	if !isRun(c) {
		return nil
	}
	path := c.String("config")
	if c.Command.Name == "run" && c.Args().Len() > 0 {
		path = c.Args().First()
	}
	runsEmbeddedDefault = path == ""
	if path == "" || setsInputOrOutput(c.StringSlice("set")) {
		return nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var top map[string]any
	if yaml.Unmarshal(raw, &top) != nil {
		return nil
	}
	if _, ok := top["input"]; ok {
		return nil
	}
	if _, ok := top["output"]; ok {
		return nil
	}
	// The shipped recipes keep their streams in the folder named as the
	// root config.
	streams := strings.TrimSuffix(path, filepath.Ext(path)) + string(filepath.Separator)
	if info, err := os.Stat(streams); err != nil || !info.IsDir() {
		streams = "FOLDER_OF_STREAM_CONFIGS/"
	}
	return fmt.Errorf("%s has no input and no output: it is the root config of streams mode (what its streams share), "+
		"which run would start as Benthos's default, stdin to stdout. Run it with the streams command, naming the folder of its streams:\n"+
		"  netcore-connect streams --no-api -o %s %s", path, path, streams)
}

// setsInputOrOutput says whether --set flags give the config an input or
// an output.
func setsInputOrOutput(sets []string) bool {
	for _, s := range sets {
		if strings.HasPrefix(s, "input.") || strings.HasPrefix(s, "output.") {
			return true
		}
	}
	return false
}
