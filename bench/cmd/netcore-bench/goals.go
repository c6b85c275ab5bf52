package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/netcore-connect/netcore-connect/bench/loadgen"
)

// The goal scenarios: ours under a burst while Meiro Events is down, then
// restarted on that backlog (drain), and posting while delivering (steady),
// measured against the ceilings of the same run (bare, direct, stock), and
// beside Benthos alone delivering from a file (engine).
const (
	goalSenders      = 64 // senders of bare, direct, stock, burst and steady
	goalP99Senders   = 16 // senders of burst's latency phase
	goalEventsInPost = 10
)

// goalScenarios are the names of the scenarios, for -scenarios.
var goalScenarios = []string{"bare", "direct", "engine", "stock", "burst", "steady", "big-post", "journal"}

// goalRun is one repetition of every goal scenario.
type goalRun struct {
	Run int `json:"run"`
	// LoadAvg is /proc/loadavg before and after the run: what else the
	// shared machine was running meanwhile.
	LoadAvg [2]string `json:"load_average"`
	Bare    record    `json:"bare"`
	Bare16  record    `json:"bare_16"` // the parse ceiling's latency at 16 senders, beside burst's
	Direct  record    `json:"direct"`
	Engine  record    `json:"engine"` // Benthos alone delivering events from a file, no queue
	Stock   record    `json:"stock"`
	// Burst: ours with Meiro Events answering 503, 64 senders; Burst16 is
	// the same process with 16 senders right after, for the latency.
	Burst   record  `json:"burst"`
	Burst16 record  `json:"burst_16"`
	Drain   record  `json:"drain"`  // ours restarted on burst's backlog, Meiro Events healthy
	Steady  record  `json:"steady"` // ours posting and delivering at once
	BigPost bigPost `json:"big_post"`
	// Journal: the scale-out ingest with its journal, under burst's load
	// (journal.go).
	Journal journalRun `json:"journal"`
}

// peakRSS is the highest VmHWM of ours over burst and steady.
func (g goalRun) peakRSS() float64 {
	return max(g.Burst.PeakRSSMiB, g.Burst16.PeakRSSMiB, g.Steady.PeakRSSMiB)
}

// records are the run's scenarios that have a record, in the report's order.
func (g goalRun) records() []record {
	return []record{g.Bare, g.Bare16, g.Direct, g.Engine, g.Stock, g.Burst, g.Burst16, g.Drain, g.Steady, g.Journal.record}
}

// bigPost is one post of many events, with a one-event post sent a second
// into it.
type bigPost struct {
	Events       int     `json:"events"`
	Status       int     `json:"status"` // 0: no answer
	Seconds      float64 `json:"seconds"`
	SmallStatus  int     `json:"small_status"`
	SmallSeconds float64 `json:"small_seconds"`
	// Delivered is how many of the big post's events reached the sink: all
	// of them after a 200, and none after a refusal (else Netcore was told
	// to resend what was stored).
	Delivered int    `json:"delivered"`
	Err       string `json:"error,omitempty"`
}

type goalFlags struct {
	repeat                    int
	scenarios                 string
	duration, p99Duration     time.Duration
	bigPost                   int
	binary, repo, stockConfig string
	oursConfig                string
	out, jsonOut, svgOut      string
	logDir                    string
	profile                   bool
}

