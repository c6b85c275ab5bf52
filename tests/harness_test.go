// Package tests drives the built netcore-connect binary over real HTTP on
// loopback: Netcore's side is an HTTP client posting the shared samples,
// Meiro Events is a real HTTP server in the test.
package tests

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/testing/testkit"
)

// binary is the netcore-connect built once for all tests.
var binary string

// builtVersion is stamped into the binary, to check --version.
const builtVersion = "1.2.3-test"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "netcore-connect-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "netcore-connect")
	build := exec.Command("go", "build", "-ldflags", "-X main.version="+builtVersion, "-o", binary, "../cmd/netcore-connect")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building netcore-connect:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is the repository, one level above this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

func freeAddr(t testing.TB) string {
	return testkit.FreeAddr(t)
}

// process is a running netcore-connect.
type process struct {
	cmd            *exec.Cmd
	stdout, stderr *testkit.SyncBuffer
	webhook        string // the URL Netcore posts to
	admin          string // the admin server's base URL
	dataDir        string // NETCORE_DATA_DIR
	exited         chan struct{}
}

// options say how to start netcore-connect.
type options struct {
	env    map[string]string
	config string // empty: the embedded default pipeline
	dir    string // working folder, holding data/; empty: a new one
	// cwd is the working folder when it must not be dir: a FUSE mount
	// served by this test process. A child forked to run the binary
	// changes to its working folder before it execs, and a FUSE request
	// made from there can wait for ever on the process that forked it (it
	// hung a CI run once, the fork stuck in the kernel).
	cwd  string
	set  []string
	args []string // the whole command line instead of run, set and config
	// memory, when set, is the memory cgroup the process runs in.
	memory *testkit.MemoryLimit
}

// startProcess runs `netcore-connect run` on fresh loopback ports and waits
// until the admin server says it is ready.
func startProcess(t testing.TB, o options) *process {
	t.Helper()
	webhookAddr, adminAddr := freeAddr(t), freeAddr(t)
	p := &process{
		stdout:  &testkit.SyncBuffer{},
		stderr:  &testkit.SyncBuffer{},
		webhook: "http://" + webhookAddr + "/netcore",
		admin:   "http://" + adminAddr,
		exited:  make(chan struct{}),
	}
	args := o.args
	if args == nil {
		args = []string{"run"}
		for _, s := range o.set {
			args = append(args, "--set", s)
		}
		if o.config != "" {
			args = append(args, o.config)
		}
	}
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	p.dataDir = filepath.Join(o.dir, "data")
	p.cmd = exec.Command(binary, args...)
	if o.memory != nil {
		p.cmd = o.memory.Command(binary, args...)
	}
	p.cmd.Dir = o.dir
	if o.cwd != "" {
		p.cmd.Dir = o.cwd
	}
	p.launch(t, webhookAddr, adminAddr, o.env, func() string { return "netcore-connect stderr:\n" + p.stderr.String() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			t.Fatalf("netcore-connect exited at start:\n%s", p.stderr.String())
		default:
		}
		if p.ready(args[0] == "streams") {
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("netcore-connect not ready after 20s:\n%s%s", p.stdout.String(), p.stderr.String())
	return nil
}

// launch starts p.cmd with its output in p's buffers, its webhook, admin
// server and data directory set, and env; when the test ends it stops it,
// and if the test failed logs what failed returns.
func (p *process) launch(t testing.TB, webhookAddr, adminAddr string, env map[string]string, failed func() string) {
	t.Helper()
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.Env = append(os.Environ(), "NETCORE_ADDRESS="+webhookAddr, "NETCORE_DATA_DIR="+p.dataDir, "NETCORE_ADMIN_ADDRESS="+adminAddr)
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Log(failed())
		}
	})
}

// ready says whether the admin server reports ready. In streams mode /ready
// answers 200 before any stream runs, so the webhook must answer too.
func (p *process) ready(streams bool) bool {
	resp, err := http.Get(p.admin + "/ready")
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	if streams {
		if resp, err = http.Get(p.webhook); err != nil {
			return false
		}
		resp.Body.Close()
	}
	return true
}

// kill ends the process with SIGKILL: no chance to flush or clean up.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// stop ends the process with SIGTERM, as an orchestrator would.
func (p *process) stop(t testing.TB) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Error("netcore-connect did not stop within 30s of SIGTERM")
	}
}

// meiro is a stand-in for Meiro Events: a real HTTP server on loopback that
// records every event posted to it and answers with what answer says.
type meiro struct {
	*httptest.Server
	mu       sync.Mutex
	events   [][]byte
	accepted int // events answered 2xx, kept in events or not (see countOnly)
	attempts int
	answer   func(body []byte) (status int, text string)
	tls      bool
	// countOnly counts the events accepted without keeping them: for a
	// backlog of hundreds of MB that the test process need not hold twice.
	countOnly bool
}

