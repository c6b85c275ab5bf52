package tests

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/testing/testkit"
)

// What an archive replay does with hours it cannot read whole, and what the
// archive does with a damaged hour file it finds at start, through the
// built binary and the shipped configs.

// clearOfTheHourEnd waits for the next hour when less than need is left of
// this one, so that every post of a test lands in the same hour file.
func clearOfTheHourEnd(t *testing.T, need time.Duration) {
	t.Helper()
	if left := time.Until(time.Now().Truncate(time.Hour).Add(time.Hour)); left < need {
		t.Logf("waiting %s for the next hour", left.Round(time.Second))
		time.Sleep(left + time.Second)
	}
}

// gzipMembers are the byte ranges [start, end) of the gzip members of data.
func gzipMembers(t *testing.T, data []byte) [][2]int {
	t.Helper()
	r := bytes.NewReader(data) // an io.ByteReader: gzip reads no further than each member
	var zr gzip.Reader
	var members [][2]int
	for r.Len() > 0 {
		start := len(data) - r.Len()
		if err := zr.Reset(r); err != nil {
			t.Fatalf("member at byte %d: %v", start, err)
		}
		zr.Multistream(false)
		if _, err := io.Copy(io.Discard, &zr); err != nil {
			t.Fatalf("member at byte %d: %v", start, err)
		}
		members = append(members, [2]int{start, len(data) - r.Len()})
	}
	return members
}

func gunzipLines(t *testing.T, member []byte) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(member))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// receivedExactly checks that Meiro Events accepted exactly lines, each
// byte for byte and once, in any order.
func receivedExactly(t *testing.T, m *meiro, lines []string) {
	t.Helper()
	var got []string
	for _, b := range m.received() {
		got = append(got, string(b))
	}
	want := slices.Clone(lines)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Meiro Events received %d events, want exactly the %d archived lines (first received: %.200q)", len(got), len(want), strings.Join(got, "\n"))
	}
}

// mustFailNaming checks that a replay exited by itself with status 3 (the
// run ended without doing all it was asked) and said so on a line naming
// each of what.
func mustFailNaming(t *testing.T, out []byte, err error, what ...string) {
	t.Helper()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("the replay did not exit by itself with status 3: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		named := true
		for _, w := range what {
			named = named && strings.Contains(line, w)
		}
		if named {
			return
		}
	}
	t.Errorf("no line of the replay's output names %q:\n%s", what, out)
}

// gzipArchiveRecipe is archive-only.yaml with gzip on, in a folder of its
// own, clear of the end of the hour so that every batch lands in one file.
func gzipArchiveRecipe(t *testing.T) (conf, dir string, env map[string]string) {
	t.Helper()
	clearOfTheHourEnd(t, 2*time.Minute)
	return recipe(t, "destinations/archive-only.yaml"), t.TempDir(), map[string]string{"NETCORE_ARCHIVE_GZIP": "true"}
}

// archiveBatches runs conf and posts batches of perBatch events, each
// archived (and so a gzip member of its own) before the next, then stops it
// and returns the one hour file they are in and its hour.
func archiveBatches(t *testing.T, conf, dir string, env map[string]string, batches, perBatch int) (p *process, path string, hour time.Time) {
	t.Helper()
	p = startProcess(t, options{config: conf, dir: dir, env: env})
	for i := range batches {
		postMarkedEvents(t, p, fmt.Sprintf("batch%d", i), perBatch)
		waitFor(t, fmt.Sprintf("%d events archived", perBatch*(i+1)), 20*time.Second, func() bool {
			return sumMetric(scrape(t, p), "netcore_events_archived_total", "") >= float64(perBatch*(i+1))
		})
	}
	p.stop(t)
	files := archiveFiles(t, p.dataDir)
	if len(files) != 1 || len(archived(t, p.dataDir)) != batches*perBatch {
		t.Fatalf("premise: the %d acknowledged events in one hour file, got %v", batches*perBatch, files)
	}
	return p, files[0], hourOf(t, files[0])
}

