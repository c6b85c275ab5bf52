package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/netcore-connect/netcore-connect/bench/loadgen"
)

// outageSample is what ours holds at one moment of an outage.
type outageSample struct {
	at      time.Duration // since the senders started
	backlog float64       // netcore_queue_events: events waiting on disk
	anon    int64         // RssAnon: heap and stacks
	rss     int64         // VmRSS: with the queue file's mapped pages
}

// outageCommand runs ours while the stand-in for Meiro Events answers 503,
// sampling its memory and backlog, then brings the stand-in back and times
// the catch-up: the backlog should grow on disk while memory stays flat,
// and every acknowledged event should arrive once it is back.
func outageCommand(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("outage", flag.ContinueOnError)
	concurrency := fs.Int("concurrency", 16, "concurrent senders, each with one post in flight")
	size := fs.Int("events-per-post", 10, "events in each post")
	down := fs.Duration("down", 60*time.Second, "how long Meiro Events is down while the senders post")
	every := fs.Duration("sample", 5*time.Second, "how often memory and backlog are sampled")
	binary := fs.String("binary", "", "`path` of the netcore-connect to run; empty: build ./cmd/netcore-connect of -repo")
	repo := fs.String("repo", ".", "the repository root `folder`")
	out := fs.String("out", "bench/results/outage.md", "Markdown report `file` (also printed)")
	logDir := fs.String("logs", "bench/results/logs", "`folder` for the output of netcore-connect")
	drainTimeout := fs.Duration("drain-timeout", 10*time.Minute, "the longest wait for the catch-up once Meiro Events is back")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *concurrency < 1 || *size < 1 || *down <= 0 || *every <= 0 {
		return errors.New("-concurrency, -events-per-post, -down and -sample must be positive")
	}
	for _, dir := range []string{*logDir, filepath.Dir(*out)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating the results folder: %w", err)
		}
	}
	d := &driver{startTimeout: 30 * time.Second, stopGrace: 15 * time.Second, drainTimeout: *drainTimeout, drainQuiet: 30 * time.Second}
	var err error
	if d.tmp, err = os.MkdirTemp("", "netcore-bench-"); err != nil {
		return fmt.Errorf("creating a temporary folder: %w", err)
	}
	defer os.RemoveAll(d.tmp)
	if d.binary, err = buildBinary(ctx, *binary, *repo, "./cmd/netcore-connect", "ncc-bench"); err != nil {
		return err
	}
	stopSink, err := d.startSink()
	if err != nil {
		return err
	}
	defer stopSink()
	d.sink.down.Store(true)

	sys, err := d.launch(ctx, systemOurs, filepath.Join(*logDir, fmt.Sprintf("outage-c%d-e%d.log", *concurrency, *size)), launchOpts{})
	if err != nil {
		return err
	}
	defer sys.shutdown(d.stopGrace)

	type loadDone struct {
		res loadgen.Result
		err error
	}
	loaded := make(chan loadDone, 1)
	started := time.Now()
	go func() {
		res, err := loadgen.Run(ctx, loadgen.Config{URL: sys.postURL, Concurrency: *concurrency, EventsPerPost: *size, Duration: *down})
		loaded <- loadDone{res, err}
	}()
	var samples []outageSample
	tick := time.NewTicker(*every)
	defer tick.Stop()
	var load loadDone
sampling:
	for {
		select {
		case load = <-loaded:
			break sampling
		case <-tick.C:
			s, err := sampleOurs(ctx, sys, time.Since(started))
			if err != nil {
				return err
			}
			samples = append(samples, s)
		}
	}
	if load.err != nil {
		return fmt.Errorf("load generator: %w", load.err)
	}
	last, err := sampleOurs(ctx, sys, time.Since(started))
	if err != nil {
		return err
	}
	samples = append(samples, last)

	d.sink.down.Store(false)
	back := time.Now()
	st, outcome := d.drain(ctx, load.res.Events, sys.exited)
	endAnon, err := anonRSS(sys.pid())
	if err != nil {
		return err
	}
	if err := sys.shutdown(d.stopGrace); err != nil {
		return fmt.Errorf("stopping netcore-connect: %w", err)
	}

	var md strings.Builder
	fmt.Fprintf(&md, "# netcore-bench outage %s\n\n", started.UTC().Format(time.RFC3339))
	fmt.Fprintf(&md, "`netcore-bench outage %s`: %s, the default pipeline; the stand-in for Meiro Events answered 503 for %s while %s posted, then came back.\n\n",
		strings.Join(args, " "), cpuModel(), *down, describeCell(*concurrency, *size))
	fmt.Fprintln(&md, "| time | events waiting on disk | heap and stacks (RssAnon) | RSS with the queue file's mapped pages |")
	fmt.Fprintln(&md, "|---:|---:|---:|---:|")
	for _, s := range samples {
		fmt.Fprintf(&md, "| %.0f s | %s | %.0f MiB | %.0f MiB |\n", s.at.Seconds(), thousands(int(s.backlog)), float64(s.anon)/(1<<20), float64(s.rss)/(1<<20))
	}
	fmt.Fprintf(&md, "\nWhile down: %s posts answered 200 (%s events), other answers %s, %d posts with no answer.\n",
		thousands(load.res.Posts), thousands(load.res.Events), formatStatuses(load.res.Non200), load.res.Errors)
	if st.Distinct > 0 {
		took := st.Last.Sub(back)
		fmt.Fprintf(&md, "Once back: %s of %s acknowledged events delivered (%s), %s of them more than once, in %.1f s (%s events/s).\n",
			thousands(st.Distinct), thousands(load.res.Events), outcome, thousands(st.Duplicates), took.Seconds(), thousands(int(float64(st.Distinct)/took.Seconds())))
	} else {
		fmt.Fprintf(&md, "Once back: nothing was delivered (%s).\n", outcome)
	}
	fmt.Fprintf(&md, "Heap and stacks at the end of the catch-up: %.0f MiB.\n", float64(endAnon)/(1<<20))
	fmt.Print(md.String())
	if err := os.WriteFile(*out, []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if st.Distinct < load.res.Events {
		return fmt.Errorf("only %d of %d acknowledged events were delivered (%s)", st.Distinct, load.res.Events, outcome)
	}
	return nil
}

// sampleOurs reads the backlog from ours's /metrics and its memory from /proc.
func sampleOurs(ctx context.Context, sys *launched, at time.Duration) (outageSample, error) {
	s := outageSample{at: at}
	var err error
	if s.backlog, err = metricValue(ctx, sys.adminURL+"/metrics", "netcore_queue_events"); err != nil {
		return s, err
	}
	if s.anon, err = anonRSS(sys.pid()); err != nil {
		return s, err
	}
	if s.rss, err = statusBytes(sys.pid(), "VmRSS"); err != nil {
		return s, err
	}
	return s, nil
}

// metricValue is the value of the first sample of a metric in a Prometheus
// text exposition.
func metricValue(ctx context.Context, url, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", url, err)
	}
	defer resp.Body.Close()
	return findMetric(resp.Body, name)
}

func findMetric(r io.Reader, name string) (float64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		fields := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(fields) == 0 {
			return 0, fmt.Errorf("metric %s: no value in %q", name, line)
		}
		return strconv.ParseFloat(fields[0], 64)
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no metric %s", name)
}