func goalsCommand(ctx context.Context, args []string) error {
	f := &goalFlags{}
	fs := flag.NewFlagSet("goals", flag.ContinueOnError)
	fs.IntVar(&f.repeat, "repeat", 2, "repetitions; the scenarios take turns, starting with a different one each time")
	fs.DurationVar(&f.duration, "duration", 5*time.Second, "how long the senders post in each scenario")
	fs.DurationVar(&f.p99Duration, "p99-duration", 3*time.Second, "how long 16 senders post after burst's 64, for the latency")
	fs.IntVar(&f.bigPost, "big-post", 100_000, "events in the big post")
	fs.StringVar(&f.scenarios, "scenarios", strings.Join(goalScenarios, ","), "scenarios to run, comma-separated: "+strings.Join(goalScenarios, ", ")+" (drain follows burst)")
	fs.StringVar(&f.binary, "binary", "", "`path` of the netcore-connect to run; empty: build ./cmd/netcore-connect of -repo")
	fs.StringVar(&f.repo, "repo", ".", "the repository root `folder`")
	fs.StringVar(&f.stockConfig, "stock-config", "bench/configs/stock-benthos.yaml", "the stock Benthos pipeline `file`")
	fs.StringVar(&f.oursConfig, "config", "", "a pipeline `file` for ours instead of its embedded default (to measure a variant; the big post raises its body limits with --set, which the file must take)")
	fs.StringVar(&f.out, "out", "bench/results/goals.md", "Markdown report `file` (also printed)")
	fs.StringVar(&f.jsonOut, "json", "bench/results/goals.json", "raw results `file`, JSON")
	fs.StringVar(&f.svgOut, "svg", "bench/results/goals.svg", "chart `file`, SVG")
	fs.StringVar(&f.logDir, "logs", "bench/results/logs", "`folder` for the output of each system run")
	fs.BoolVar(&f.profile, "profile", false, "also take a CPU profile of ours in burst (at 64 senders), drain and steady, written beside each run's log as NAME.pb.gz (it costs ours a little CPU: publish figures from a run without it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.repeat < 1 || f.duration <= 0 || f.p99Duration <= 0 || f.bigPost < 1 {
		return errors.New("-repeat, -duration and -p99-duration must be positive")
	}
	d, cleanup, err := newGoalDriver(ctx, f)
	if err != nil {
		return err
	}
	defer cleanup()

	started := time.Now()
	var runs []goalRun
	for rep := range f.repeat {
		g := goalRun{Run: rep + 1}
		g.LoadAvg[0] = loadAverage()
		all := map[string]func(){
			"bare": func() {
				g.Bare = d.runOne(ctx, systemBare, goalSenders, goalEventsInPost, rep+1)
				g.Bare16 = d.runOne(ctx, systemBare, goalP99Senders, goalEventsInPost, rep+1)
			},
			"direct": func() { g.Direct = d.runOne(ctx, systemDirect, goalSenders, goalEventsInPost, rep+1) },
			"engine": func() { g.Engine = d.engine(ctx, rep+1) },
			"stock":  func() { g.Stock = d.runOne(ctx, systemStock, goalSenders, goalEventsInPost, rep+1) },
			"burst":  func() { g.Burst, g.Burst16, g.Drain = d.burstThenDrain(ctx, rep+1, f.p99Duration) },
			"steady": func() {
				g.Steady = d.runOne(ctx, systemOurs, goalSenders, goalEventsInPost, rep+1)
				g.Steady.System = "steady"
			},
			"big-post": func() { g.BigPost = d.bigPost(ctx, rep+1, f.bigPost) },
			"journal":  func() { g.Journal = d.journal(ctx, rep+1, filepath.Join(f.repo, "config", "scale-out", "ingest.yaml")) },
		}
		var scenarios []func()
		for _, name := range strings.Split(f.scenarios, ",") {
			run, ok := all[strings.TrimSpace(name)]
			if !ok {
				return fmt.Errorf("-scenarios: unknown scenario %q (want some of %s)", name, strings.Join(goalScenarios, ", "))
			}
			scenarios = append(scenarios, run)
		}
		// Taking turns spreads any drift of the shared machine over all.
		for i := range scenarios {
			scenarios[(i+rep)%len(scenarios)]()
			if ctx.Err() != nil {
				break
			}
		}
		g.LoadAvg[1] = loadAverage()
		fmt.Fprintf(os.Stderr, "run %d: %s\n", rep+1, g.summary())
		runs = append(runs, g)
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(ctx.Err(), writeGoalReports(f, d, runs, started))
}

// newGoalDriver builds the binaries and starts the sink.
func newGoalDriver(ctx context.Context, f *goalFlags) (*driver, func(), error) {
	d := &driver{logDir: f.logDir, duration: f.duration, startTimeout: time.Minute, stopGrace: 30 * time.Second,
		drainTimeout: 3 * time.Minute, drainQuiet: 5 * time.Second, profile: f.profile}
	var err error
	if d.self, err = os.Executable(); err != nil {
		return nil, nil, fmt.Errorf("finding this program, to run the bare server: %w", err)
	}
	if d.stockConfig, err = filepath.Abs(f.stockConfig); err != nil {
		return nil, nil, fmt.Errorf("-stock-config: %w", err)
	}
	if f.oursConfig != "" {
		if d.oursConfig, err = filepath.Abs(f.oursConfig); err != nil {
			return nil, nil, fmt.Errorf("-config: %w", err)
		}
	}
	for _, dir := range []string{f.logDir, filepath.Dir(f.out), filepath.Dir(f.jsonOut), filepath.Dir(f.svgOut)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, fmt.Errorf("creating the results folder: %w", err)
		}
	}
	if d.tmp, err = os.MkdirTemp("", "netcore-bench-"); err != nil {
		return nil, nil, fmt.Errorf("creating a temporary folder: %w", err)
	}
	fail := func(err error) (*driver, func(), error) { os.RemoveAll(d.tmp); return nil, nil, err }
	if d.binary, err = buildBinary(ctx, f.binary, f.repo, "./cmd/netcore-connect", "ncc-bench"); err != nil {
		return fail(err)
	}
	if d.stockBinary, err = buildBinary(ctx, "", f.repo, "./bench/cmd/stock-benthos", "stock-benthos-bench"); err != nil {
		return fail(err)
	}
	stopSink, err := d.startSink()
	if err != nil {
		return fail(err)
	}
	return d, func() { stopSink(); os.RemoveAll(d.tmp) }, nil
}