// One flipped byte in the 2nd of 3 gzip members: a replay sends every event
// of the 1st and 3rd, names the damage and exits non-zero; the archive
// started again moves the file aside whole instead of cutting it, and a
// replay of the hour still finds the intact events there.
func TestArchiveDamagedGzipMemberIsReportedAndNeverCut(t *testing.T) {
	conf, dir, env := gzipArchiveRecipe(t)
	p, path, hour := archiveBatches(t, conf, dir, env, 3, 50)
	rel := filepath.ToSlash(strings.TrimPrefix(path, filepath.Join(p.dataDir, "archive")+string(filepath.Separator)))

	data := readFile(t, path)
	members := gzipMembers(t, data)
	if len(members) < 3 {
		t.Fatalf("premise: 3 posts written as at least 3 gzip members, got %d", len(members))
	}
	var kept []string
	for i, mb := range members {
		if i != 1 {
			kept = append(kept, gunzipLines(t, data[mb[0]:mb[1]])...)
		}
	}
	damagedAt := members[1][0]
	data[(members[1][0]+members[1][1])/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}

	m := newMeiro(t)
	out, err := runWithin(replayCommand(t, p.dataDir, m, hour, hour.Add(time.Hour)), 60*time.Second)
	mustFailNaming(t, out, err, rel, "byte "+strconv.Itoa(damagedAt))
	receivedExactly(t, m, kept)

	// Started again, the archive appends to that hour: the damaged file is
	// moved aside whole, counted, and a new one takes the new events.
	p = startProcess(t, options{config: conf, dir: dir, env: env})
	after := postMarkedEvents(t, p, "after", 10)
	waitFor(t, "10 events archived", 20*time.Second, func() bool {
		return sumMetric(scrape(t, p), "netcore_events_archived_total", "") >= 10
	})
	if n := sumMetric(scrape(t, p), "netcore_archive_files_damaged_total", ""); n != 1 {
		t.Errorf("netcore_archive_files_damaged_total %v, want 1", n)
	}
	p.stop(t)
	aside, _ := filepath.Glob(filepath.Join(filepath.Dir(path), hour.Format("15")+".damaged-*.jsonl.gz"))
	if len(aside) != 1 {
		t.Fatalf("the damaged file was not moved aside as %s.damaged-<unix>.jsonl.gz: %v\n%s", hour.Format("15"), aside, p.stdout)
	}
	if !bytes.Equal(readFile(t, aside[0]), data) {
		t.Errorf("%s does not hold the damaged file's bytes unchanged", aside[0])
	}
	if !strings.Contains(p.stdout.String(), filepath.Base(aside[0])) {
		t.Errorf("the log does not name %s:\n%s", aside[0], p.stdout)
	}
	if got := markerCounts(t, archiveLines(t, path)); len(got) != len(after) {
		t.Errorf("the new hour file holds %v, want the %d events posted after the restart", got, len(after))
	}

	m = newMeiro(t)
	out, err = runWithin(replayCommand(t, p.dataDir, m, hour, hour.Add(time.Hour)), 60*time.Second)
	mustFailNaming(t, out, err, filepath.Base(aside[0]), "byte "+strconv.Itoa(damagedAt))
	receivedExactly(t, m, append(kept, archiveLines(t, path)...))
}

// An hour file that cannot be read (as root any mode can be read, so a
// directory stands where the file should be): the replay sends every other
// hour, names the file and exits non-zero, instead of trying for ever.
func TestArchiveReplayOfAnUnreadableHourFileFailsNamingIt(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	h := time.Date(2026, 11, 28, 7, 0, 0, 0, time.UTC)
	writeHourFile(t, dataDir, h, `{"marker":"before"}`+"\n")
	writeHourFile(t, dataDir, h.Add(2*time.Hour), `{"marker":"after"}`+"\n")
	if err := os.MkdirAll(filepath.Join(dataDir, "archive", "2026-11-28", "08.jsonl"), 0o750); err != nil {
		t.Fatal(err)
	}
	m := newMeiro(t)
	out, err := runWithin(replayCommand(t, dataDir, m, h, h.Add(3*time.Hour)), 30*time.Second)
	mustFailNaming(t, out, err, "2026-11-28/08.jsonl")
	receivedExactly(t, m, []string{`{"marker":"before"}`, `{"marker":"after"}`})
}

// A range of 8,000 years starts sending at once, and SIGTERM ends a replay
// that cannot deliver within a second or two, saying it did not finish.
func TestArchiveReplayOfAVastRangeStartsAtOnceAndStopsOnSIGTERM(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	writeHourFile(t, dataDir, time.Date(2026, 11, 28, 7, 0, 0, 0, time.UTC), `{"marker":"only"}`+"\n")
	m := newMeiro(t)
	m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
	replay := replayCommand(t, dataDir, m, time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC))
	out := &testkit.SyncBuffer{}
	replay.Stdout, replay.Stderr = out, out
	if err := replay.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- replay.Wait() }()
	t.Cleanup(func() { _ = replay.Process.Kill() })
	waitFor(t, "the range's event sent to Meiro Events", 10*time.Second, func() bool { return m.attemptCount() > 0 })

	_ = replay.Process.Signal(syscall.SIGTERM)
	signalled := time.Now()
	select {
	case err := <-exited:
		took := time.Since(signalled)
		t.Logf("the replay ended %s after SIGTERM", took.Round(time.Millisecond))
		if took > 3*time.Second {
			t.Errorf("the replay took %s to end after SIGTERM, want a second or two", took)
		}
		mustFailNaming(t, []byte(out.String()), err, "stopped before the end of the range")
	case <-time.After(30 * time.Second):
		t.Fatalf("the replay still runs 30s after SIGTERM:\n%s", out)
	}
}

