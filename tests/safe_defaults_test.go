package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/testing/testkit"
)

// plantedPipeline is a pipeline an attacker would plant: it runs nothing of
// ours and writes a marker file, so that the test sees whether it ran.
func plantedPipeline(marker string) []byte {
	return fmt.Appendf(nil, `input:
  generate:
    count: 1
    interval: ""
    mapping: 'root = "planted pipeline ran"'
output:
  file:
    path: %s
    codec: lines
`, marker)
}

// TestPlantedPipelineNeverRuns plants a pipeline at every path that
// `netcore-connect run` with no file could read: the shared temp-directory
// path earlier versions wrote the default to (and read back if it was
// there), and Benthos's own default config paths when they can be written.
// The default pipeline must run instead, from a private directory.
func TestPlantedPipelineNeverRuns(t *testing.T) {
	tmp := t.TempDir()
	marker := filepath.Join(t.TempDir(), "planted-ran")
	planted := plantedPipeline(marker)
	defaultYAML := readFile(t, filepath.Join(repoRoot(t), "config", "netcore-to-meiro.yaml"))
	sum := sha256.Sum256(defaultYAML)
	paths := []string{
		filepath.Join(tmp, "netcore-connect", "netcore-to-meiro-"+hex.EncodeToString(sum[:6])+".yaml"),
		filepath.Join(tmp, "netcore-connect", "netcore-to-meiro.yaml"),
	}
	for _, p := range []string{"/benthos.yaml", "/etc/benthos/config.yaml", "/etc/benthos.yaml"} {
		if _, err := os.Stat(p); err == nil {
			continue // not ours to overwrite
		}
		paths = append(paths, p)
	}
	for _, p := range paths {
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			t.Logf("cannot plant %s: %v", p, err)
			continue
		}
		if err := os.WriteFile(p, planted, 0o666); err != nil {
			t.Logf("cannot plant %s: %v", p, err)
			continue
		}
		t.Cleanup(func() { os.Remove(p) })
		t.Logf("planted %s", p)
	}

	m := newMeiro(t)
	env := m.env()
	env["TMPDIR"] = tmp
	p := startProcess(t, options{env: env})
	want := postSamples(t, p)
	waitFor(t, "the default pipeline to deliver the samples", 15*time.Second, func() bool { return len(m.received()) >= len(want) })
	if _, err := os.Stat(marker); err == nil {
		t.Fatalf("a planted pipeline ran:\n%s", readFile(t, marker))
	}
	used := regexp.MustCompile(`path=(\S+netcore-to-meiro\.yaml)`).FindStringSubmatch(p.stdout.String() + p.stderr.String())
	if used == nil {
		t.Fatalf("the log does not say which config ran:\n%s", p.stdout.String())
	}
	dir := filepath.Dir(used[1])
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatalf("the default config's directory %s: %v", dir, err)
	}
	if info.Mode().Perm() != 0o700 || filepath.Dir(dir) != tmp || filepath.Base(dir) == "netcore-connect" {
		t.Errorf("the default config ran from %s (mode %v), want a fresh private directory in TMPDIR", dir, info.Mode().Perm())
	}
	p.stop(t)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the private directory %s is still there after the process stopped", dir)
	}
}

