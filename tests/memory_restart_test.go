package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// bigPost is a post of realistic events (the custom_activity sample, its
// purchase listing three items long, about 1 KB each) adding up to about
// size bytes; each event carries a marker "post-index" so that Meiro Events
// can tell them apart. It returns the body and its number of events.
func bigPost(t *testing.T, post, size int) ([]byte, int) {
	t.Helper()
	var sample map[string][]map[string]any
	if err := json.Unmarshal(readFile(t, filepath.Join(samplesDir, "custom_activity.json")), &sample); err != nil {
		t.Fatal(err)
	}
	event := sample["product_search"][0]
	params := event["payload_params"].(map[string]any)
	item := params["items"].([]any)[0]
	params["items"] = []any{item, item, item}
	var events [][]byte
	total := 0
	for i := 0; total < size; i++ {
		event["marker"] = fmt.Sprintf("%d-%d", post, i)
		b, err := json.Marshal(event)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, b)
		total += len(b) + 1
	}
	body := append([]byte(`{"product_search":[`), bytes.Join(events, []byte(","))...)
	return append(body, "]}"...), len(events)
}

// markerOf is the marker of an event as Meiro Events receives it: its post
// and index.
func markerOf(body []byte) (post, index int, ok bool) {
	const key = `"marker":"`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return 0, 0, false
	}
	rest := body[i+len(key):]
	end := bytes.IndexByte(rest, '"')
	dash := bytes.IndexByte(rest, '-')
	if end < 0 || dash < 0 || dash > end {
		return 0, 0, false
	}
	post, err1 := strconv.Atoi(string(rest[:dash]))
	index, err2 := strconv.Atoi(string(rest[dash+1 : end]))
	return post, index, err1 == nil && err2 == nil
}

// TestRestartOnABacklogOfBigPostsStaysWithinMemory fills the queue with
// 24 posts of about 9.6 MB (about 9,400 events of 1 KB each) while Meiro
// Events is down, stops netcore-connect, and starts it again with Meiro
// Events up: every acknowledged event must arrive, and the process's peak
// RSS must stay under 256 MiB, what the defaults promise on any backlog.
// The read path holds at most read_memory_bytes of records (64 MiB by
// default) and the Go heap is held to GOMEMLIMIT (160 MiB); the rest is
// the binary, the queue file's mapped pages and the dedupe table. Before
// the bound, the queue read 128 whole records ahead: all 24 posts at once.
func TestRestartOnABacklogOfBigPostsStaysWithinMemory(t *testing.T) {
	const (
		posts    = 24
		postSize = 9_600_000
		limit    = 256 << 10 // KiB
	)
	m := newMeiro(t)
	m.discardBodies()
	m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
	dir := t.TempDir()
	p := startProcess(t, options{env: m.env(), dir: dir})

	events := make([]int, posts) // of each post acknowledged
	acked := 0
	for i := range posts {
		body, n := bigPost(t, i, postSize)
		status, err := postJSON(p.webhook, body)
		if err != nil || status != http.StatusOK {
			t.Fatalf("post %d of %d bytes: %v %d, want 200 while Meiro Events is down", i, len(body), err, status)
		}
		events[i] = n
		acked += n
	}
	if m.receivedCount() != 0 {
		t.Fatal("events accepted while Meiro Events was down")
	}
	p.stop(t)

	var mu sync.Mutex
	seen := make([][]uint8, posts)
	for i, n := range events {
		seen[i] = make([]uint8, n)
	}
	distinct, repeats, strangers := 0, 0, 0
	m.setRespond(func(body []byte) int {
		post, index, ok := markerOf(body)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case !ok || post >= posts || index >= len(seen[post]):
			strangers++
		case seen[post][index] > 0:
			repeats++
		default:
			distinct++
		}
		if ok && post < posts && index < len(seen[post]) && seen[post][index] < 255 {
			seen[post][index]++
		}
		return http.StatusOK
	})
	start := time.Now()
	p = startProcess(t, options{env: m.env(), dir: dir})
	waitFor(t, fmt.Sprintf("%d acknowledged events at Meiro Events", acked), 3*time.Minute, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return distinct == acked
	})
	peak := peakRSSKiB(t, p.cmd.Process.Pid)
	mu.Lock()
	t.Logf("%d events of %d posts delivered in %s after the restart (%d repeats, %d unknown); peak RSS %d MiB",
		distinct, posts, time.Since(start).Round(time.Second), repeats, strangers, peak>>10)
	if strangers > 0 {
		t.Errorf("%d events at Meiro Events were none of those posted", strangers)
	}
	mu.Unlock()
	if peak > limit {
		t.Errorf("peak RSS %d MiB after a restart on %d posts of %d MB, over the %d MiB the defaults keep to", peak>>10, posts, postSize/1_000_000, limit>>10)
	}
}
