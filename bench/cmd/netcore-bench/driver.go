package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netcore-connect/netcore-connect/bench/loadgen"
)

// driver runs the systems one after another and measures them.
type driver struct {
	self         string // this program, for the bare server
	binary       string // netcore-connect, for ours
	stockBinary  string // Benthos core alone (bench/cmd/stock-benthos), for stock
	stockConfig  string
	oursConfig   string // a pipeline file for ours; empty: its embedded default
	sinkURL      string
	sink         *sink
	tmp          string // removed at exit
	logDir       string
	duration     time.Duration
	startTimeout time.Duration
	stopGrace    time.Duration
	drainTimeout time.Duration
	drainQuiet   time.Duration
	profile      bool // goals -profile: CPU profiles of ours, beside its logs
}

// runFlags are the flags of `netcore-bench run`.
type runFlags struct {
	systems, concurrency, eventsPerPost string
	repeat                              int
	duration                            time.Duration
	binary, repo, stockConfig           string
	out, jsonOut, svgOut, logDir        string
	startTimeout, drainTimeout          time.Duration
	drainQuiet, stopGrace               time.Duration
}

// newRunFlagSet declares the flags of run into f.
func newRunFlagSet(f *runFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.StringVar(&f.systems, "systems", strings.Join(allSystems, ","), "systems to measure, comma-separated: bare, direct, stock, ours, ours-batched")
	fs.StringVar(&f.concurrency, "concurrency", "1,16,64", "numbers of concurrent senders, each with one post in flight, comma-separated")
	fs.StringVar(&f.eventsPerPost, "events-per-post", "10", "events in each post, comma-separated (e.g. 1,10,100)")
	fs.IntVar(&f.repeat, "repeat", 1, "runs of each system in each cell; the systems take turns, starting with a different one each time")
	fs.DurationVar(&f.duration, "duration", 5*time.Second, "how long the senders post in each run")
	fs.StringVar(&f.binary, "binary", "", "`path` of the netcore-connect to run; empty: build ./cmd/netcore-connect of -repo to "+filepath.Join(os.TempDir(), "ncc-bench"))
	fs.StringVar(&f.repo, "repo", ".", "the repository root `folder`, where the binary is built from")
	fs.StringVar(&f.stockConfig, "stock-config", "bench/configs/stock-benthos.yaml", "the stock Benthos pipeline `file`")
	fs.StringVar(&f.out, "out", "bench/results/latest.md", "Markdown report `file` (also printed)")
	fs.StringVar(&f.jsonOut, "json", "bench/results/latest.json", "raw results `file`, JSON")
	fs.StringVar(&f.svgOut, "svg", "bench/results/events-per-second.svg", "chart `file`, SVG")
	fs.StringVar(&f.logDir, "logs", "bench/results/logs", "`folder` for the output of each system run")
	fs.DurationVar(&f.startTimeout, "start-timeout", 30*time.Second, "how long a system may take to answer its first post")
	fs.DurationVar(&f.drainTimeout, "drain-timeout", 2*time.Minute, "the longest wait, after the senders stop, for delivery to the sink to finish")
	fs.DurationVar(&f.drainQuiet, "drain-quiet", 2*time.Second, "delivery counts as finished when the sink receives nothing for this long")
	fs.DurationVar(&f.stopGrace, "stop-grace", 15*time.Second, "how long a system may take to exit after SIGTERM before it is killed")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: netcore-bench run [flags]\n\n"+
			"Runs each system in -systems for each -concurrency and -events-per-post, the systems\n"+
			"taking turns within each cell, and writes the report. Run it from the repository root.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs
}

func parseRunFlags(args []string) (*runFlags, error) {
	f := &runFlags{}
	fs := newRunFlagSet(f)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if f.repeat < 1 || f.duration <= 0 {
		return nil, errors.New("-repeat and -duration must be positive")
	}
	return f, nil
}