// resetConnection, returned by respond, makes Meiro Events drop the
// connection without an answer.
const resetConnection = -1

func newMeiro(t testing.TB) *meiro {
	return startMeiro(t, false)
}

// newMeiroTLS serves over HTTPS with a certificate of its own; its CA is
// written to a file for the pipeline to trust.
func newMeiroTLS(t testing.TB) (*meiro, string) {
	m := startMeiro(t, true)
	caFile := filepath.Join(t.TempDir(), "meiro-ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: m.Certificate().Raw})
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	return m, caFile
}

func startMeiro(t testing.TB, useTLS bool) *meiro {
	t.Helper()
	m := &meiro{answer: func([]byte) (int, string) { return http.StatusOK, "" }, tls: useTLS}
	m.Server = httptest.NewUnstartedServer(nil)
	m.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		m.mu.Lock()
		m.attempts++
		answer := m.answer
		m.mu.Unlock()
		status, text := answer(body) // outside the lock: it may take its time
		if status == resetConnection {
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				if tcp, ok := conn.(*net.TCPConn); ok {
					_ = tcp.SetLinger(0) // RST, not FIN
				}
				conn.Close()
			}
			return
		}
		if status < 300 {
			m.mu.Lock()
			m.accepted++
			if !m.countOnly {
				m.events = append(m.events, body)
			}
			m.mu.Unlock()
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, text)
	})
	if m.tls {
		m.Server.StartTLS()
	} else {
		m.Server.Start()
	}
	t.Cleanup(m.Close)
	return m
}

// env points the default pipeline at this Meiro Events.
func (m *meiro) env() map[string]string {
	return map[string]string{"MEIRO_EVENTS_URL": m.URL + "/collect"}
}

func (m *meiro) setRespond(fn func(body []byte) int) {
	m.setAnswer(func(body []byte) (int, string) { return fn(body), "" })
}

// setAnswer makes Meiro Events answer with a status and a body of its own,
// as an API that explains (or echoes) what it refused.
func (m *meiro) setAnswer(fn func(body []byte) (status int, text string)) {
	m.mu.Lock()
	m.answer = fn
	m.mu.Unlock()
}

// discardBodies makes Meiro Events count the events it accepts without
// keeping them (received is empty then).
func (m *meiro) discardBodies() {
	m.mu.Lock()
	m.countOnly = true
	m.mu.Unlock()
}

// attemptCount is how many requests Meiro Events has had.
func (m *meiro) attemptCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.attempts
}

// waitQuiet waits until p's queue holds nothing and Meiro Events has had no
// request for a second: only then can a count see a repeat that comes late.
func waitQuiet(t testing.TB, p *process, m *meiro) {
	t.Helper()
	last, changed := m.attemptCount(), time.Now()
	waitFor(t, "an empty queue and Meiro Events quiet for 1s", 60*time.Second, func() bool {
		if n := m.attemptCount(); n != last {
			last, changed = n, time.Now()
			return false
		}
		return time.Since(changed) >= time.Second && sumMetric(scrape(t, p), "netcore_queue_events", "") == 0
	})
}

// receivedCount is how many events Meiro Events accepted, without copying
// them: for polling while a benchmark runs.
func (m *meiro) receivedCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.accepted
}

func (m *meiro) received() [][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([][]byte(nil), m.events...)
}

// post sends body to the webhook and returns the status and answer.
func post(t testing.TB, req *http.Request) (int, string) {
	t.Helper()
	status, answer, _ := send(t, nil, req)
	return status, answer
}

// send sends req with client (http.DefaultClient when nil), and returns the
// status, the body and the X-Request-Id of the answer.
func send(t testing.TB, client *http.Client, req *http.Request) (status int, answer, requestID string) {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("X-Request-Id")
}

func newPost(t testing.TB, target, contentType string, body io.Reader) *http.Request {
	t.Helper()
	return newRequest(t, http.MethodPost, target, contentType, body)
}

func newRequest(t testing.TB, method, target, contentType string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

// decodeExact decodes JSON keeping every number as the text it was sent as.
func decodeExact(t testing.TB, b []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v map[string]any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return v
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// samplesDir holds realistic Netcore posts: NAME.json is the data field,
// NAME.form the exact form body that carries it.
const samplesDir = "testdata/samples"

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitQueued waits until the queue reports n events waiting (its gauge is
// updated once a second).
func waitQueued(t testing.TB, p *process, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("netcore_queue_events = %d", n), 10*time.Second, func() bool {
		return int(sumMetric(scrape(t, p), "netcore_queue_events", "")) == n
	})
}
