package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/testing/loopback"
)

// The systems under test.
const (
	systemBare = "bare" // the parse ceiling: bare-server, nothing durable, no delivery
	// the delivery ceiling: the senders post each event alone straight to
	// the sink with Go's HTTP client, nothing in between
	systemDirect = "direct"
	systemStock  = "stock" // stock Benthos: http_server → parse → http_client, answers after delivery
	systemOurs   = "ours"  // netcore-connect's default pipeline: disk queue, answers once stored
	// the same with MEIRO_BATCH_SIZE: up to batchSize events a request, as JSON arrays
	systemOursBatched = "ours-batched"
)

// batchSize is MEIRO_BATCH_SIZE for ours-batched.
const batchSize = 100

var allSystems = []string{systemBare, systemDirect, systemStock, systemOurs, systemOursBatched}

// delivers says whether a system sends the events on to the sink.
func delivers(system string) bool { return system != systemBare }

// launched is a started system.
type launched struct {
	*child
	postURL  string // where Netcore posts go
	adminURL string // Benthos's admin server (/metrics), for stock and ours
	dataDir  string // to remove after the run; empty if none
}

// launchOpts vary a launch of ours.
type launchOpts struct {
	// dataDir is the data folder to run on, kept after the run (for a
	// restart on what a run left); empty: a fresh one, removed after.
	dataDir string
	set     []string // extra --set path=value for ours
	config  string   // a pipeline file for ours instead of the driver's
	env     []string // extra environment for ours
}

// launch starts a system on fresh loopback ports, with its output in
// logPath, and waits until it answers a post.
func (d *driver) launch(ctx context.Context, system, logPath string, opts launchOpts) (*launched, error) {
	webhook, err := loopback.FreeAddr()
	if err != nil {
		return nil, err
	}
	admin, err := loopback.FreeAddr()
	if err != nil {
		return nil, err
	}
	var argv, env []string
	l := &launched{postURL: "http://" + webhook + "/netcore", adminURL: "http://" + admin}
	switch system {
	case systemBare:
		argv = []string{d.self, "bare-server", "-addr", webhook}
	case systemStock:
		argv = []string{d.stockBinary, "run", "--set", "http.address=" + admin, d.stockConfig}
		env = []string{"NETCORE_ADDRESS=" + webhook, "MEIRO_EVENTS_URL=" + d.sinkURL}
	case systemOurs, systemOursBatched:
		dataDir := opts.dataDir
		if dataDir == "" {
			// A fresh data folder per run, so that the queue starts empty.
			if l.dataDir, err = os.MkdirTemp(d.tmp, "ours-data-"); err != nil {
				return nil, fmt.Errorf("creating the data folder: %w", err)
			}
			dataDir = l.dataDir
		}
		argv = []string{d.binary, "run", "--set", "http.address=" + admin}
		for _, s := range opts.set {
			argv = append(argv, "--set", s)
		}
		if d.profile {
			argv = append(argv, "--set", "http.debug_endpoints=true") // pprof on the admin address
		}
		if config := cmp.Or(opts.config, d.oursConfig); config != "" {
			argv = append(argv, config)
		}
		env = append([]string{"NETCORE_ADDRESS=" + webhook, "MEIRO_EVENTS_URL=" + d.sinkURL, "NETCORE_DATA_DIR=" + dataDir}, opts.env...)
		if system == systemOursBatched {
			env = append(env, fmt.Sprintf("MEIRO_BATCH_SIZE=%d", batchSize))
		}
	default:
		return nil, fmt.Errorf("unknown system %q", system)
	}
	if l.child, err = startChild(argv, env, logPath); err != nil {
		l.cleanup()
		return nil, err
	}
	if err := l.waitReady(ctx, d.startTimeout, func(ctx context.Context) error { return probe(ctx, l.postURL) }); err != nil {
		l.shutdown(d.stopGrace)
		return nil, fmt.Errorf("%s: %w", system, err)
	}
	return l, nil
}

// shutdown stops the system and removes its data.
func (l *launched) shutdown(grace time.Duration) error {
	err := l.stop(grace)
	l.cleanup()
	return err
}

func (l *launched) cleanup() {
	if l.dataDir != "" {
		_ = os.RemoveAll(l.dataDir) // a temp folder; the driver's own temp dir goes at exit too
	}
}

// probe posts an empty Netcore post (no panels, no events, so nothing
// reaches the sink) and wants a 200: the system takes posts end to end.
func probe(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader("data=%7B%7D"))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe answered %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}
