package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// markedBody is the body of a post of n events, each carrying a unique "marker" field.
func markedBody(prefix string, n int) ([]byte, []string) {
	var events, markers []string
	for i := range n {
		m := fmt.Sprintf("%s-%d", prefix, i)
		markers = append(markers, m)
		events = append(events, fmt.Sprintf(`{"marker":%q,"event_params":{"ts":240301101500,"big":12345678901234567890}}`, m))
	}
	return []byte(`{"load":[` + strings.Join(events, ",") + `]}`), markers
}

// markersAt lists how often Meiro Events accepted each marker.
func markersAt(t testing.TB, m *meiro) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, body := range m.received() {
		var ev struct {
			Marker string `json:"marker"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatalf("not JSON at Meiro Events: %s", body)
		}
		out[ev.Marker]++
	}
	return out
}

func postJSON(target string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// load posts marked posts from several senders until stop is closed, and
// returns the markers of every post answered 200.
func load(target, prefix string, senders int, stop <-chan struct{}) func() []string {
	acked, _ := loadCounting(target, prefix, senders, stop)
	return acked
}

// answers counts the answers load got, by status (0: none came).
type answers struct {
	mu sync.Mutex
	n  map[int]int
}

func (a *answers) add(status int) {
	a.mu.Lock()
	a.n[status]++
	a.mu.Unlock()
}

// of is how many posts were answered status.
func (a *answers) of(status int) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n[status]
}

// loadCounting is load, counting the answers too.
func loadCounting(target, prefix string, senders int, stop <-chan struct{}) (func() []string, *answers) {
	got := &answers{n: map[int]int{}}
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	var n atomic.Int64
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				body, markers := markedBody(fmt.Sprintf("%s-%d-%d", prefix, s, n.Add(1)), 5)
				status, err := postJSON(target, body)
				got.add(status)
				if err == nil && status == http.StatusOK {
					mu.Lock()
					acked = append(acked, markers...)
					mu.Unlock()
				} else if err != nil {
					time.Sleep(20 * time.Millisecond) // the receiver is gone: no busy loop
				}
			}
		}()
	}
	return func() []string {
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return acked
	}, got
}

func waitDelivered(t testing.TB, m *meiro, markers []string, timeout time.Duration) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d acknowledged events at Meiro Events", len(markers)), timeout, func() bool {
		got := markersAt(t, m)
		for _, mk := range markers {
			if got[mk] == 0 {
				return false
			}
		}
		return true
	})
}

func TestEventsWaitOnDiskWhileMeiroEventsIsDown(t *testing.T) {
	m := newMeiro(t)
	m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
	p := startProcess(t, options{env: m.env()})

	var all []string
	for i := range 20 {
		body, markers := markedBody(fmt.Sprintf("down-%d", i), 5)
		start := time.Now()
		status, err := postJSON(p.webhook, body)
		if err != nil || status != http.StatusOK {
			t.Fatalf("post %d: %v %d, want 200 while Meiro Events is down", i, err, status)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("post %d took %s to be acknowledged", i, d)
		}
		all = append(all, markers...)
	}
	outage := 2 * time.Second
	if *long {
		outage = 3 * time.Minute
	}
	time.Sleep(outage)
	if len(m.received()) != 0 {
		t.Fatal("events accepted while Meiro Events was down")
	}
	m.setRespond(func([]byte) int { return http.StatusOK })
	waitDelivered(t, m, all, 60*time.Second)
}

func TestKill9UnderLoadLosesNothingAcknowledged(t *testing.T) {
	m := newMeiro(t)
	dir := t.TempDir()
	p := startProcess(t, options{env: m.env(), dir: dir})

	stop := make(chan struct{})
	acked := load(p.webhook, "kill", 8, stop)
	time.Sleep(1500 * time.Millisecond)
	p.kill() // in the middle of posts, commits and deliveries
	time.Sleep(100 * time.Millisecond)
	close(stop)
	markers := acked()
	if len(markers) == 0 {
		t.Fatal("no post was acknowledged before the kill")
	}

	startProcess(t, options{env: m.env(), dir: dir})
	waitDelivered(t, m, markers, 60*time.Second)
	t.Logf("%d acknowledged events, all delivered after kill -9 and restart", len(markers))
}

func TestSIGTERMUnderLoadThenRestartLosesNothing(t *testing.T) {
	m := newMeiro(t)
	m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
	dir := t.TempDir()
	p := startProcess(t, options{env: m.env(), dir: dir})

	stop := make(chan struct{})
	acked := load(p.webhook, "term", 8, stop)
	time.Sleep(time.Second)
	p.stop(t)
	close(stop)
	markers := acked()
	if len(markers) == 0 {
		t.Fatal("no post was acknowledged before SIGTERM")
	}
	m.setRespond(func([]byte) int { return http.StatusOK })
	startProcess(t, options{env: m.env(), dir: dir})
	waitDelivered(t, m, markers, 60*time.Second)
}

func TestRepeatedPostIsDeliveredOnceAcrossARestart(t *testing.T) {
	m := newMeiro(t)
	dir := t.TempDir()
	body, markers := markedBody("repeat", 3)

	p := startProcess(t, options{env: m.env(), dir: dir})
	for range 2 {
		if status, err := postJSON(p.webhook, body); err != nil || status != http.StatusOK {
			t.Fatalf("post: %v %d", err, status)
		}
	}
	waitDelivered(t, m, markers, 10*time.Second)
	p.stop(t)

	p = startProcess(t, options{env: m.env(), dir: dir})
	if status, err := postJSON(p.webhook, body); err != nil || status != http.StatusOK {
		t.Fatalf("post after restart: %v %d, want 200", err, status)
	}
	waitQuiet(t, p, m)
	for mk, n := range markersAt(t, m) {
		if n != 1 {
			t.Errorf("%s delivered %d times, want once", mk, n)
		}
	}
}

func TestFullQueueAnswers503WithRetryAfter(t *testing.T) {
	m := newMeiro(t)
	m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
	p := startProcess(t, options{env: m.env(), set: []string{"buffer.disk_queue.max_events=5"}})
	body, _ := markedBody("fill", 5)
	if status, err := postJSON(p.webhook, body); err != nil || status != http.StatusOK {
		t.Fatalf("filling post: %v %d, want 200", err, status)
	}
	body, _ = markedBody("over", 1)
	req := newPost(t, p.webhook, "application/json", bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("got %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestDamagedRecordIsMovedAsideAndTheRestDelivered(t *testing.T) {
	m := newMeiro(t)
	m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
	dir := t.TempDir()
	p := startProcess(t, options{env: m.env(), dir: dir})
	body := []byte(`{"p":[{"marker":"intact-1"},{"marker":"DAMAGE-ME"},{"marker":"intact-2"}]}`)
	if status, err := postJSON(p.webhook, body); err != nil || status != http.StatusOK {
		t.Fatalf("post: %v %d", err, status)
	}
	p.stop(t)

	// Flip one byte inside the stored event, as a failing disk would.
	queueFile := filepath.Join(p.dataDir, "queue", "events.db")
	raw, err := os.ReadFile(queueFile)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(raw, []byte("DAMAGE-ME")) == 0 {
		t.Fatal("the event is not in the queue file")
	}
	if err := os.WriteFile(queueFile, bytes.ReplaceAll(raw, []byte("DAMAGE-ME"), []byte("DAMAGE-YE")), 0o600); err != nil {
		t.Fatal(err)
	}

	m.setRespond(func([]byte) int { return http.StatusOK })
	p = startProcess(t, options{env: m.env(), dir: dir})
	waitDelivered(t, m, []string{"intact-1", "intact-2"}, 30*time.Second)
	waitQuiet(t, p, m)
	got := markersAt(t, m)
	if got["DAMAGE-ME"]+got["DAMAGE-YE"] != 0 {
		t.Error("the damaged event was delivered")
	}
	if logs := p.stderr.String() + p.stdout.String(); !strings.Contains(logs, "damaged") {
		t.Errorf("the damage was not logged:\n%s", logs)
	}
}

func TestUnopenableQueueFileStopsTheStart(t *testing.T) {
	m := newMeiro(t)
	dir := t.TempDir()
	queueFile := filepath.Join(dir, "data", "queue", "events.db")
	if err := os.MkdirAll(filepath.Dir(queueFile), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(queueFile, bytes.Repeat([]byte("not a database "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "run", "--set", "http.address="+freeAddr(t))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "MEIRO_EVENTS_URL="+m.URL, "NETCORE_ADDRESS="+freeAddr(t), "NETCORE_DATA_DIR="+filepath.Join(dir, "data"))
	done := make(chan struct{})
	var out []byte
	go func() { out, _ = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("netcore-connect kept running on a queue file it cannot open")
	}
	if cmd.ProcessState.Success() || !strings.Contains(string(out), queueFile) {
		t.Errorf("want a failed start naming %s, got:\n%s", queueFile, out)
	}
}

func TestRefusedEventsBecomeDeadLettersAndReplayOnce(t *testing.T) {
	m := newMeiro(t)
	m.setRespond(func(body []byte) int {
		if bytes.Contains(body, []byte(`"bad"`)) {
			return http.StatusBadRequest
		}
		return http.StatusOK
	})
	dir := t.TempDir()
	p := startProcess(t, options{env: m.env(), dir: dir})
	body := []byte(`{"p":[{"marker":"good-1"},{"marker":"bad-1","bad":true,"n":12345678901234567890123},{"marker":"good-2"},{"marker":"bad-2","bad":true}]}`)
	if status, err := postJSON(p.webhook, body); err != nil || status != http.StatusOK {
		t.Fatalf("post: %v %d", err, status)
	}
	waitDelivered(t, m, []string{"good-1", "good-2"}, 10*time.Second)
	deadDir := filepath.Join(p.dataDir, "dead-letter")
	waitFor(t, "two dead letters", 10*time.Second, func() bool { return countLines(t, deadDir) == 2 })
	p.stop(t)
	if lines := readLines(t, deadDir); !strings.Contains(lines, `"n":12345678901234567890123`) || !strings.Contains(lines, "response code (400)") {
		t.Errorf("dead letters lack the exact event or the reason:\n%s", lines)
	}

	// Meiro Events is fixed: replay sends the dead letters, and only once.
	m.setRespond(func([]byte) int { return http.StatusOK })
	for range 2 {
		cmd := exec.Command(binary, "run", "--set", "http.address="+freeAddr(t), filepath.Join(repoRoot(t), "config", "replay-dead-letters.yaml"))
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "MEIRO_EVENTS_URL="+m.URL, "NETCORE_DATA_DIR="+p.dataDir)
		if out, err := runWithin(cmd, 30*time.Second); err != nil {
			t.Fatalf("replay: %v\n%s", err, out)
		}
	}
	got := markersAt(t, m)
	for _, mk := range []string{"bad-1", "bad-2"} {
		if got[mk] != 1 {
			t.Errorf("%s delivered %d times by two replays, want once", mk, got[mk])
		}
	}
	if n := countLines(t, deadDir); n != 0 {
		t.Errorf("%d dead letters left after the replay", n)
	}
	for _, body := range m.received() {
		if bytes.Contains(body, []byte("bad-1")) && !bytes.Contains(body, []byte(`"n":12345678901234567890123`)) {
			t.Errorf("a replayed event changed: %s", body)
		}
	}
}

func runWithin(cmd *exec.Cmd, timeout time.Duration) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.Bytes(), err
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return out.Bytes(), fmt.Errorf("still running after %s", timeout)
	}
}

func readLines(t testing.TB, dir string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	var all strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
	}
	return all.String()
}

func countLines(t testing.TB, dir string) int {
	return strings.Count(readLines(t, dir), "\n")
}

// An outage with a crash in it: Meiro Events down, load, kill -9 in the
// middle, restart on the same data, Meiro Events back; every acknowledged
// event arrives, and a post sent twice arrives once.
func TestOutageKill9RestartRecovery(t *testing.T) {
	m := newMeiro(t)
	m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
	dir := t.TempDir()
	p := startProcess(t, options{env: m.env(), dir: dir})

	stop := make(chan struct{})
	acked := load(p.webhook, "outage", 8, stop)
	time.Sleep(1500 * time.Millisecond)
	p.kill()
	close(stop)
	markers := acked()
	if len(markers) == 0 {
		t.Fatal("no post was acknowledged before the kill: the premise did not happen")
	}

	p = startProcess(t, options{env: m.env(), dir: dir})
	stop = make(chan struct{})
	moreAcked := load(p.webhook, "after", 4, stop)
	time.Sleep(time.Second)
	close(stop)
	after := moreAcked()
	if len(after) == 0 {
		t.Fatal("no post was acknowledged after the restart: the premise did not happen")
	}
	markers = append(markers, after...)

	twice, twiceMarkers := markedBody("twice", 2)
	for range 2 {
		if status, err := postJSON(p.webhook, twice); err != nil || status != http.StatusOK {
			t.Fatalf("post: %v %d", err, status)
		}
	}
	m.setRespond(func([]byte) int { return http.StatusOK })
	waitDelivered(t, m, append(markers, twiceMarkers...), 60*time.Second)
	waitQuiet(t, p, m)
	got := markersAt(t, m)
	for _, mk := range twiceMarkers {
		if got[mk] != 1 {
			t.Errorf("%s delivered %d times, want once", mk, got[mk])
		}
	}
	t.Logf("%d acknowledged events delivered after an outage, kill -9 and restart", len(markers))
}
