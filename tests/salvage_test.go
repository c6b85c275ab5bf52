package tests

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSalvageAndReplayADamagedQueueFile stores events while Meiro Events is
// down, stops, garbles the page of the queue file that holds one chosen
// event, and gets the rest back the way the README tells an operator to:
// `queue stats`, `queue salvage` into dead letters, then
// replay-dead-letters.yaml. Every event not on the garbled page arrives,
// exactly as posted and once.
func TestSalvageAndReplayADamagedQueueFile(t *testing.T) {
	m := newMeiro(t)
	m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
	dir := t.TempDir()
	p := startProcess(t, options{env: m.env(), dir: dir})
	var markers []string
	for i := range 40 {
		body, mk := markedBody(fmt.Sprintf("salvage-%d", i), 10)
		if status, err := postJSON(p.webhook, body); err != nil || status != http.StatusOK {
			t.Fatalf("post %d: %d %v", i, status, err)
		}
		markers = append(markers, mk...)
	}
	p.stop(t)

	queueFile := filepath.Join(p.dataDir, "queue", "events.db")
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
	out, err := exec.Command(binary, "queue", "salvage", queueFile, deadDir).CombinedOutput()
	if err != nil {
		t.Fatalf("queue salvage: %v\n%s", err, out)
	}
	t.Logf("queue salvage:\n%s", out)
	if !strings.Contains(string(out), "salvaged ") {
		t.Fatalf("salvage does not say what it saved:\n%s", out)
	}
	if err := os.Rename(queueFile, queueFile+".damaged"); err != nil {
		t.Fatal(err)
	}

	m.setRespond(func([]byte) int { return http.StatusOK })
	replay := exec.Command(binary, "run", filepath.Join(repoRoot(t), "config", "replay-dead-letters.yaml"))
	replay.Env = append(os.Environ(), "MEIRO_EVENTS_URL="+m.URL+"/collect", "NETCORE_DATA_DIR="+p.dataDir, "NETCORE_ADMIN_ADDRESS="+freeAddr(t))
	if out, err := runWithin(replay, 60*time.Second); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	got := markersAt(t, m)
	delivered := 0
	for _, mk := range markers {
		switch got[mk] {
		case 0:
		case 1:
			delivered++
		default:
			t.Errorf("%s delivered %d times, want once", mk, got[mk])
		}
	}
	if got["salvage-20-5"] != 0 {
		t.Error("the event on the garbled page was delivered")
	}
	// A 16 KiB page holds at most about 60 of these events.
	if lost := len(markers) - delivered; lost > 60 || delivered == 0 {
		t.Errorf("%d of %d events delivered after salvage and replay, want all but the garbled page's", delivered, len(markers))
	}
	for _, body := range m.received() {
		if !bytes.Contains(body, []byte(`"big":12345678901234567890`)) {
			t.Errorf("a salvaged event is not exactly as posted: %s", body)
		}
	}
	t.Logf("%d of %d events delivered after salvage and replay", delivered, len(markers))
}
