package tests

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The archive recipes, driven through the built binary: posts in over HTTP,
// hour files on disk, a replay out to a Meiro Events stand-in on loopback.

func recipe(t testing.TB, name string) string {
	return filepath.Join(repoRoot(t), "config", filepath.FromSlash(name))
}

// archiveFiles lists the hour files under dataDir/archive, plain then
// gzip, each in hour order.
func archiveFiles(t testing.TB, dataDir string) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"*.jsonl", "*.jsonl.gz"} {
		found, err := filepath.Glob(filepath.Join(dataDir, "archive", "*", pattern))
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(found)
		files = append(files, found...)
	}
	return files
}

// archived is every line of the archive, in hour order (plain files first);
// a gzip file must decode whole.
func archived(t testing.TB, dataDir string) []string {
	t.Helper()
	var lines []string
	for _, f := range archiveFiles(t, dataDir) {
		lines = append(lines, archiveLines(t, f)...)
	}
	return lines
}

// archiveLines are the lines of one hour file, gunzipped if it is .gz.
func archiveLines(t testing.TB, path string) []string {
	t.Helper()
	b := readFile(t, path)
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if b, err = io.ReadAll(zr); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// markerCounts counts the events of lines by their marker field.
func markerCounts(t testing.TB, lines []string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, l := range lines {
		var ev struct {
			Marker string `json:"marker"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("an archive line is not JSON: %q", l)
		}
		out[ev.Marker]++
	}
	return out
}

// postMarkedEvents posts n marked events in one post and checks the 200.
func postMarkedEvents(t *testing.T, p *process, prefix string, n int) []string {
	t.Helper()
	body, markers := markedBody(prefix, n)
	if status, err := postJSON(p.webhook, body); err != nil || status != http.StatusOK {
		t.Fatalf("posting %d events: %d %v", n, status, err)
	}
	return markers
}

// hourOf reads the hour an archive file holds from its path.
func hourOf(t *testing.T, path string) time.Time {
	t.Helper()
	rel := filepath.Base(filepath.Dir(path)) + "T" + strings.TrimSuffix(strings.TrimSuffix(filepath.Base(path), ".gz"), ".jsonl")
	h, err := time.Parse("2006-01-02T15", rel)
	if err != nil {
		t.Fatalf("%s is not an hour file: %v", path, err)
	}
	return h
}

// replayCommand runs config/replay-archive.yaml over the hours [from, to)
// of the archive in dataDir, to m.
func replayCommand(t testing.TB, dataDir string, m *meiro, from, to time.Time) *exec.Cmd {
	replay := exec.Command(binary, "run", recipe(t, "replay-archive.yaml"))
	replay.Env = append(os.Environ(), "NETCORE_DATA_DIR="+dataDir, "MEIRO_EVENTS_URL="+m.URL+"/collect",
		"REPLAY_FROM="+from.Format(time.RFC3339), "REPLAY_TO="+to.Format(time.RFC3339))
	return replay
}

func writeHourFile(t *testing.T, dataDir string, h time.Time, content string) {
	t.Helper()
	path := filepath.Join(dataDir, "archive", h.Format("2006-01-02"), h.Format("15")+".jsonl")
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
}

// TestConfigsLintAndPassTheirUnitTests lints config/*.yaml; the recipes
// under config/destinations/ are linted here (their unit tests run there).
func TestArchiveRecipesLint(t *testing.T) {
	var confs []string
	for _, name := range []string{"destinations/archive-only.yaml", "destinations/meiro-and-archive.yaml",
		"destinations/meiro-and-archive/ingest.yaml", "destinations/meiro-and-archive/meiro.yaml",
		"destinations/meiro-and-archive/archive.yaml", "replay-archive.yaml"} {
		confs = append(confs, recipe(t, name))
	}
	lint := exec.Command(binary, append([]string{"lint"}, confs...)...)
	lint.Env = append(os.Environ(), "MEIRO_EVENTS_URL=http://127.0.0.1:1/collect")
	if out, err := lint.CombinedOutput(); err != nil {
		t.Errorf("netcore-connect lint: %v\n%s", err, out)
	}
}

func TestArchiveOnlyRecipeArchivesAndReplaysExactly(t *testing.T) {
	p := startProcess(t, options{config: recipe(t, "destinations/archive-only.yaml")})
	postedFrom := time.Now().UTC().Truncate(time.Hour)
	samples := postSamples(t, p)
	markers := postMarkedEvents(t, p, "archived", 20)
	postedTo := time.Now().UTC().Truncate(time.Hour)
	want := len(samples) + len(markers)
	waitFor(t, fmt.Sprintf("%d events in the archive", want), 20*time.Second, func() bool {
		return len(archived(t, p.dataDir)) >= want
	})
	p.stop(t)

	lines := archived(t, p.dataDir)
	if len(lines) != want {
		t.Fatalf("the archive holds %d lines, want one per event: %d", len(lines), want)
	}
	ids := map[string]bool{}
	for _, l := range lines {
		id, _ := decodeExact(t, []byte(l))["event_id"].(string)
		if id == "" || ids[id] {
			t.Errorf("event_id missing or repeated in %s", l)
		}
		ids[id] = true
	}
	for mk, n := range markerCounts(t, lines) {
		if mk != "" && n != 1 {
			t.Errorf("marker %s archived %d times", mk, n)
		}
	}
	if !strings.Contains(strings.Join(lines, "\n"), `"big":12345678901234567890}`) {
		t.Error("a number too big for a float was not archived exactly as sent")
	}

	// The range covers exactly the hours written; the hours just before and
	// after it hold events that must not be replayed.
	// Each event is filed under the UTC hour its post was received in.
	files := archiveFiles(t, p.dataDir)
	for _, f := range files {
		if h := hourOf(t, f); h.Before(postedFrom) || h.After(postedTo) {
			t.Errorf("%s is not the hour the events were posted in (%s to %s)", f, postedFrom, postedTo)
		}
	}
	from, to := hourOf(t, files[0]), hourOf(t, files[len(files)-1]).Add(time.Hour)
	writeHourFile(t, p.dataDir, from.Add(-time.Hour), `{"marker":"before the range"}`+"\n")
	writeHourFile(t, p.dataDir, to, `{"marker":"after the range"}`+"\n")

	m := newMeiro(t)
	var failedOnce atomic.Bool
	m.setRespond(func([]byte) int {
		if failedOnce.CompareAndSwap(false, true) {
			return http.StatusServiceUnavailable // one failure, retried before the run ends
		}
		return http.StatusOK
	})
	if out, err := runWithin(replayCommand(t, p.dataDir, m, from, to), 60*time.Second); err != nil {
		t.Fatalf("the replay did not exit by itself with success: %v\n%s", err, out)
	}
	if !failedOnce.Load() {
		t.Fatal("Meiro Events was never asked")
	}
	var got []string
	for _, b := range m.received() {
		got = append(got, string(b))
	}
	slices.Sort(got)
	slices.Sort(lines)
	if !slices.Equal(got, lines) {
		t.Errorf("Meiro Events received\n%s\nwant each archived line exactly\n%s", strings.Join(got, "\n"), strings.Join(lines, "\n"))
	}
}

// kill -9 while archiving under load: after the restart every event
// acknowledged to Netcore is in the archive, and every line is whole (a
// torn tail left by the kill was cut off before appending again).
func TestArchiveOnlyKill9LosesNothingAndLeavesNoTornLine(t *testing.T) {
	conf, dir := recipe(t, "destinations/archive-only.yaml"), t.TempDir()
	p := startProcess(t, options{config: conf, dir: dir})
	stop := make(chan struct{})
	acked := load(p.webhook, "kill", 8, stop)
	waitFor(t, "events in the archive", 20*time.Second, func() bool { return len(archived(t, p.dataDir)) >= 2000 })
	p.kill()
	close(stop)
	markers := acked()
	if len(markers) == 0 {
		t.Fatal("premise: no post was acknowledged before the kill")
	}

	p = startProcess(t, options{config: conf, dir: dir})
	var counts map[string]int
	waitFor(t, "every acknowledged event in the archive", 30*time.Second, func() bool {
		counts = markerCounts(t, archived(t, p.dataDir)) // fails on a line that is not whole JSON
		for _, mk := range markers {
			if counts[mk] == 0 {
				return false
			}
		}
		return true
	})
	t.Logf("%d events acknowledged before kill -9, all archived after the restart; %d lines in all", len(markers), len(archived(t, p.dataDir)))
}

// startStreams runs the meiro-and-archive recipe as its docs/destinations.md command
// does: streams mode, the root config and a folder of streams, in dir
// (holding data/).
func startStreams(t *testing.T, env map[string]string, streams, dir string) *process {
	t.Helper()
	return startProcess(t, options{env: env, dir: dir,
		args: []string{"streams", "--no-api", "-o", recipe(t, "destinations/meiro-and-archive.yaml"), streams}})
}

func queued(t *testing.T, p *process, stream string) float64 {
	return sumMetric(scrape(t, p), "netcore_queue_events", `stream="`+stream+`"`)
}

// blockArchive puts a folder where the archive files of this hour and the
// next would be, so that the archive cannot write; the returned func undoes it.
func blockArchive(t *testing.T, dataDir string) func() {
	t.Helper()
	var undo []func()
	now := time.Now().UTC()
	for _, h := range []time.Time{now, now.Add(time.Hour)} {
		path := filepath.Join(dataDir, "archive", h.Format("2006-01-02"), h.Format("15")+".jsonl")
		if _, err := os.Stat(path); err == nil {
			if err := os.Rename(path, path+".aside"); err != nil {
				t.Fatal(err)
			}
			undo = append(undo, func() { _ = os.Rename(path+".aside", path) })
		}
		if err := os.MkdirAll(path, 0o750); err != nil {
			t.Fatal(err)
		}
		undo = append(undo, func() { _ = os.Remove(path) })
	}
	return func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
}

// With one disk queue per destination, a destination that is down holds
// nothing back: the other receives everything, once, while the backlog of
// the one that is down waits in its own queue.
func TestMeiroAndArchiveKeepTheDestinationsIndependent(t *testing.T) {
	m := newMeiro(t)
	m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
	p := startStreams(t, m.env(), recipe(t, "destinations/meiro-and-archive"), t.TempDir())

	// Meiro Events down: the archive gets every event.
	meiroDown := postMarkedEvents(t, p, "meiro-down", 100)
	waitFor(t, "100 events in the archive while Meiro Events is down", 20*time.Second, func() bool {
		return len(archived(t, p.dataDir)) >= 100
	})
	if m.attemptCount() == 0 || len(m.received()) != 0 {
		t.Fatalf("premise: Meiro Events was tried (%d attempts) and accepted nothing (%d)", m.attemptCount(), len(m.received()))
	}
	// The gauge is refreshed now and then: wait for it.
	waitFor(t, "Meiro Events' 100 events in its queue", 10*time.Second, func() bool { return queued(t, p, "meiro") == 100 })
	m.setRespond(func([]byte) int { return http.StatusOK })
	waitDelivered(t, m, meiroDown, 30*time.Second)

	// The archive down: Meiro Events gets every event.
	unblock := blockArchive(t, p.dataDir)
	archiveDown := postMarkedEvents(t, p, "archive-down", 100)
	waitDelivered(t, m, archiveDown, 30*time.Second)
	waitFor(t, "the archive's backlog in its queue", 10*time.Second, func() bool { return queued(t, p, "archive") == 100 })
	unblock()
	waitFor(t, "200 events in the archive", 30*time.Second, func() bool { return len(archived(t, p.dataDir)) >= 200 })

	time.Sleep(300 * time.Millisecond) // room for a repeat to show up
	atMeiro, inArchive := markersAt(t, m), markerCounts(t, archived(t, p.dataDir))
	for _, mk := range append(meiroDown, archiveDown...) {
		if atMeiro[mk] != 1 || inArchive[mk] != 1 {
			t.Errorf("%s: %d times at Meiro Events, %d in the archive; want once each", mk, atMeiro[mk], inArchive[mk])
		}
	}
	if n := len(archived(t, p.dataDir)); n != 200 {
		t.Errorf("the archive holds %d lines, want 200", n)
	}
}

// kill -9 under load: every event acknowledged to Netcore reaches both
// destinations after the restart.
func TestMeiroAndArchiveKill9LosesNothingAcknowledged(t *testing.T) {
	m := newMeiro(t)
	streams, dir := recipe(t, "destinations/meiro-and-archive"), t.TempDir()
	p := startStreams(t, m.env(), streams, dir)
	stop := make(chan struct{})
	acked := load(p.webhook, "kill", 8, stop)
	waitFor(t, "events at Meiro Events and in the archive", 20*time.Second, func() bool {
		return len(m.received()) >= 1000 && len(archived(t, p.dataDir)) >= 1000
	})
	p.kill()
	close(stop)
	markers := acked()
	if len(markers) == 0 {
		t.Fatal("premise: no post was acknowledged before the kill")
	}

	p = startStreams(t, m.env(), streams, dir)
	waitDelivered(t, m, markers, 60*time.Second)
	waitFor(t, "every acknowledged event in the archive", 60*time.Second, func() bool {
		inArchive := markerCounts(t, archived(t, p.dataDir))
		for _, mk := range markers {
			if inArchive[mk] == 0 {
				return false
			}
		}
		return true
	})
	t.Logf("%d events acknowledged before kill -9; all at Meiro Events and in the archive after the restart", len(markers))
}

// A post whose events only one queue could store is answered 503; posted
// again, the queue that had them takes them as repeats: each destination
// still gets each event once.
func TestMeiroAndArchiveAnswer503WhenOneQueueIsFull(t *testing.T) {
	streams := t.TempDir()
	for _, name := range []string{"ingest.yaml", "meiro.yaml", "archive.yaml"} {
		conf := string(readFile(t, filepath.Join(recipe(t, "destinations/meiro-and-archive"), name)))
		if name == "meiro.yaml" {
			conf = strings.Replace(conf, "max_bytes: 1073741824", "max_events: 5 #", 1)
		}
		if err := os.WriteFile(filepath.Join(streams, name), []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m := newMeiro(t)
	m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
	p := startStreams(t, m.env(), streams, t.TempDir())
	first := postMarkedEvents(t, p, "fits", 5)
	body, over := markedBody("over", 1)
	if status, err := postJSON(p.webhook, body); err != nil || status != http.StatusServiceUnavailable {
		t.Fatalf("a post Meiro Events' full queue cannot take: %d %v, want 503", status, err)
	}
	waitFor(t, "6 events in the archive", 20*time.Second, func() bool { return len(archived(t, p.dataDir)) >= 6 })

	m.setRespond(func([]byte) int { return http.StatusOK })
	waitDelivered(t, m, first, 30*time.Second)
	waitFor(t, "room in Meiro Events' queue", 10*time.Second, func() bool { return queued(t, p, "meiro") == 0 })
	if status, err := postJSON(p.webhook, body); err != nil || status != http.StatusOK {
		t.Fatalf("the same post again: %d %v, want 200", status, err)
	}
	waitDelivered(t, m, over, 30*time.Second)
	time.Sleep(300 * time.Millisecond) // room for a repeat to show up
	atMeiro, inArchive := markersAt(t, m), markerCounts(t, archived(t, p.dataDir))
	for _, mk := range append(first, over...) {
		if atMeiro[mk] != 1 || inArchive[mk] != 1 {
			t.Errorf("%s: %d times at Meiro Events, %d in the archive; want once each", mk, atMeiro[mk], inArchive[mk])
		}
	}
}

// oneQueueFanOut is the design meiro-and-archive does not use: the default
// pipeline with its output replaced by a fan_out broker over the archive
// and the Meiro Events output, behind the one disk queue.
func oneQueueFanOut(t *testing.T) string {
	t.Helper()
	def := string(readFile(t, recipe(t, "netcore-to-meiro.yaml")))
	head, meiroOutput, found := strings.Cut(def, "\noutput:\n")
	if !found {
		t.Fatal("netcore-to-meiro.yaml has no output")
	}
	indented := strings.ReplaceAll("\n"+meiroOutput, "\n", "\n      ")
	conf := head + `
output:
  broker:
    pattern: fan_out
    outputs:
      - netcore_archive:
          dir: ${NETCORE_DATA_DIR}/archive
      -` + indented + "\n"
	path := filepath.Join(t.TempDir(), "fan-out.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitArchiveStill waits until p's archive held the same number of lines for
// still while Meiro Events was asked again, and returns that number.
func waitArchiveStill(t *testing.T, p *process, m *meiro, still, timeout time.Duration) int {
	t.Helper()
	lines, attempts, since := len(archived(t, p.dataDir)), m.attemptCount(), time.Now()
	waitFor(t, "the archive to stop growing while Meiro Events is asked again", timeout, func() bool {
		if n := len(archived(t, p.dataDir)); n != lines {
			lines, attempts, since = n, m.attemptCount(), time.Now()
			return false
		}
		return time.Since(since) >= still && m.attemptCount() > attempts
	})
	return lines
}

// What docs/destinations.md says of fan_out behind one queue: while Meiro Events is
// down the archive stops too, once the events in flight are archived; the
// rest waits in the queue; after a restart the archive receives again what
// it already had; nothing is lost.
func TestFanOutBehindOneQueueHoldsTheHealthyDestinationBack(t *testing.T) {
	m := newMeiro(t)
	m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
	conf, dir := oneQueueFanOut(t), t.TempDir()
	p := startProcess(t, options{config: conf, dir: dir, env: m.env()})
	markers := postMarkedEvents(t, p, "fan-out", 200)

	// fan_out retries Meiro Events in place (Benthos's indefinite retry: 0.5 s
	// growing to 3 s between attempts, up to 4.5 s with its jitter of a
	// half), so the archive has what it will get once it stopped growing for
	// longer than that while Meiro Events kept being asked. A count of attempts cannot say it: how many events are in
	// flight, each retried on its own, depends on how the posts were timed.
	down := time.Now()
	before := waitArchiveStill(t, p, m, 8*time.Second, 90*time.Second)
	t.Logf("Meiro Events down: asked %d times in %s", m.attemptCount(), time.Since(down).Round(time.Millisecond))
	if before == 0 || before >= len(markers) {
		t.Fatalf("the archive holds %d of %d events while Meiro Events is down; want some, not all", before, len(markers))
	}
	// None is acknowledged until both outputs took it: all wait in the queue.
	waitQueued(t, p, len(markers))
	t.Logf("Meiro Events down: the archive got %d of %d events, then stopped", before, len(markers))

	// A restart while Meiro Events is still down: the archive is sent again
	// what it already had, since the queue never saw those events acknowledged.
	p.kill()
	p = startProcess(t, options{config: conf, dir: dir, env: m.env()})
	waitFor(t, "repeats in the archive after the restart", 30*time.Second, func() bool {
		return len(archived(t, p.dataDir)) > before
	})

	m.setRespond(func([]byte) int { return http.StatusOK })
	waitDelivered(t, m, markers, 60*time.Second)
	// fan_out writes to both outputs at once; the archive's last batch may
	// land a moment after Meiro Events had the last event.
	waitFor(t, "every event in the archive", 30*time.Second, func() bool {
		counts := markerCounts(t, archived(t, p.dataDir))
		for _, mk := range markers {
			if counts[mk] == 0 {
				return false
			}
		}
		return true
	})
	lines := archived(t, p.dataDir)
	counts := markerCounts(t, lines)
	repeats := 0
	for _, mk := range markers {
		n := counts[mk]
		if n == 0 {
			t.Errorf("%s never reached the archive", mk)
		}
		repeats += max(n-1, 0)
	}
	if repeats == 0 {
		t.Error("no event reached the archive twice after the restart")
	}
	t.Logf("after the restart and recovery: %d archive lines for %d events (%d repeats)", len(lines), len(markers), repeats)
}