// burstThenDrain runs burst (64 senders, then 16, Meiro Events down),
// stops ours, and restarts it on the backlog with Meiro Events back.
func (d *driver) burstThenDrain(ctx context.Context, run int, p99Duration time.Duration) (burst, burst16, drain record) {
	burst = record{System: "burst", Concurrency: goalSenders, EventsPerPost: goalEventsInPost, Run: run,
		LogFile: filepath.Join(d.logDir, fmt.Sprintf("burst-r%d.log", run))}
	burst16 = record{System: "burst", Concurrency: goalP99Senders, EventsPerPost: goalEventsInPost, Run: run}
	drain = record{System: "drain", Run: run, LogFile: filepath.Join(d.logDir, fmt.Sprintf("drain-r%d.log", run))}
	dataDir, err := os.MkdirTemp(d.tmp, "burst-data-")
	if err != nil {
		burst.Err = err.Error()
		return
	}
	defer os.RemoveAll(dataDir)

	d.sink.reset()
	d.sink.down.Store(true)
	sys, err := d.launch(ctx, systemOurs, burst.LogFile, launchOpts{dataDir: dataDir})
	if err != nil {
		d.sink.down.Store(false)
		burst.Err = err.Error()
		return
	}
	cpuBefore, err := cpuTime(sys.pid())
	if err != nil {
		burst.Err = err.Error()
	}
	waitProfile := d.startProfile(ctx, sys, burst.LogFile, d.duration)
	for _, phase := range []struct {
		rec      *record
		duration time.Duration
	}{{&burst, d.duration}, {&burst16, p99Duration}} {
		res, err := loadgen.Run(ctx, loadgen.Config{URL: sys.postURL, Concurrency: phase.rec.Concurrency,
			EventsPerPost: goalEventsInPost, Duration: phase.duration,
			Prefix: fmt.Sprintf("burst-c%d-r%d-%d", phase.rec.Concurrency, run, time.Now().UnixNano())})
		if err != nil {
			phase.rec.Err = fmt.Sprintf("load generator: %v", err)
		}
		phase.rec.setLoad(res)
		if phase.rec == &burst {
			burst.setCPU(sys.pid(), cpuBefore)
			waitProfile()
		}
	}
	if hwm, err := peakRSS(sys.pid()); err == nil {
		burst.PeakRSSMiB = float64(hwm) / (1 << 20)
	}
	if err := sys.stop(d.stopGrace); err != nil {
		burst.StopErr = err.Error()
	}
	d.sink.down.Store(false)
	if ctx.Err() != nil {
		return
	}
	return burst, burst16, d.drainBacklog(ctx, drain, dataDir, burst.AckEvents+burst16.AckEvents)
}

// drainBacklog restarts ours on dataDir, posts nothing, and times the
// delivery of want events: from the first to the last that reached the sink.
func (d *driver) drainBacklog(ctx context.Context, rec record, dataDir string, want int) record {
	d.sink.reset()
	rec.AckEvents = want // what waits, for the CPU per event
	sys, err := d.launch(ctx, systemOurs, rec.LogFile, launchOpts{dataDir: dataDir})
	if err != nil {
		rec.Err = err.Error()
		return rec
	}
	defer sys.stop(d.stopGrace)
	// burst's backlog takes about twice its posting time to drain (18.6–26.3 s
	// after 10 s of posting, 2026-12-06): a profile of the posting time fits.
	waitProfile := d.startProfile(ctx, sys, rec.LogFile, d.duration)
	st, outcome := d.drain(ctx, want, sys.exited)
	rec.setDelivery(st, outcome, st.First)
	rec.setCPU(sys.pid(), 0) // since the start: the load of the backlog counts too
	if hwm, err := peakRSS(sys.pid()); err == nil {
		rec.PeakRSSMiB = float64(hwm) / (1 << 20)
	}
	waitProfile() // after the CPU is read: a drain quicker than the profile leaves it to finish alone
	return rec
}

