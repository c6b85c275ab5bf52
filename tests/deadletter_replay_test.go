package tests

import (
	"bytes"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReplayedDeadLetterIsTheBytesFirstSent: an event that Meiro Events
// refused (400) becomes a dead letter; replay-dead-letters.yaml sends it
// again, and Meiro Events gets the very bytes of the first attempt: keys in
// the order sent, a duplicate key, escapes (\u00e9, the lone surrogate
// \ud800) and the number's text (1.0e+2) as they were.
func TestReplayedDeadLetterIsTheBytesFirstSent(t *testing.T) {
	const data = `{"p":[{"b":1,"a":"\u00e9","a":2,"s":"\ud800","n":1.0e+2}]}`
	sent := refuseThenReplay(t, data)
	// The premise: the pipeline itself sent the event as posted.
	if !bytes.HasPrefix(sent, []byte(`{"b":1,"a":"\u00e9","a":2,"s":"\ud800","n":1.0e+2,`)) {
		t.Fatalf("the first attempt is not the event as posted: %s", sent)
	}
}

// TestReplayedDeadLetterOverTheLineScannersDefault: a dead letter line
// longer than 64 KiB (bufio's default token, and Benthos's lines scanner's)
// is replayed too, not left behind with "token too long" in the log.
func TestReplayedDeadLetterOverTheLineScannersDefault(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 16<<10) // 256 KiB
	sent := refuseThenReplay(t, `{"p":[{"big":"`+big+`"}]}`)
	if len(sent) < len(big) {
		t.Fatalf("the first attempt is not the big event: %d bytes", len(sent))
	}
}

// refuseThenReplay posts data (the data field of a form post) to the
// default pipeline while Meiro Events answers 400, so that its one event
// becomes a dead letter, then replays the dead letters to Meiro Events
// answering 200, checks that the replay sent the bytes of the first attempt
// once and left no dead letter, and returns those bytes.
func refuseThenReplay(t *testing.T, data string) []byte {
	t.Helper()
	m := newMeiro(t)
	var mu sync.Mutex
	var first []byte
	m.setRespond(func(body []byte) int {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = bytes.Clone(body)
		}
		return http.StatusBadRequest
	})
	dir := t.TempDir()
	p := startProcess(t, options{env: m.env(), dir: dir})
	form := "data=" + url.QueryEscape(data)
	if status, answer := post(t, newPost(t, p.webhook, "application/x-www-form-urlencoded", strings.NewReader(form))); status != http.StatusOK {
		t.Fatalf("post: %d %s", status, answer)
	}
	deadDir := filepath.Join(p.dataDir, "dead-letter")
	waitFor(t, "the refused event as a dead letter", 10*time.Second, func() bool { return countLines(t, deadDir) == 1 })
	p.stop(t)
	mu.Lock()
	sent := first
	mu.Unlock()

	m.setRespond(func([]byte) int { return http.StatusOK })
	replayDeadLetters(t, m, dir, p.dataDir)
	got := m.received()
	if len(got) != 1 || !bytes.Equal(got[0], sent) {
		t.Errorf("replayed %d event(s):\n%.300q\nwant once the bytes first sent:\n%.300q", len(got), got, sent)
	}
	if n := countLines(t, deadDir); n != 0 {
		t.Errorf("%d dead letters left after the replay", n)
	}
	return sent
}

// replayDeadLetters runs config/replay-dead-letters.yaml over dataDir's dead
// letters to m, and waits for it to finish.
func replayDeadLetters(t testing.TB, m *meiro, dir, dataDir string) {
	t.Helper()
	cmd := exec.Command(binary, "run", "--set", "http.address="+freeAddr(t), filepath.Join(repoRoot(t), "config", "replay-dead-letters.yaml"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "MEIRO_EVENTS_URL="+m.URL+"/collect", "NETCORE_DATA_DIR="+dataDir)
	if out, err := runWithin(cmd, 60*time.Second); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
}