func runCommand(ctx context.Context, args []string) error {
	f, err := parseRunFlags(args)
	if err != nil {
		return err
	}
	systems, err := parseSystems(f.systems)
	if err != nil {
		return err
	}
	concurrency, err := parsePositiveInts("-concurrency", f.concurrency)
	if err != nil {
		return err
	}
	sizes, err := parsePositiveInts("-events-per-post", f.eventsPerPost)
	if err != nil {
		return err
	}
	d := &driver{
		logDir: f.logDir, duration: f.duration,
		startTimeout: f.startTimeout, stopGrace: f.stopGrace,
		drainTimeout: f.drainTimeout, drainQuiet: f.drainQuiet,
	}
	if d.self, err = os.Executable(); err != nil {
		return fmt.Errorf("finding this program, to run the bare server: %w", err)
	}
	if d.stockConfig, err = filepath.Abs(f.stockConfig); err != nil {
		return fmt.Errorf("-stock-config: %w", err)
	}
	if _, err := os.Stat(d.stockConfig); err != nil && slices.Contains(systems, systemStock) {
		return fmt.Errorf("the stock pipeline: %w (run from the repository root, or set -stock-config)", err)
	}
	for _, dir := range []string{f.logDir, filepath.Dir(f.out), filepath.Dir(f.jsonOut), filepath.Dir(f.svgOut)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating the results folder: %w", err)
		}
	}
	if d.tmp, err = os.MkdirTemp("", "netcore-bench-"); err != nil {
		return fmt.Errorf("creating a temporary folder: %w", err)
	}
	defer os.RemoveAll(d.tmp)
	if slices.Contains(systems, systemOurs) || slices.Contains(systems, systemOursBatched) {
		if d.binary, err = buildBinary(ctx, f.binary, f.repo, "./cmd/netcore-connect", "ncc-bench"); err != nil {
			return err
		}
	}
	if slices.Contains(systems, systemStock) {
		if d.stockBinary, err = buildBinary(ctx, "", f.repo, "./bench/cmd/stock-benthos", "stock-benthos-bench"); err != nil {
			return err
		}
	}

	stopSink, err := d.startSink()
	if err != nil {
		return err
	}
	defer stopSink()

	started := time.Now()
	var records []record
	for _, c := range concurrency {
		for _, size := range sizes {
			for rep := range f.repeat {
				// Taking turns within the cell spreads any drift of the
				// machine (heat, other load) over all systems alike.
				for i := range systems {
					system := systems[(i+rep)%len(systems)]
					fmt.Fprintf(os.Stderr, "%s: %s, run %d ...\n", system, describeCell(c, size), rep+1)
					rec := d.runOne(ctx, system, c, size, rep+1)
					fmt.Fprintf(os.Stderr, "  %s\n", rec.summary())
					records = append(records, rec)
					if ctx.Err() != nil {
						return errors.Join(ctx.Err(), d.writeReports(f, records, started))
					}
				}
			}
		}
	}
	if err := d.writeReports(f, records, started); err != nil {
		return err
	}
	if failed := slices.DeleteFunc(slices.Clone(records), func(r record) bool { return r.Err == "" }); len(failed) > 0 {
		return fmt.Errorf("%d of %d runs failed, the first: %s %s: %s",
			len(failed), len(records), failed[0].System, describeCell(failed[0].Concurrency, failed[0].EventsPerPost), failed[0].Err)
	}
	return nil
}

// startSink starts the stand-in for Meiro Events on a loopback port.
func (d *driver) startSink() (stop func(), err error) {
	d.sink = newSink()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting the sink: %w", err)
	}
	srv := newServer(d.sink, d.sink.connState)
	go func() { _ = srv.Serve(ln) }() // ends with Close
	d.sinkURL = "http://" + ln.Addr().String() + "/collect"
	return func() { _ = srv.Close() }, nil
}

// runOne measures one system in one cell. Failures are recorded in the
// result, so that one bad run does not lose the others.
func (d *driver) runOne(ctx context.Context, system string, concurrency, size, run int) record {
	rec := record{System: system, Concurrency: concurrency, EventsPerPost: size, Run: run,
		LogFile: filepath.Join(d.logDir, fmt.Sprintf("%s-c%d-e%d-r%d.log", system, concurrency, size, run))}
	d.sink.reset()
	if system == systemDirect {
		return d.runDirect(ctx, rec)
	}
	sys, err := d.launch(ctx, system, rec.LogFile, launchOpts{})
	if err != nil {
		rec.Err = err.Error()
		return rec
	}
	defer sys.shutdown(d.stopGrace) // on every path; a no-op after the stop below
	cpuBefore, err := cpuTime(sys.pid())
	if err != nil {
		rec.Err = err.Error()
		return rec
	}
	peakAnon := watchAnonRSS(sys.pid())
	waitProfile := func() {}
	if system == systemOurs {
		waitProfile = d.startProfile(ctx, sys, rec.LogFile, d.duration)
	}

	res, err := loadgen.Run(ctx, loadgen.Config{
		URL: sys.postURL, Concurrency: concurrency, EventsPerPost: size, Duration: d.duration,
		Prefix: fmt.Sprintf("%s-c%d-e%d-r%d-%d", system, concurrency, size, run, time.Now().UnixNano()),
	})
	if err != nil {
		rec.Err = fmt.Sprintf("load generator: %v", err)
	}
	rec.setLoad(res)
	waitProfile()
	if delivers(system) {
		st, outcome := d.drain(ctx, res.Events, sys.exited)
		rec.setDelivery(st, outcome, res.Started)
	}

	// Memory and CPU are read before the stop, which would end the process.
	rec.PeakAnonMiB = float64(peakAnon()) / (1 << 20)
	if hwm, err := peakRSS(sys.pid()); err == nil {
		rec.PeakRSSMiB = float64(hwm) / (1 << 20)
	} else {
		rec.Err = joinErr(rec.Err, err.Error())
	}
	rec.setCPU(sys.pid(), cpuBefore)
	if err := sys.shutdown(d.stopGrace); err != nil {
		rec.StopErr = err.Error()
	}
	if rec.Log, err = sys.readLog(); err != nil {
		rec.Err = joinErr(rec.Err, err.Error())
	}
	return rec
}

