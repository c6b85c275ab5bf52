package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/netcore-connect/netcore-connect/bench/loadgen"
)

// The journal scenario: the scale-out ingest (config/scale-out/ingest.yaml),
// which answers once a post is in its local journal and publishes from it to
// JetStream, under burst's load, beside burst in the same run. A JetStream
// node runs in this process at its default sync (every 2 minutes), on the
// same cores, so that what publishing costs the machine is counted.

// journalRun is the scenario's measurement: the ingest as any system's, and
// the journal once the load stopped, every post in it retained.
type journalRun struct {
	record
	// RecordBytes is the bytes of the journal's records (its
	// netcore_queue_bytes), FileBytes its file's size, which grows in steps
	// ahead of them and keeps the ids of the dedupe window too.
	RecordBytes int64 `json:"journal_record_bytes"`
	FileBytes   int64 `json:"journal_file_bytes"`
	// DiskPerMinute is the journal's bytes per minute of retention at the
	// rate measured: its records' bytes per post acknowledged, times the
	// posts acknowledged in a minute.
	DiskPerMinute float64 `json:"journal_bytes_per_minute_of_retention"`
	// PublishedPerSec is the events the stream stored while the load ran,
	// a second of the load: below the acked rate, the journal was filling
	// (a backlog that a sustained load would turn into 503s once it is
	// full).
	PublishedPerSec float64 `json:"journal_published_per_sec"`
	// DrainPerSec is the events the stream stored a second after the load
	// stopped, until it held every event acknowledged (the journal's
	// backlog published with nothing else to do). When it did not within
	// drainTimeout, Err says so.
	DrainPerSec float64 `json:"journal_drain_per_sec"`
}

// published says whether the run measured a journal that published: a 200
// from the journal promises the stream the post's events, so a run whose
// drain timed out, whose stream could not be read, or whose load failed (any
// error) says nothing of the scale-out ingest's throughput.
func (jr journalRun) published() bool { return jr.Err == "" }

// startJetStream runs a JetStream node in this process, storing in dir.
func startJetStream(dir string) (*server.Server, error) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		return nil, fmt.Errorf("starting JetStream: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("JetStream not ready after 30 s")
	}
	return ns, nil
}

// journal runs the scale-out ingest on a fresh journal and JetStream node,
// with goalSenders posting for the run's duration.
func (d *driver) journal(ctx context.Context, run int, config string) (jr journalRun) {
	jr.record = record{System: journalSystem, Concurrency: goalSenders, EventsPerPost: goalEventsInPost, Run: run,
		LogFile: filepath.Join(d.logDir, fmt.Sprintf("journal-r%d.log", run))}
	dir, err := os.MkdirTemp(d.tmp, "journal-")
	if err != nil {
		jr.Err = err.Error()
		return jr
	}
	defer os.RemoveAll(dir)
	ns, err := startJetStream(filepath.Join(dir, "jetstream"))
	if err != nil {
		jr.Err = err.Error()
		return jr
	}
	defer ns.Shutdown()
	data := filepath.Join(dir, "data")
	sys, err := d.launch(ctx, systemOurs, jr.LogFile, launchOpts{dataDir: data, config: config, env: []string{"NATS_URL=" + ns.ClientURL()}})
	if err != nil {
		jr.Err = err.Error()
		return jr
	}
	defer sys.stop(d.stopGrace)
	cpuBefore, err := cpuTime(sys.pid())
	if err != nil {
		jr.Err = err.Error()
	}
	waitProfile := d.startProfile(ctx, sys, jr.LogFile, d.duration)
	res, err := loadgen.Run(ctx, loadgen.Config{URL: sys.postURL, Concurrency: goalSenders, EventsPerPost: goalEventsInPost,
		Duration: d.duration, Prefix: fmt.Sprintf("journal-r%d-%d", run, time.Now().UnixNano())})
	if err != nil {
		jr.Err = fmt.Sprintf("load generator: %v", err)
	}
	stopped := time.Now()
	stored, err := storedEvents(ns)
	jr.setLoad(res)
	// Read when the load stops, while most of the publishing comes after:
	// the report says so beside the figure.
	jr.setCPU(sys.pid(), cpuBefore)
	waitProfile()
	if err == nil {
		jr.PublishedPerSec = divide(float64(stored), jr.LoadSeconds)
		jr.DrainPerSec, err = d.journalDrain(ctx, ns, stored, uint64(jr.AckEvents), stopped)
	}
	if err != nil {
		jr.Err = joinErr(jr.Err, err.Error())
	}
	if hwm, err := peakRSS(sys.pid()); err == nil {
		jr.PeakRSSMiB = float64(hwm) / (1 << 20)
	}
	jr.FileBytes = treeBytes(filepath.Join(data, "journal"))
	// The gauges are told once a second.
	time.Sleep(1500 * time.Millisecond)
	if b, err := metricValue(ctx, sys.adminURL+"/metrics", "netcore_queue_bytes"); err == nil {
		jr.RecordBytes = int64(b)
	}
	if jr.AckPosts > 0 {
		jr.DiskPerMinute = float64(jr.RecordBytes) / float64(jr.AckPosts) * jr.AckPostsPerSec * 60
	}
	return jr
}

// storedEvents is the events the JetStream node holds.
func storedEvents(ns *server.Server) (uint64, error) {
	jsz, err := ns.Jsz(&server.JSzOptions{})
	if err != nil {
		return 0, fmt.Errorf("reading the events the JetStream node holds (its Jsz), so the journal's publishing is not measured; run again: %w", err)
	}
	return jsz.Messages, nil
}

// journalDrain waits until the stream holds want events and gives the rate
// it stored those it lacked when the load stopped (at stopped, holding
// published). want is the events of the posts answered 200, each of which
// the journal must publish once (the stream drops repeats by Nats-Msg-Id).
// The stream may hold more: a post answered 503 after its write began and
// stalled ("it may be stored"), or one that got no answer, can be in the
// journal too, and then reaching want does not prove every 200's events
// are in; the report lists such answers in its notes.
func (d *driver) journalDrain(ctx context.Context, ns *server.Server, published, want uint64, stopped time.Time) (float64, error) {
	deadline := stopped.Add(d.drainTimeout)
	var n uint64
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var err error
		if n, err = storedEvents(ns); err != nil {
			return 0, err
		}
		if n >= want {
			return float64(n-published) / time.Since(stopped).Seconds(), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("stopped waiting for the journal to publish, %d of %d events in the stream: %w", n, want, err)
	}
	return 0, fmt.Errorf("the stream held %d of the %d events answered 200 %s after the load: the journal did not publish the rest; read its log, journal-rRUN.log in -logs", n, want, d.drainTimeout)
}

// treeBytes is the bytes of the files under dir, 0 if none.
func treeBytes(dir string) (n int64) {
	_ = filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if info, err := e.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
