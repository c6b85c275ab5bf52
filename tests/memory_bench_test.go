package tests

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/netcore-connect/netcore-connect/bench/loadgen"
)

// BenchmarkPeakRSS measures netcore-connect's peak resident memory (VmHWM,
// heap and the queue file's mapped pages together) with its default
// settings, in the three cases where an outside test found memory bounded
// by counts instead of bytes. BENCHMARKS.md holds the figures; run it as
//
//	go test ./tests/ -run '^$' -bench PeakRSS -benchtime 1x
//
// Each case is reported as peak-RSS-MiB, GCs and CPU-s (of the process the
// case is about) and, for the restarts, the backlog it started on.
func BenchmarkPeakRSS(b *testing.B) {
	b.Run("ingest-100-posts-of-9.7MB", func(b *testing.B) {
		for range b.N {
			m := newMeiro(b)
			m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
			p := startProcess(b, options{env: m.env()})
			storeBigPosts(b, p, bigPosts)
			reportPeakRSS(b, p)
			p.stop(b)
		}
	})
	b.Run("restart-on-100-posts-of-9.7MB", func(b *testing.B) {
		for range b.N {
			benchmarkRestart(b, func(p *process) { storeBigPosts(b, p, bigPosts) })
		}
	})
	b.Run("restart-on-10-event-posts", func(b *testing.B) {
		for range b.N {
			benchmarkRestart(b, func(p *process) {
				r, err := loadgen.Run(context.Background(), loadgen.Config{URL: p.webhook, Concurrency: 64, EventsPerPost: 10, Duration: 60 * time.Second})
				if err != nil || r.Posts == 0 {
					b.Fatalf("filling the queue: %d posts stored, %v", r.Posts, err)
				}
			})
		}
	})
}

// benchmarkRestart fills a queue with fill while Meiro Events is down, then
// restarts on it with Meiro Events up and reports the second process's peak
// once every event is delivered.
func benchmarkRestart(b *testing.B, fill func(p *process)) {
	m := newMeiro(b)
	m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
	dir := b.TempDir()
	p := startProcess(b, options{env: m.env(), dir: dir})
	fill(p)
	backlog := sumMetric(scrape(b, p), "netcore_queue_bytes", "")
	p.stop(b)

	m.setRespond(func([]byte) int { return http.StatusOK })
	b.ResetTimer()
	p = startProcess(b, options{env: m.env(), dir: dir})
	waitQuiet(b, p, m)
	b.StopTimer()
	reportPeakRSS(b, p)
	b.ReportMetric(backlog/(1<<20), "backlog-MiB")
	p.stop(b)
}

// reportPeakRSS reports p's peak resident memory, and the garbage
// collections and CPU time it has taken so far: a GOMEMLIMIT below what the
// budgets let the heap hold shows as many collections and much CPU.
func reportPeakRSS(b *testing.B, p *process) {
	b.ReportMetric(float64(peakRSSKiB(b, p.cmd.Process.Pid))/1024, "peak-RSS-MiB")
	metrics := scrape(b, p)
	b.ReportMetric(sumMetric(metrics, "go_gc_duration_seconds_count", ""), "GCs")
	b.ReportMetric(sumMetric(metrics, "process_cpu_seconds_total", ""), "CPU-s")
}