// runDirect measures the delivery ceiling: the senders post each event alone
// to the sink, nothing in between, so it is what one event a request costs
// this machine with Go's HTTP client on one end and the sink on the other.
// No child runs: the CPU is the driver's own, senders and sink together.
func (d *driver) runDirect(ctx context.Context, rec record) record {
	cpuBefore, err := cpuTime(os.Getpid())
	if err != nil {
		rec.Err = err.Error()
		return rec
	}
	res, err := loadgen.Run(ctx, loadgen.Config{
		URL: d.sinkURL, Concurrency: rec.Concurrency, EventsAlone: true, Duration: d.duration,
		Prefix: fmt.Sprintf("%s-c%d-e%d-r%d-%d", rec.System, rec.Concurrency, rec.EventsPerPost, rec.Run, time.Now().UnixNano()),
	})
	if err != nil {
		rec.Err = fmt.Sprintf("load generator: %v", err)
	}
	rec.setLoad(res)
	rec.setDelivery(d.sink.stats(), drainComplete, res.Started)
	rec.setCPU(os.Getpid(), cpuBefore)
	return rec
}

// Outcomes of waiting for delivery.
const (
	drainComplete    = "complete"    // the sink has every acknowledged event
	drainStalled     = "stalled"     // the sink received nothing for the quiet period
	drainTimedOut    = "timed out"   // -drain-timeout passed
	drainChildExited = "exited"      // the system died
	drainInterrupted = "interrupted" // the benchmark was stopped
)

// drain waits until the sink has want distinct events, or delivery stops
// for drainQuiet, or drainTimeout passes.
func (d *driver) drain(ctx context.Context, want int, exited <-chan struct{}) (sinkStats, string) {
	deadline := time.NewTimer(d.drainTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last, lastGrowth := d.sink.stats(), time.Now()
	for {
		st := d.sink.stats()
		switch {
		case st.Distinct >= want:
			return st, drainComplete
		case st.Events != last.Events:
			last, lastGrowth = st, time.Now()
		case time.Since(lastGrowth) >= d.drainQuiet:
			return st, drainStalled
		}
		select {
		case <-ctx.Done():
			return st, drainInterrupted
		case <-exited:
			return d.sink.stats(), drainChildExited
		case <-deadline.C:
			return d.sink.stats(), drainTimedOut
		case <-tick.C:
		}
	}
}

// buildBinary returns binary if set, otherwise builds the package pkg of
// repo to name in the temporary folder.
func buildBinary(ctx context.Context, binary, repo, pkg, name string) (string, error) {
	if binary != "" {
		if _, err := os.Stat(binary); err != nil {
			return "", fmt.Errorf("-binary: %w", err)
		}
		return filepath.Abs(binary)
	}
	out := filepath.Join(os.TempDir(), name)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = repo
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	fmt.Fprintf(os.Stderr, "building %s from %s ...\n", out, filepath.Join(repo, pkg))
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building %s (run from the repository root, or set -repo): %w", pkg, err)
	}
	return out, nil
}

func parseSystems(s string) ([]string, error) {
	var systems []string
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(allSystems, name) {
			return nil, fmt.Errorf("-systems: unknown system %q (want some of %s)", name, strings.Join(allSystems, ", "))
		}
		if !slices.Contains(systems, name) {
			systems = append(systems, name)
		}
	}
	return systems, nil
}

func parsePositiveInts(flagName, s string) ([]int, error) {
	var ns []int
	for field := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %q is not a positive number", flagName, field)
		}
		ns = append(ns, n)
	}
	return ns, nil
}

// describeCell is e.g. "16 senders, 10 events a post".
func describeCell(concurrency, size int) string {
	return plural(concurrency, "sender") + ", " + plural(size, "event") + " a post"
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