// peakRSSKiB is the most resident memory a process has had (VmHWM).
func peakRSSKiB(t testing.TB, pid int) int {
	t.Helper()
	status := readFile(t, fmt.Sprintf("/proc/%d/status", pid))
	m := regexp.MustCompile(`(?m)^VmHWM:\s+(\d+) kB`).FindSubmatch(status)
	if m == nil {
		t.Fatal("no VmHWM in /proc status")
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestBodyBudgetBoundsMemoryOfUnfinishedBodies opens 250 connections that
// each send all but the last byte of a 10 MB body and then hold it: without
// a budget that took the process to 2.6 GB. With the default budget
// (256 MiB) the posts past it are answered 503 before their bodies are read,
// and the peak RSS stays under the budget plus what the process used before.
// Each body takes four times its length (what its post holds until it is
// stored), and big posts may not take the last eighth, kept for small ones:
// the budget is full with 5 bodies being read.
func TestBodyBudgetBoundsMemoryOfUnfinishedBodies(t *testing.T) {
	const (
		conns    = 250
		bodySize = 10_000_000
		budget   = 256 << 20
		fill     = (budget - budget/8) / (4 * bodySize)
	)
	m := newMeiro(t)
	p := startProcess(t, options{env: m.env(), set: []string{"input.netcore_webhook.max_in_flight=1024"}})
	base := peakRSSKiB(t, p.cmd.Process.Pid)
	addr := webhookAddr(p)
	chunk := bytes.Repeat([]byte("a"), 1<<20)

	var mu sync.Mutex
	statuses := map[string]int{}
	var wg sync.WaitGroup
	held := make(chan net.Conn, conns)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			fmt.Fprintf(conn, "POST /netcore HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", bodySize)
			answered := make(chan string, 1)
			go func() {
				b := make([]byte, 256)
				n, _ := conn.Read(b)
				answered <- string(b[:n])
			}()
			for sent := 0; sent < bodySize-1; {
				n, err := conn.Write(chunk[:min(len(chunk), bodySize-1-sent)])
				sent += n
				if err != nil {
					break // refused and closed by the server
				}
			}
			select {
			case a := <-answered:
				status := "no status line"
				if f := strings.Fields(a); len(f) > 1 {
					status = f[1]
					if status == "503" && !strings.Contains(a, "Retry-After") {
						status = "503 without Retry-After"
					}
				}
				mu.Lock()
				statuses[status]++
				mu.Unlock()
				conn.Close()
			case <-time.After(2 * time.Second):
				held <- conn // the server is reading it: hold it open
			}
		}()
	}
	wg.Wait()
	close(held)
	peak := peakRSSKiB(t, p.cmd.Process.Pid)
	holding := 0
	for conn := range held {
		holding++
		conn.Close()
	}
	t.Logf("base RSS %d MiB, peak %d MiB; %d connections held in reading, answers %v", base>>10, peak>>10, holding, statuses)
	if statuses["503"] < conns/2 || len(statuses) != 1 {
		t.Errorf("answers %v: want most posts refused with 503 and Retry-After, and nothing else", statuses)
	}
	if holding < fill {
		t.Fatalf("only %d bodies were being read: the premise (the budget filled with unfinished bodies) did not happen", holding)
	}
	// Besides the bodies, each of the 250 connections costs the server a
	// goroutine and its buffers, well under 128 KiB: 32 MiB for all of them.
	const perConnections = 32 << 10
	if limit := base + budget>>10 + perConnections; peak > limit {
		t.Errorf("peak RSS %d MiB is over the body budget plus the base plus 250 connections (%d MiB)", peak>>10, limit>>10)
	}
}

// TestRefusalsAreLoggedSparinglyAndCloseTheConnection sends 1,000 requests
// from an address that is not allowed: every one is answered 403 and
// counted, the connection is closed after each answer, and the log holds a
// line per client every 10 s instead of a line per request.
func TestRefusalsAreLoggedSparinglyAndCloseTheConnection(t *testing.T) {
	const requests = 1000
	m := newMeiro(t)
	env := m.env()
	env["NETCORE_ALLOWED_IPS"] = "127.0.0.2/32" // the test posts from 127.0.0.1
	p := startProcess(t, options{env: env})
	start := time.Now()
	reused := 0
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if info.Reused {
			reused++
		}
	}}
	for i := range requests {
		req := newPost(t, p.webhook, "application/json", strings.NewReader(`{"p":[{"a":1}]}`))
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		if status, answer := post(t, req); status != http.StatusForbidden {
			t.Fatalf("request %d: %d %s, want 403", i, status, answer)
		}
	}
	elapsed := time.Since(start)
	if reused != 0 {
		t.Errorf("%d of %d refused requests reused a kept-alive connection, want every connection closed after its 403", reused, requests)
	}
	if n := sumMetric(scrape(t, p), "netcore_posts_total", `status="403"`); n != requests {
		t.Errorf("netcore_posts_total{status=403} = %v, want %d", n, requests)
	}
	lines := strings.Count(p.stdout.String(), "Netcore request refused")
	allowed := 1 + int(elapsed/(10*time.Second))
	t.Logf("%d refusals in %s: %d log lines", requests, elapsed.Round(time.Millisecond), lines)
	if lines < 1 || lines > allowed {
		t.Errorf("%d log lines for %d refusals in %s, want 1 to %d", lines, requests, elapsed, allowed)
	}
}

