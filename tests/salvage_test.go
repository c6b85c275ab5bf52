package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSalvageAndReplayADamagedQueueFile stores posts while Meiro Events is
// down, stops, garbles the page of the queue file that holds one chosen
// event, and gets the rest back the way docs/delivery.md tells an operator to:
// `queue stats`, `queue salvage` into dead letters, then
// replay-dead-letters.yaml. The default pipeline stores each post whole, as
// one record: salvage splits it into events as the queue would have, so
// every event of the posts not on the garbled page arrives once, as the
// pipeline sends it (panel_name, event_time and event_id added, the rest
// exactly as posted), and the garbled page costs whole posts.
func TestSalvageAndReplayADamagedQueueFile(t *testing.T) {
	m := newMeiro(t)
	m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
	dir := t.TempDir()
	p := startProcess(t, options{env: m.env(), dir: dir})
	const posts, events = 40, 10
	var markers []string
	postSize := 0
	for i := range posts {
		body, mk := markedBody(fmt.Sprintf("salvage-%d", i), events)
		if status, err := postJSON(p.webhook, body); err != nil || status != http.StatusOK {
			t.Fatalf("post %d: %d %v", i, status, err)
		}
		markers = append(markers, mk...)
		postSize = len(body)
	}
	p.stop(t)

	queueFile := filepath.Join(p.dataDir, "queue", "events.db")
	// What an operator reads first: every event waits, not every post.
	if out, err := exec.Command(binary, "queue", "stats", queueFile).CombinedOutput(); err != nil || !strings.Contains(string(out), fmt.Sprintf("events waiting: %d\n", posts*events)) {
		t.Fatalf("queue stats of the sound file: %v\n%s\nwant %d events waiting", err, out, posts*events)
	}
	raw := readFile(t, queueFile)
	const pageSize = 16 << 10
	at := bytes.Index(raw, []byte(`"salvage-20-5"`))
	if at < 0 {
		t.Fatal("the chosen event is not in the queue file")
	}
	page := at / pageSize
	for i := page * pageSize; i < (page+1)*pageSize; i++ {
		raw[i] ^= 0x5a
	}
	if err := os.WriteFile(queueFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}

	stats, _ := exec.Command(binary, "queue", "stats", queueFile).CombinedOutput()
	t.Logf("queue stats of the damaged file:\n%s", stats)
	deadDir := filepath.Join(p.dataDir, "dead-letter")
	if out, err := exec.Command(binary, "queue", "salvage", "--timezone", "Nowhere/Else", queueFile, deadDir).CombinedOutput(); err == nil || !strings.Contains(string(out), "--timezone") {
		t.Errorf("salvage with a zone that does not exist: %v\n%s\nwant an error naming --timezone", err, out)
	}
	out, err := exec.Command(binary, "queue", "salvage", queueFile, deadDir).CombinedOutput()
	if err != nil {
		t.Fatalf("queue salvage: %v\n%s", err, out)
	}
	t.Logf("queue salvage:\n%s", out)
	var salvaged int
	if _, err := fmt.Sscanf(string(out), "salvaged %d events", &salvaged); err != nil || !strings.Contains(string(out), "whole posts") {
		t.Fatalf("salvage does not say what it saved, and that it split whole posts:\n%s", out)
	}
	if err := os.Rename(queueFile, queueFile+".damaged"); err != nil {
		t.Fatal(err)
	}

	m.setRespond(func([]byte) int { return http.StatusOK })
	replayDeadLetters(t, m, dir, p.dataDir)
	got := markersAt(t, m)
	delivered, lostPosts := 0, 0
	for i := range posts {
		// A post is one record: all of its events arrive, or none.
		n := 0
		for _, mk := range markers[i*events : (i+1)*events] {
			if got[mk] > 1 {
				t.Errorf("%s delivered %d times, want once", mk, got[mk])
			}
			n += min(got[mk], 1)
		}
		if n != 0 && n != events {
			t.Errorf("post %d: %d of its %d events delivered, want all or none", i, n, events)
		}
		if n == 0 {
			lostPosts++
		}
		delivered += n
	}
	if got["salvage-20-5"] != 0 {
		t.Error("the event on the garbled page was delivered")
	}
	if delivered != salvaged {
		t.Errorf("salvage said %d events, %d were delivered", salvaged, delivered)
	}
	// A 16 KiB page holds the records of at most this many posts.
	if maxLost := pageSize/postSize + 1; lostPosts > maxLost || delivered == 0 {
		t.Errorf("%d of %d events delivered after salvage and replay (%d posts lost), want all but the garbled page's (at most %d posts)", delivered, len(markers), lostPosts, maxLost)
	}
	for _, body := range m.received() {
		// As the pipeline sends it: its ts read in Asia/Kolkata (10:15 IST),
		// panel and id added, the big number not rounded.
		var ev struct {
			PanelName string `json:"panel_name"`
			EventTime string `json:"event_time"`
			EventID   string `json:"event_id"`
		}
		err := json.Unmarshal(body, &ev)
		if err != nil || ev.PanelName != "load" || ev.EventTime != "2024-03-01T04:45:00Z" || len(ev.EventID) != 32 || !bytes.Contains(body, []byte(`"big":12345678901234567890`)) {
			t.Errorf("a salvaged event is not as the pipeline sends it: %s", body)
		}
	}
	t.Logf("%d of %d events delivered after salvage and replay (%d posts lost with the garbled page)", delivered, len(markers), lostPosts)
}