// The bytes Meiro Events gets from an archive replay are the bytes it was
// sent the first time: numbers, key order, escapes and repeated keys.
func TestArchiveReplaySendsTheBytesMeiroEventsWasSentFirst(t *testing.T) {
	m := newMeiro(t)
	p := startStreams(t, m.env(), recipe(t, "destinations/meiro-and-archive"), t.TempDir())
	from := time.Now().UTC().Truncate(time.Hour)
	events := []string{
		`{"marker":"numbers","event_params":{"ts":240301101500,"big":12345678901234567890123,"price":45999.50,"small":1E-7,"neg":-0.0}}`,
		`{"z":1,"marker":"key order","a":{"y":2,"b":3}}`,
		`{"marker":"escapes","name":"Ren\u00e9e","lone":"\ud800","slash":"a\/b","quote":"\"x\"","tab":"\t"}`,
		`{"marker":"repeated keys","dup":1,"dup":2}`,
	}
	body := []byte(`{"exact":[` + strings.Join(events, ",") + `]}`)
	if status, err := postJSON(p.webhook, body); err != nil || status != http.StatusOK {
		t.Fatalf("posting: %d %v", status, err)
	}
	markers := []string{"numbers", "key order", "escapes", "repeated keys"}
	waitDelivered(t, m, markers, 30*time.Second)
	waitFor(t, "4 events in the archive", 20*time.Second, func() bool { return len(archived(t, p.dataDir)) >= 4 })
	to := time.Now().UTC().Truncate(time.Hour).Add(time.Hour)
	p.stop(t)
	first := m.received()
	for _, want := range []string{`"big":12345678901234567890123`, `45999.50`, `\u00e9`, `\ud800`, `"dup":1,"dup":2`, `{"z":1,"marker":"key order","a":{"y":2,"b":3}`} {
		if !bytes.Contains(bytes.Join(first, nil), []byte(want)) {
			t.Errorf("premise: Meiro Events was first sent %s as posted; it got\n%s", want, bytes.Join(first, []byte("\n")))
		}
	}

	again := newMeiro(t)
	if out, err := runWithin(replayCommand(t, p.dataDir, again, from, to), 60*time.Second); err != nil {
		t.Fatalf("the replay did not exit by itself with success: %v\n%s", err, out)
	}
	var want []string
	for _, b := range first {
		want = append(want, string(b))
	}
	receivedExactly(t, again, want)
}

// flagRunningToTheEnd sets a flag in the header of the last member, at
// start, that makes the gzip header read run into the end of the file, as
// a member cut short would: FEXTRA (a length from the compressed data),
// FNAME or FCOMMENT (a text ended by a zero byte).
func flagRunningToTheEnd(t *testing.T, data []byte, start int) []byte {
	t.Helper()
	for _, flag := range []byte{0x04, 0x08, 0x10} {
		spoilt := bytes.Clone(data)
		spoilt[start+3] |= flag
		if _, err := gzip.NewReader(bytes.NewReader(spoilt[start:])); errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return spoilt
		}
	}
	t.Fatal("premise: no flag makes the last member's header run into the end of the file")
	return nil
}

// The flag byte of the last gzip member flipped after it was written and
// acknowledged: the archive started again keeps every byte of the file
// (before, the header read ran into the end of the file, the member was
// taken for a torn write and cut off), and a replay of the hour sends the
// rest and exits 3 naming the damaged member.
func TestArchiveFlippedFlagByteOfTheLastMemberLosesNoByte(t *testing.T) {
	conf, dir, env := gzipArchiveRecipe(t)
	_, path, hour := archiveBatches(t, conf, dir, env, 2, 20)
	data := readFile(t, path)
	members := gzipMembers(t, data)
	last := members[len(members)-1]
	var kept []string
	for _, mb := range members[:len(members)-1] {
		kept = append(kept, gunzipLines(t, data[mb[0]:mb[1]])...)
	}
	data = flagRunningToTheEnd(t, data, last[0])
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}

	p := startProcess(t, options{config: conf, dir: dir, env: env})
	postMarkedEvents(t, p, "after", 5)
	waitFor(t, "5 events archived", 20*time.Second, func() bool {
		return sumMetric(scrape(t, p), "netcore_events_archived_total", "") >= 5
	})
	p.stop(t)
	beside, _ := filepath.Glob(filepath.Join(filepath.Dir(path), hour.Format("15")+".*-*.jsonl.gz"))
	var keptBytes []byte
	for _, f := range beside {
		keptBytes = append(keptBytes, readFile(t, f)...)
	}
	if !bytes.Contains(append(keptBytes, readFile(t, path)...), data) {
		t.Fatalf("bytes of the acknowledged hour file are lost: the files beside it (%v) and the hour file do not hold its %d bytes\n%s", beside, len(data), p.stdout)
	}

	m := newMeiro(t)
	out, err := runWithin(replayCommand(t, p.dataDir, m, hour, hour.Add(time.Hour)), 60*time.Second)
	mustFailNaming(t, out, err, "byte "+strconv.Itoa(last[0]))
	receivedExactly(t, m, append(kept, archiveLines(t, path)...))
}
