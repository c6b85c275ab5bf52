package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/netcore-connect/netcore-connect/bench/loadgen"
	"github.com/netcore-connect/netcore-connect/internal/testing/loopback"
)

// The engine scenario is what Benthos alone delivers on this machine: ours
// runs a pipeline that reads events ready to deliver from a file (in the
// page cache after the first read) and sends them with the same
// meiro_events output as the default pipeline, one event a request, 64 in
// flight. Nothing is received, queued or made durable. Beside drain, which
// does the same from the disk queue after a restart, it shows what the queue
// costs delivery; beside direct, what Benthos's path from an input to
// meiro_events costs.
const engineConfig = `# netcore-bench's engine scenario: delivery through Benthos, no queue.
input:
  file:
    paths: [ %q ]
    scanner:
      lines: {}
output:
  meiro_events:
    url: ${MEIRO_EVENTS_URL}
    dead_letter_dir: %q
`

// engineEventsPerSecond sizes the file: about as many events as direct
// delivers in the scenario's duration, so that both are timed over a
// similar stretch.
const engineEventsPerSecond = 40_000

// engine runs the engine scenario: delivered events/s from the first event
// at the sink to the last, and the CPU of ours per event over its whole run.
func (d *driver) engine(ctx context.Context, run int) record {
	// Concurrency: requests in flight (meiro_events' max_in_flight), as
	// direct's 64 senders have.
	rec := record{System: "engine", Concurrency: goalSenders, EventsPerPost: 1, Run: run,
		LogFile: filepath.Join(d.logDir, fmt.Sprintf("engine-r%d.log", run))}
	config, n, err := d.engineFiles()
	if err != nil {
		rec.Err = err.Error()
		return rec
	}
	admin, err := loopback.FreeAddr()
	if err != nil {
		rec.Err = err.Error()
		return rec
	}
	d.sink.reset()
	rec.AckEvents = n // what waits, for the CPU per event
	sys, err := startChild([]string{d.binary, "run", "--set", "http.address=" + admin, config},
		[]string{"MEIRO_EVENTS_URL=" + d.sinkURL}, rec.LogFile)
	if err != nil {
		rec.Err = err.Error()
		return rec
	}
	st, outcome := d.drain(ctx, n, sys.exited)
	rec.setDelivery(st, outcome, st.First)
	// Benthos ends the stream once the file is read and every event
	// acknowledged; the CPU is then the exited child's.
	select {
	case <-sys.exited:
	case <-ctx.Done():
		_ = sys.stop(d.stopGrace)
	case <-time.After(d.stopGrace):
		if err := sys.stop(d.stopGrace); err != nil {
			rec.StopErr = err.Error()
		}
	}
	if ps := sys.cmd.ProcessState; ps != nil {
		rec.CPUSeconds = (ps.UserTime() + ps.SystemTime()).Seconds()
		rec.CPUSecondsPer1kEvents = rec.CPUSeconds / float64(n) * 1000
	}
	return rec
}

// engineFiles writes the events and the pipeline of the engine scenario
// once per driver: every run reads the same events, the sink is reset
// between scenarios.
func (d *driver) engineFiles() (config string, n int, err error) {
	n = int(engineEventsPerSecond * d.duration.Seconds())
	config = filepath.Join(d.tmp, "engine.yaml")
	if _, err := os.Stat(config); err == nil {
		return config, n, nil
	}
	events := filepath.Join(d.tmp, "engine-events.jsonl")
	f, err := os.Create(events)
	if err != nil {
		return "", 0, fmt.Errorf("creating the engine's events: %w", err)
	}
	if err := loadgen.Events(f, fmt.Sprintf("engine-%d", time.Now().UnixNano()), 0, n); err != nil {
		f.Close()
		return "", 0, fmt.Errorf("writing the engine's events: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", 0, fmt.Errorf("writing the engine's events: %w", err)
	}
	pipeline := fmt.Sprintf(engineConfig, events, filepath.Join(d.tmp, "engine-dead-letter"))
	if err := os.WriteFile(config, []byte(pipeline), 0o644); err != nil {
		return "", 0, fmt.Errorf("writing the engine's pipeline: %w", err)
	}
	return config, n, nil
}