// TestSalvageRefusesAQueueFileARunningReceiverHolds: `queue salvage` on the
// queue file of a running receiver would copy live events into dead
// letters, which a replay then sends a second time. It is refused as `queue
// stats` refuses it (the file is locked), writes nothing, and goes ahead
// only when told --force.
func TestSalvageRefusesAQueueFileARunningReceiverHolds(t *testing.T) {
	m := newMeiro(t)
	m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
	p := startProcess(t, options{env: m.env()})
	const posts, events = 5, 10
	var markers []string
	for i := range posts {
		body, mk := markedBody(fmt.Sprintf("live-%d", i), events)
		markers = append(markers, mk...)
		if status, err := postJSON(p.webhook, body); err != nil || status != http.StatusOK {
			t.Fatalf("post %d: %d %v", i, status, err)
		}
	}
	waitQueued(t, p, posts*events) // the premise: live events wait in the file

	queueFile := filepath.Join(p.dataDir, "queue", "events.db")
	stats, err := exec.Command(binary, "queue", "stats", queueFile).CombinedOutput()
	if err == nil || !strings.Contains(string(stats), "using it") {
		t.Fatalf("queue stats of a file in use: %v\n%s\nwant a refusal saying a netcore-connect is using it", err, stats)
	}
	// The output folder of the example in docs/delivery.md: the one a replay reads.
	deadDir := filepath.Join(p.dataDir, "dead-letter")
	refusal, err := exec.Command(binary, "queue", "salvage", queueFile, deadDir).CombinedOutput()
	if err == nil || !strings.Contains(string(refusal), "locked") || !strings.Contains(string(refusal), "--force") {
		t.Errorf("queue salvage of a file in use: %v\n%s\nwant a refusal saying it is locked, and naming --force", err, refusal)
	}
	if n := countLines(t, deadDir); n != 0 {
		t.Errorf("a refused salvage wrote %d dead letters", n)
	}

	// Told --force, it salvages every event at least once (a live file
	// also holds the failed tries of some of them as records of their own).
	forced := t.TempDir()
	out, err := exec.Command(binary, "queue", "salvage", "--force", queueFile, forced).CombinedOutput()
	var salvaged int
	if _, serr := fmt.Sscanf(string(out), "salvaged %d events", &salvaged); err != nil || serr != nil || salvaged < posts*events {
		t.Errorf("queue salvage --force of a file in use: %v\n%s\nwant its %d events salvaged", err, out, posts*events)
	}
	if n := countLines(t, forced); n != salvaged {
		t.Errorf("salvage --force said %d events, wrote %d dead letters", salvaged, n)
	}
	kept := readLines(t, forced)
	for _, mk := range markers {
		if !strings.Contains(kept, `"marker":"`+mk+`"`) {
			t.Errorf("salvage --force did not keep %s", mk)
		}
	}
	t.Logf("queue salvage of a file in use:\n%s", refusal)
}