// bigPost sends one post of n events to a fresh ours (Meiro Events
// healthy) and, a second later, a post of one event; then waits for the
// big post's events at the sink. The body limits are raised to fit the post
// (128 MiB a body, 1 GiB for posts being read and stored: the largest post
// may hold five times its body, beside the eighth kept for small posts).
func (d *driver) bigPost(ctx context.Context, run, n int) bigPost {
	bp := bigPost{Events: n}
	d.sink.reset()
	logFile := filepath.Join(d.logDir, fmt.Sprintf("big-post-r%d.log", run))
	sys, err := d.launch(ctx, systemOurs, logFile, launchOpts{set: []string{
		"input.netcore_webhook.max_body_bytes=134217728", "input.netcore_webhook.max_body_bytes_in_flight=1073741824"}})
	if err != nil {
		bp.Err = err.Error()
		return bp
	}
	defer sys.shutdown(d.stopGrace)
	prefix := fmt.Sprintf("big-r%d-%d", run, time.Now().UnixNano())
	contentType, body := loadgen.Post("", prefix, 0, n)
	type answer struct {
		status int
		took   time.Duration
		err    error
	}
	post := func(body []byte, out chan<- answer) {
		start := time.Now()
		status, err := postOnce(ctx, sys.postURL, contentType, body)
		out <- answer{status, time.Since(start), err}
	}
	big, small := make(chan answer, 1), make(chan answer, 1)
	go post(body, big)
	time.Sleep(time.Second)
	_, smallBody := loadgen.Post("", prefix+"-small", 0, 1)
	go post(smallBody, small)
	s, b := <-small, <-big
	bp.SmallStatus, bp.SmallSeconds = s.status, s.took.Seconds()
	bp.Status, bp.Seconds = b.status, b.took.Seconds()
	if err := errors.Join(b.err, s.err); err != nil {
		bp.Err = err.Error()
	}
	// The big post's events, and the small one, at the sink.
	st, _ := d.drain(ctx, n+1, sys.exited)
	bp.Delivered = st.Distinct - min(st.Distinct, 1)
	return bp
}

// loadAverage is the 1-minute load average of the machine, "?" if unknown.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if fields := strings.Fields(string(b)); err == nil && len(fields) > 0 {
		return fields[0]
	}
	return "?"
}

// postOnce posts body and returns the status of the answer.
func postOnce(ctx context.Context, url, contentType string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func (g goalRun) summary() string {
	var journal string
	if g.Journal.AckPosts > 0 {
		journal = fmt.Sprintf("; journal %.0f acked/s (%.2f× burst, %.0f µs CPU an event during the load), %.0f published to the stream a second meanwhile and %.0f after, %d B of records a post, %.1f MB of journal per minute of retention", g.Journal.AckEventsPerSec,
			g.Journal.AckEventsPerSec/max(g.Burst.AckEventsPerSec, 1), cpuMicros(g.Journal.record), g.Journal.PublishedPerSec, g.Journal.DrainPerSec, g.Journal.RecordBytes/int64(max(g.Journal.AckPosts, 1)), g.Journal.DiskPerMinute/1e6)
	}
	if g.Journal.Err != "" {
		journal += "; journal error: " + g.Journal.Err
	}
	return fmt.Sprintf("bare %.0f (%.0f µs), burst %.0f (%.0f µs) acked/s (p99 at 16: bare %.1f ms, burst %.1f ms); direct %.0f, engine %.0f, drain %.0f, steady %.0f, stock %.0f delivered/s; peak RSS %.0f MiB; big post %d in %.1f s, small %d in %.2f s",
		g.Bare.AckEventsPerSec, cpuMicros(g.Bare), g.Burst.AckEventsPerSec, cpuMicros(g.Burst), g.Bare16.P99ms, g.Burst16.P99ms,
		g.Direct.DeliveredPerSec, g.Engine.DeliveredPerSec, g.Drain.DeliveredPerSec, g.Steady.DeliveredPerSec, g.Stock.DeliveredPerSec,
		g.peakRSS(), g.BigPost.Status, g.BigPost.Seconds, g.BigPost.SmallStatus, g.BigPost.SmallSeconds) + journal
}
