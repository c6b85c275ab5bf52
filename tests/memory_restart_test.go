package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
)

// bigPost is a post of realistic events (the custom_activity sample, its
// purchase listing three items long, about 1 KB each) adding up to about
// size bytes; each event carries a marker "post-index" so that Meiro Events
// can tell them apart. It returns the body and its number of events.
func bigPost(t testing.TB, post, size int) ([]byte, int) {
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

// restartOnBacklog posts posts of about size bytes (bigPost) from senders
// at once while Meiro Events is down, stops netcore-connect, and starts it
// again on the same queue with Meiro Events up (deliverAfterRestart). It
// returns the peak RSS (VmHWM) of the process that delivered them, in KiB.
func restartOnBacklog(t testing.TB, posts, size, senders int) int {
	t.Helper()
	m := newMeiro(t)
	m.discardBodies()
	m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
	dir := t.TempDir()
	p := startProcess(t, options{env: m.env(), dir: dir})

	events := make([]int, posts) // of each post acknowledged
	next := make(chan int)
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for i := range next {
				body, n := bigPost(t, i, size)
				status, err := postJSON(p.webhook, body)
				if err != nil || status != http.StatusOK {
					t.Errorf("post %d of %d bytes: %v %d, want 200 while Meiro Events is down", i, len(body), err, status)
					continue
				}
				events[i] = n
			}
		})
	}
	for i := range posts {
		next <- i
	}
	close(next)
	wg.Wait()
	acked := 0
	for _, n := range events {
		acked += n
	}
	if t.Failed() || acked == 0 {
		t.FailNow()
	}
	if m.receivedCount() != 0 {
		t.Fatal("events accepted while Meiro Events was down")
	}
	p.stop(t)
	return deliverAfterRestart(t, m, dir, nil, acked)
}

// restartRSSLimit is the peak RSS the defaults keep a restart to, on any
// backlog, in KiB. The read path holds at most read_memory_bytes of records
// (32 MiB by default), in a Go heap held to GOMEMLIMIT (144 MiB); the rest
// is the binary (about 30 MiB), the dedupe table (8 MiB for these
// backlogs) and the queue file's mapped pages.
const restartRSSLimit = 256 << 10

// TestRestartOnABacklogOfBigPostsStaysWithinMemory: 24 posts of about
// 9.6 MB (about 10,800 events of 900 bytes each) wait while Meiro Events is
// down; after a restart every one of their events arrives, and the peak
// RSS stays under the limit. Before the read path had a budget, the queue
// read 128 whole records ahead, all 24 posts at once: 503 MiB.
func TestRestartOnABacklogOfBigPostsStaysWithinMemory(t *testing.T) {
	if peak := restartOnBacklog(t, 24, 9_600_000, 1); peak > restartRSSLimit {
		t.Errorf("peak RSS %d MiB after a restart on 24 posts of 9.6 MB, over the %d MiB the defaults keep to", peak>>10, restartRSSLimit>>10)
	}
}

// TestRestartOnABacklogOfSmallPostsStaysWithinMemory: the same with 10,000
// posts of 10 events, where 128 records read ahead are a few MB.
func TestRestartOnABacklogOfSmallPostsStaysWithinMemory(t *testing.T) {
	if peak := restartOnBacklog(t, 10_000, 8_500, 8); peak > restartRSSLimit {
		t.Errorf("peak RSS %d MiB after a restart on 10,000 posts of 10 events, over the %d MiB the defaults keep to", peak>>10, restartRSSLimit>>10)
	}
}
