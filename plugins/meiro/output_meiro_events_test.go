package meiro

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/stage"
)

// meiroStandIn answers each request with the status in its X-Answer header
// (200 without one), and records the bodies it accepted.
type meiroStandIn struct {
	*httptest.Server
	mu       sync.Mutex
	accepted []string
}

func newMeiroStandIn(t *testing.T) *meiroStandIn {
	m := &meiroStandIn{}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		status, _ := strconv.Atoi(r.Header.Get("X-Answer"))
		if status == 0 {
			status = http.StatusOK
		}
		if status < 300 {
			m.mu.Lock()
			m.accepted = append(m.accepted, string(body))
			m.mu.Unlock()
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(m.Close)
	return m
}

// sendThroughMeiroEvents runs one message through a stream whose output is
// meiro_events and returns what the output acknowledged (nil) or rejected.
func sendThroughMeiroEvents(t *testing.T, url, deadLetters string, status int) error {
	t.Helper()
	b := service.NewStreamBuilder()
	// The status Meiro Events should answer travels as a header, taken from
	// metadata.
	if err := b.AddOutputYAML(fmt.Sprintf(`
meiro_events:
  url: %s
  headers:
    X-Answer: ${! @answer }
  dead_letter_dir: %s
  retries: 0
`, url, deadLetters)); err != nil {
		t.Fatal(err)
	}
	produce, err := b.AddProducerFunc()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SetLoggerYAML("level: OFF"); err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() { _ = stream.Run(ctx) }()
	defer func() { _ = stream.StopWithin(5 * time.Second) }()
	msg := service.NewMessage(fmt.Appendf(nil, `{"event_id":"e%d"}`, status))
	msg.MetaSetMut("answer", strconv.Itoa(status))
	return produce(ctx, msg)
}

// TestRefusalsBecomeDeadLettersAndFailuresGoBack sends one event per answer
// through the template and its meiro_http. A refusal must be written as a
// dead letter and acknowledged; a failure must be rejected so that the queue
// tries again. The refusal is read from the text of meiro_http's error, so
// this test fails if that wording and the template's check part.
func TestRefusalsBecomeDeadLettersAndFailuresGoBack(t *testing.T) {
	m := newMeiroStandIn(t)
	for _, status := range []int{400, 409, 410, 413, 415, 422} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			dir := t.TempDir()
			if err := sendThroughMeiroEvents(t, m.URL, dir, status); err != nil {
				t.Fatalf("a %d was not acknowledged as a dead letter: %v", status, err)
			}
			files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
			if len(files) != 1 {
				t.Fatalf("%d dead letter files, want 1", len(files))
			}
			line, _ := os.ReadFile(files[0])
			if !strings.Contains(string(line), fmt.Sprintf(`"event":{"event_id":"e%d"}`, status)) {
				t.Errorf("the dead letter does not hold the event as sent: %s", line)
			}
		})
	}
	for _, status := range []int{401, 404, 429, 500, 503} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			dir := t.TempDir()
			if err := sendThroughMeiroEvents(t, m.URL, dir, status); err == nil {
				t.Fatalf("a %d was acknowledged; it must go back to the queue", status)
			}
			if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
				t.Errorf("a %d became a dead letter: %v", status, files)
			}
		})
	}
	t.Run("200", func(t *testing.T) {
		if err := sendThroughMeiroEvents(t, m.URL, t.TempDir(), 200); err != nil {
			t.Fatal(err)
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if len(m.accepted) != 1 || m.accepted[0] != `{"event_id":"e200"}` {
			t.Errorf("Meiro Events accepted %q, want the one event", m.accepted)
		}
	})
}

// TestA503QuotingARefusalIsNoRefusal: a gateway's 503 whose body quotes a
// refusal from behind it ("unexpected response code (400)") is a 503. The
// status travels as data (stage.StatusError), so the quote cannot make the
// event a dead letter: it goes back to the queue, with its 503.
func TestA503QuotingARefusalIsNoRefusal(t *testing.T) {
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "upstream: HTTP request returned unexpected response code (400): Bad Request", http.StatusServiceUnavailable)
	}))
	defer gateway.Close()
	dir := t.TempDir()
	err := sendThroughMeiroEvents(t, gateway.URL, dir, 0)
	if err == nil {
		t.Fatal("a 503 was acknowledged; it must go back to the queue")
	}
	if got := stage.StatusOf(err); got != http.StatusServiceUnavailable || stage.RefusedForGood(err) {
		t.Errorf("the error handed back carries status %d (refused for good: %v), want 503 and no refusal: %v", got, stage.RefusedForGood(err), err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
		t.Errorf("a 503 quoting a 400 became a dead letter: %v", files)
	}
}
