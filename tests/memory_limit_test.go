package tests

import (
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/testing/testkit"
)

// containerLimit is the memory limit the default settings are held to: a
// container of 512 MiB, as an operator would give a small receiver.
const containerLimit = 512 << 20

// assertAliveWithinLimit fails t if p has exited or the kernel killed a
// process in limit (if any) for passing it.
func assertAliveWithinLimit(t testing.TB, p *process, limit *testkit.MemoryLimit, when string) {
	t.Helper()
	select {
	case <-p.exited:
		t.Fatalf("netcore-connect exited %s:\n%s", when, p.stderr.String())
	default:
	}
	if limit == nil {
		return
	}
	kills, err := limit.OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	if kills != 0 {
		t.Fatalf("%d out-of-memory kills in the %d MiB cgroup %s", kills, containerLimit>>20, when)
	}
}

// runtimeCost says how many garbage collections and CPU seconds p has
// taken: a GOMEMLIMIT below what the budgets let the heap hold shows as
// collections by the hundred.
func runtimeCost(t testing.TB, p *process) string {
	metrics := scrape(t, p)
	return fmt.Sprintf("%.0f GCs, %.1f CPU-s", sumMetric(metrics, "go_gc_duration_seconds_count", ""), sumMetric(metrics, "process_cpu_seconds_total", ""))
}

// deliverAfterRestart starts netcore-connect again on the queue in dir,
// inside limit (nil: none), with Meiro Events up, and waits until want
// distinct events have arrived, failing t if the process dies first or any
// arrives twice. It returns the new process's peak RSS in KiB.
func deliverAfterRestart(t testing.TB, m *meiro, dir string, limit *testkit.MemoryLimit, want int) int {
	t.Helper()
	var mu sync.Mutex
	seen := make(map[string]bool, want)
	repeats := 0
	eventID := regexp.MustCompile(`"event_id":"([0-9a-f]+)"`)
	m.discardBodies()
	m.setRespond(func(body []byte) int {
		id := eventID.FindSubmatch(body)
		mu.Lock()
		defer mu.Unlock()
		if id == nil || seen[string(id[1])] {
			repeats++
		} else {
			seen[string(id[1])] = true
		}
		return http.StatusOK
	})
	start := time.Now()
	p := startProcess(t, options{env: m.env(), dir: dir, memory: limit})
	distinct := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen)
	}
	waitFor(t, fmt.Sprintf("%d events delivered after the restart", want), 5*time.Minute, func() bool {
		select {
		case <-p.exited:
			t.Fatalf("netcore-connect died after the restart with %d of %d events delivered:\n%s", distinct(), want, p.stderr.String())
		default:
		}
		return distinct() >= want
	})
	assertAliveWithinLimit(t, p, limit, "while the backlog was delivered after a restart")
	peak := peakRSSKiB(t, p.cmd.Process.Pid)
	took := time.Since(start)
	waitQuiet(t, p, m)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("after the restart: %d events delivered in %s, peak RSS %d MiB, %s", len(seen), took.Round(time.Second), peak>>10, runtimeCost(t, p))
	if len(seen) != want || repeats != 0 {
		t.Errorf("Meiro Events got %d distinct events of %d acknowledged, and %d sent again or unknown", len(seen), want, repeats)
	}
	return peak
}
