package tests

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/testing/testkit"
)

// long runs the long variant of the reliability suite:
//
//	go test ./tests -run 'Fault|Kill9Cycles|Overload|DiskFull' -long -timeout 60m
var long = flag.Bool("long", false, "run the long variants of the reliability tests")

// postMarked sends posts of 5 marked events and returns all markers.
func postMarked(t *testing.T, p *process, prefix string, posts int) []string {
	t.Helper()
	var all []string
	for i := range posts {
		body, markers := markedBody(fmt.Sprintf("%s-%d", prefix, i), 5)
		if status, err := postJSON(p.webhook, body); err != nil || status != http.StatusOK {
			t.Fatalf("post %d: %d %v", i, status, err)
		}
		all = append(all, markers...)
	}
	return all
}

func TestMeiroEventsFaultsLoseNothing(t *testing.T) {
	// failFor fails every request for d from the first one: a Meiro Events
	// that is rate limiting or restarting for a while. (Counted in time, not
	// in requests: how many requests fit in d is the queue's choice, and it
	// rightly sends few to a destination that keeps failing.)
	failFor := func(d time.Duration, status int) func([]byte) int {
		var once sync.Once
		var until time.Time
		return func([]byte) int {
			once.Do(func() { until = time.Now().Add(d) })
			if time.Now().Before(until) {
				return status
			}
			return http.StatusOK
		}
	}
	var slowCount atomic.Int64
	tests := []struct {
		name    string
		respond func([]byte) int
		tls     bool
	}{
		{"slow, 2s a request", func([]byte) int {
			if slowCount.Add(1) <= 20 {
				time.Sleep(2 * time.Second)
			}
			return http.StatusOK
		}, false},
		{"429 for a while", failFor(3*time.Second, http.StatusTooManyRequests), false},
		{"bursts of 5xx", func() func([]byte) int {
			var n atomic.Int64
			codes := []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}
			return func([]byte) int {
				if i := n.Add(1); i%10 < 4 {
					return codes[i%4]
				}
				return http.StatusOK
			}
		}(), false},
		{"connection resets", failFor(2*time.Second, resetConnection), false},
		{"over TLS", func([]byte) int { return http.StatusOK }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, set := newMeiro(t), []string(nil)
			if tt.tls {
				var caFile string
				m, caFile = newMeiroTLS(t)
				set = []string{"output.meiro_events.tls_root_cas_file=" + caFile}
			}
			m.setRespond(tt.respond)
			p := startProcess(t, options{env: m.env(), set: set})
			markers := postMarked(t, p, "fault", 6)
			waitDelivered(t, m, markers, 90*time.Second)
			waitQuiet(t, p, m)
			for mk, n := range markersAt(t, m) {
				if n != 1 {
					t.Errorf("%s accepted %d times, want once", mk, n)
				}
			}
		})
	}
}

func TestKill9CyclesLoseNothingAcknowledged(t *testing.T) {
	cycles := 3
	if *long {
		cycles = 20
	}
	m := newMeiro(t)
	dir := t.TempDir()
	var acked []string
	for c := range cycles {
		p := startProcess(t, options{env: m.env(), dir: dir})
		stop := make(chan struct{})
		result := load(p.webhook, fmt.Sprintf("cycle%d", c), 8, stop)
		// A moment that differs each cycle, so the kill lands in different places.
		time.Sleep(time.Duration(300+137*c%700) * time.Millisecond)
		p.kill()
		close(stop)
		cycleAcked := result()
		if len(cycleAcked) == 0 {
			t.Fatalf("cycle %d: no post was acknowledged before the kill: the premise did not happen", c)
		}
		acked = append(acked, cycleAcked...)
	}
	startProcess(t, options{env: m.env(), dir: dir})
	waitDelivered(t, m, acked, 120*time.Second)
	t.Logf("%d kill -9 cycles under load: %d acknowledged events, all delivered", cycles, len(acked))
}