// TestBadEnvironmentStopsTheStart starts the default pipeline with one bad
// variable at a time: each must stop the start, non-zero, with an error
// that names the variable, its value and what it takes.
func TestBadEnvironmentStopsTheStart(t *testing.T) {
	cases := []struct{ name, value, allowed string }{
		{"MEIRO_EVENTS_URL", "not a url", "http:// or https:// URL"},
		{"MEIRO_EVENTS_URL", "ftp://x", "http:// or https:// URL"},
		{"MEIRO_BATCH_SIZE", "0", "whole number from 1 to 10000"},
		{"MEIRO_BATCH_SIZE", "abc", "whole number from 1 to 10000"},
		{"MEIRO_TIMEOUT", "10", "duration from 1s to 45s"},
		{"NETCORE_LOG_LEVEL", "LOUD", "INFO"},
		{"NETCORE_ALLOWED_IPS", "10.0.0.0/33", "IP addresses and CIDR prefixes"},
		{"NETCORE_ADDRESS", "8080", "host:port"},
		{"NETCORE_TIMEZONE", "Mars/Olympus", "IANA time zone"},
		{"NETCORE_ADMIN_ADDRESS", "localhost", "host:port"},
		{"NETCORE_INSPECT_MASK", "identity,custom_params..user_email", "field names or dotted paths"},
		{"NETCORE_INSPECT_MASK", " , ", "field names or dotted paths"},
	}
	for _, c := range cases {
		t.Run(c.name+"="+c.value, func(t *testing.T) {
			cmd := exec.Command(binary, "run")
			cmd.Dir = t.TempDir()
			cmd.Env = append(os.Environ(), "MEIRO_EVENTS_URL=http://127.0.0.1:1/collect", "NETCORE_ADDRESS=127.0.0.1:0",
				"NETCORE_ADMIN_ADDRESS=127.0.0.1:0", c.name+"="+c.value)
			out, err := runWithin(cmd, 20*time.Second)
			if err == nil {
				t.Fatalf("started and exited 0:\n%s", out)
			}
			if _, exited := err.(*exec.ExitError); !exited {
				t.Fatalf("did not stop by itself: %v\n%s", err, out)
			}
			for _, want := range []string{c.name, strconv.Quote(c.value), c.allowed} {
				if !strings.Contains(string(out), want) {
					t.Errorf("the error does not say %q:\n%s", want, out)
				}
			}
		})
	}
	t.Run("from an -e .env file", func(t *testing.T) {
		dir := t.TempDir()
		envFile := filepath.Join(dir, ".env")
		if err := os.WriteFile(envFile, []byte("MEIRO_BATCH_SIZE=abc\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(binary, "-e", envFile, "run")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "MEIRO_EVENTS_URL=http://127.0.0.1:1/collect", "NETCORE_ADDRESS=127.0.0.1:0", "NETCORE_ADMIN_ADDRESS=127.0.0.1:0")
		out, err := runWithin(cmd, 20*time.Second)
		if err == nil || !strings.Contains(string(out), `MEIRO_BATCH_SIZE="abc"`) {
			t.Errorf("a bad variable from an .env file: err %v, output:\n%s", err, out)
		}
	})
}

// TestAdminServerListensOnLoopbackByDefault starts the default pipeline with
// no admin address set: the admin server (metrics, /endpoints, /stats,
// /version) answers on 127.0.0.1:4195 and not on another address of the
// host. NETCORE_ADMIN_ADDRESS moves it.
func TestAdminServerListensOnLoopbackByDefault(t *testing.T) {
	const defaultAdmin = "127.0.0.1:4195"
	if ln, err := net.Listen("tcp", defaultAdmin); err != nil {
		t.Skipf("port 4195 is in use by another program here, so the default cannot be tried: %v", err)
	} else {
		ln.Close()
	}
	m := newMeiro(t)
	dir := t.TempDir()
	cmd := exec.Command(binary, "run")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "MEIRO_EVENTS_URL="+m.URL+"/collect", "NETCORE_ADDRESS="+freeAddr(t), "NETCORE_DATA_DIR="+filepath.Join(dir, "data"))
	var out testkit.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	waitFor(t, "the admin server on "+defaultAdmin, 20*time.Second, func() bool {
		resp, err := http.Get("http://" + defaultAdmin + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	// 127.0.0.2 is another address of this host: a server bound to every
	// address (0.0.0.0) would answer there too.
	other := &http.Client{Timeout: 2 * time.Second}
	if resp, err := other.Get("http://127.0.0.2:4195/metrics"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Errorf("the admin server answered on 127.0.0.2: %d %.100s", resp.StatusCode, body)
	}

	// Every other test starts the process with NETCORE_ADMIN_ADDRESS on a
	// free port (startProcess), and finds its admin server there.
}
