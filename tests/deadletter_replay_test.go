package tests

import (
	"bytes"
	"errors"
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

// TestReplayedDeadLettersKeepAFileWithAGarbledLine: a dead letter file
// with a line that is not a dead letter (torn, or edited by hand) and a good
// one. The replay delivers the good event, never sends the garbled line,
// keeps the file (deleting another file whose events were all delivered)
// and exits 3 naming the file and the line, so that nobody takes the run
// for a finished one.
func TestReplayedDeadLettersKeepAFileWithAGarbledLine(t *testing.T) {
	m := newMeiro(t)
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	deadDir := filepath.Join(dataDir, "dead-letter")
	if err := os.MkdirAll(deadDir, 0o700); err != nil {
		t.Fatal(err)
	}
	const good = `{"marker":"good-1","n":1.0e+2}`
	damaged := filepath.Join(deadDir, "20250102T030405.000000000Z-000001.jsonl")
	sound := filepath.Join(deadDir, "20250102T030406.000000000Z-000002.jsonl")
	files := map[string]string{
		damaged: `{"dead_lettered_at":"2025-01-02T03:04:05Z","error":"refused","event":{"marker":"garbled","cut` + "\n" +
			`{"dead_lettered_at":"2025-01-02T03:04:05Z","error":"refused","event":` + good + "}\n",
		sound: `{"dead_lettered_at":"2025-01-02T03:04:06Z","error":"refused","event":{"marker":"good-2"}}` + "\n",
	}
	for name, text := range files {
		if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	out, err := runReplay(t, m, dir, dataDir)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(string(out), damaged) || !strings.Contains(string(out), "line 1") {
		t.Errorf("replay: %v, want exit status 3 and a message naming line 1 of %s:\n%s", err, damaged, out)
	}
	got := map[string]int{}
	for _, body := range m.received() {
		for _, mk := range []string{"garbled", "good-1", "good-2"} {
			if bytes.Contains(body, []byte(mk)) {
				got[mk]++
			}
		}
		if bytes.Contains(body, []byte("good-1")) && string(body) != good {
			t.Errorf("the good event of the damaged file was sent as %s, want %s", body, good)
		}
	}
	if got["garbled"] != 0 || got["good-1"] != 1 || got["good-2"] != 1 {
		t.Errorf("sent %v, want good-1 and good-2 once each and never the garbled line", got)
	}
	if b, err := os.ReadFile(damaged); err != nil || string(b) != files[damaged] {
		t.Errorf("the file with the garbled line is not kept as it was (%v):\n%s", err, b)
	}
	if _, err := os.Stat(sound); !os.IsNotExist(err) {
		t.Errorf("the file whose events were all delivered is still there (%v): the premise, that the replay deletes delivered files, did not happen", err)
	}
}

// TestReplayedDeadLettersWaitForMeiroEvents: while Meiro Events cannot be
// reached (404: a load balancer with no route to it yet), through more
// failures than one round of meiro_events' quick retries, the replay keeps
// trying; once it answers, the event is delivered, its file deleted, and the
// run ends as a finished one.
func TestReplayedDeadLettersWaitForMeiroEvents(t *testing.T) {
	m := newMeiro(t)
	// The replay's meiro_events gives up after 6 attempts (retries: 5),
	// 2.5 s apart in all, and hands the event back.
	const failures = 7
	var mu sync.Mutex
	attempts := 0
	m.setRespond(func([]byte) int {
		mu.Lock()
		defer mu.Unlock()
		if attempts++; attempts <= failures {
			return http.StatusNotFound
		}
		return http.StatusOK
	})
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	deadDir := filepath.Join(dataDir, "dead-letter")
	if err := os.MkdirAll(deadDir, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(deadDir, "20250102T030405.000000000Z-000001.jsonl")
	if err := os.WriteFile(file, []byte(`{"dead_lettered_at":"2025-01-02T03:04:05Z","error":"refused","event":{"marker":"late"}}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	replayDeadLetters(t, m, dir, dataDir)
	if n := m.attemptCount(); n != failures+1 {
		t.Errorf("%d attempts, want %d failed ones and then the one accepted", n, failures)
	}
	if got := m.received(); len(got) != 1 || string(got[0]) != `{"marker":"late"}` {
		t.Errorf("delivered %q, want the event once", got)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("the delivered file is still there (%v)", err)
	}
}

// replayDeadLetters runs config/replay-dead-letters.yaml over dataDir's dead
// letters to m, and waits for it to finish.
func replayDeadLetters(t testing.TB, m *meiro, dir, dataDir string) {
	t.Helper()
	if out, err := runReplay(t, m, dir, dataDir); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
}

// runReplay runs config/replay-dead-letters.yaml over dataDir's dead
// letters to m and returns its output and how it ended.
func runReplay(t testing.TB, m *meiro, dir, dataDir string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(binary, "run", "--set", "http.address="+freeAddr(t), filepath.Join(repoRoot(t), "config", "replay-dead-letters.yaml"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "MEIRO_EVENTS_URL="+m.URL+"/collect", "NETCORE_DATA_DIR="+dataDir)
	return runWithin(cmd, 60*time.Second)
}