// rssKiB is the resident memory of a process, from /proc.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func TestOverloadAnswersOnly200Or503AndDeliversAllAcknowledged(t *testing.T) {
	duration, senders := 8*time.Second, 256
	if *long {
		duration = time.Minute
	}
	m := newMeiro(t)
	m.setRespond(func([]byte) int { time.Sleep(5 * time.Millisecond); return http.StatusOK })
	p := startProcess(t, options{env: m.env(), set: []string{"input.netcore_webhook.max_in_flight=64"}})

	var mu sync.Mutex
	statuses := map[int]int{}
	var acked []string
	var missingRetryAfter atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(duration)
	var peakRSS int
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 30 * time.Second}
			for n := 0; time.Now().Before(deadline); n++ {
				body, markers := markedBody(fmt.Sprintf("over-%d-%d", s, n), 10)
				resp, err := client.Post(p.webhook, "application/json", strings.NewReader(string(body)))
				if err != nil {
					mu.Lock()
					statuses[0]++
					mu.Unlock()
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
					missingRetryAfter.Add(1)
				}
				mu.Lock()
				statuses[resp.StatusCode]++
				if resp.StatusCode == http.StatusOK {
					acked = append(acked, markers...)
				}
				mu.Unlock()
			}
		}()
	}
	for time.Now().Before(deadline) {
		peakRSS = max(peakRSS, rssKiB(t, p.cmd.Process.Pid))
		time.Sleep(200 * time.Millisecond)
	}
	wg.Wait()
	for status := range statuses {
		if status != http.StatusOK && status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable {
			t.Errorf("answers %v: want only 200, 429 and 503 (0 = connection error)", statuses)
			break
		}
	}
	if n := missingRetryAfter.Load(); n > 0 {
		t.Errorf("%d answers of 503 without Retry-After", n)
	}
	if peakRSS > 300*1024 {
		t.Errorf("peak RSS %d MiB, want at most 300 MiB", peakRSS/1024)
	}
	waitDelivered(t, m, acked, 180*time.Second)
	t.Logf("%d senders for %s: answers %v, peak RSS %d MiB, %d acknowledged events all delivered",
		senders, duration, statuses, peakRSS/1024, len(acked))
}

// A full disk gives 503, never a 200 for events that are not stored, and
// posting works again once there is room. It needs root to mount a small
// tmpfs; elsewhere it is skipped.
func TestDiskFullAnswers503AndRecovers(t *testing.T) {
	dir := t.TempDir()
	mnt := filepath.Join(dir, "small-disk")
	if err := os.Mkdir(mnt, 0o750); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
		testkit.NeedsOrSkip(t, "cannot mount a small tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() })

	m := newMeiro(t)
	m.setRespond(func([]byte) int { return http.StatusServiceUnavailable }) // events pile up
	p := startProcess(t, options{env: m.env(), dir: mnt})
	// Fill the disk around the queue.
	filler := filepath.Join(mnt, "filler")
	_ = os.WriteFile(filler, make([]byte, 3<<20), 0o600)

	var acked []string
	got503 := false
	for i := 0; i < 4000 && !got503; i++ {
		body, markers := markedBody(fmt.Sprintf("full-%d", i), 10)
		status, err := postJSON(p.webhook, body)
		switch {
		case err != nil:
			t.Fatalf("post %d: %v", i, err)
		case status == http.StatusOK:
			acked = append(acked, markers...)
		case status == http.StatusServiceUnavailable:
			got503 = true
		default:
			t.Fatalf("post %d on a full disk: %d, want 200 or 503", i, status)
		}
	}
	if !got503 {
		t.Fatal("the disk never filled up")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	body, markers := markedBody("after-full", 10)
	if status, err := postJSON(p.webhook, body); err != nil || status != http.StatusOK {
		t.Fatalf("with room again: %d %v, want 200", status, err)
	}
	acked = append(acked, markers...)
	m.setRespond(func([]byte) int { return http.StatusOK })
	waitDelivered(t, m, acked, 60*time.Second)
	t.Logf("disk full after %d acknowledged events: 503; room again: 200; all delivered", len(acked)-10)
}
