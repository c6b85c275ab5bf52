package archive

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/stage"
	"github.com/netcore-connect/netcore-connect/internal/testing/powercut"
)

func newTestOutput(t *testing.T, yaml string) *archiveOutput {
	t.Helper()
	conf, err := outputSpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newOutputFromConfig(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	return a
}

// event is a message as netcore_webhook and netcore_explode hand it over.
func event(body, receivedAt string) *service.Message {
	msg := service.NewMessage([]byte(body))
	if receivedAt != "" {
		msg.MetaSetMut(stage.MetaReceivedAt, receivedAt)
	}
	return msg
}

func write(t *testing.T, a *archiveOutput, batch ...*service.Message) {
	t.Helper()
	if err := a.WriteBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
}

// archiveLines reads an archive file as a user would: zcat for .gz.
func archiveLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		t.Fatalf("%s does not end with a whole line: %q", path, b)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func equalLines(t *testing.T, path string, want ...string) {
	t.Helper()
	got := archiveLines(t, path)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s holds\n%s\nwant\n%s", path, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestOutputFilesEachEventUnderTheUTCHourItWasReceived(t *testing.T) {
	dir := t.TempDir()
	a := newTestOutput(t, "dir: "+dir)
	a.now = func() time.Time { return time.Date(2026, 11, 28, 9, 15, 0, 0, time.UTC) }
	big := `{"id":12345678901234567890,"price":45999.50,"city":"Thane&Kalyan <x>"}`
	write(t, a,
		event(big, "2026-11-28T12:59:59.999999999Z"),
		event(`{"n":2}`, "2026-11-28T13:00:00Z"),
		event(`{"n":3}`, "2026-11-28T18:29:59+05:30"), // 12:59:59 UTC
		event(`{"n":4}`, "2026-11-27T23:59:59Z"),
		event(`{"n":5}`, ""),           // no receive time: the time of writing
		event(`{"n":6}`, "not a time"), // the same
	)
	equalLines(t, filepath.Join(dir, "2026-11-28", "12.jsonl"), big, `{"n":3}`)
	equalLines(t, filepath.Join(dir, "2026-11-28", "13.jsonl"), `{"n":2}`)
	equalLines(t, filepath.Join(dir, "2026-11-27", "23.jsonl"), `{"n":4}`)
	equalLines(t, filepath.Join(dir, "2026-11-28", "09.jsonl"), `{"n":5}`, `{"n":6}`)

	// A later batch appends, in order.
	write(t, a, event(`{"n":7}`, "2026-11-28T13:30:00Z"))
	equalLines(t, filepath.Join(dir, "2026-11-28", "13.jsonl"), `{"n":2}`, `{"n":7}`)
}

func TestOutputPutsAnEventSpanningLinesOnOne(t *testing.T) {
	dir := t.TempDir()
	a := newTestOutput(t, "dir: "+dir)
	write(t, a,
		event("{\n  \"id\": 12345678901234567890,\n  \"s\": \"a b\"\n}", "2026-11-28T13:00:00Z"),
		event("not\njson", "2026-11-28T13:00:00Z"))
	equalLines(t, filepath.Join(dir, "2026-11-28", "13.jsonl"), `{"id":12345678901234567890,"s":"a b"}`, `"not\njson"`)
}

func TestOutputGzipWritesOneMemberPerBatchReadableWhole(t *testing.T) {
	dir := t.TempDir()
	a := newTestOutput(t, "dir: "+dir+"\ngzip: true")
	write(t, a, event(`{"n":1}`, "2026-11-28T13:00:00Z"), event(`{"n":2}`, "2026-11-28T13:10:00Z"))
	write(t, a, event(`{"n":3}`, "2026-11-28T13:20:00Z"))
	path := filepath.Join(dir, "2026-11-28", "13.jsonl.gz")
	equalLines(t, path, `{"n":1}`, `{"n":2}`, `{"n":3}`)
	if _, err := os.Stat(filepath.Join(dir, "2026-11-28", "13.jsonl")); !os.IsNotExist(err) {
		t.Errorf("a plain file was written next to the gzip one: %v", err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	if n := gzipMembers(t, f); n != 2 {
		t.Errorf("%d gzip members, want one per batch: 2", n)
	}
}

func gzipMembers(t *testing.T, f *os.File) int {
	t.Helper()
	r := bufio.NewReader(f) // one reader throughout, so no member is skipped
	zr, err := gzip.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		zr.Multistream(false)
		if _, err := io.Copy(io.Discard, zr); err != nil {
			t.Fatal(err)
		}
		n++
		if err := zr.Reset(r); errors.Is(err, io.EOF) {
			return n
		} else if err != nil {
			t.Fatal(err)
		}
	}
}

// syncSpy stands in for fsync(2) only: it records which files were synced
// and what they held at that moment, then syncs them for real.
type syncSpy struct {
	synced map[string]string
	fail   error
}

func (s *syncSpy) sync(f *os.File) error {
	if s.fail != nil {
		return s.fail
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		return err
	}
	s.synced[f.Name()] = string(b)
	return f.Sync()
}

func TestOutputSyncsEveryFileOfABatchOnceBeforeAcknowledging(t *testing.T) {
	dir := t.TempDir()
	a := newTestOutput(t, "dir: "+dir)
	spy := &syncSpy{synced: map[string]string{}}
	a.syncFile = spy.sync
	write(t, a,
		event(`{"n":1}`, "2026-11-28T12:00:00Z"), event(`{"n":2}`, "2026-11-28T13:00:00Z"), event(`{"n":3}`, "2026-11-28T12:30:00Z"))
	want := map[string]string{
		filepath.Join(dir, "2026-11-28", "12.jsonl"): "{\"n\":1}\n{\"n\":3}\n",
		filepath.Join(dir, "2026-11-28", "13.jsonl"): "{\"n\":2}\n",
	}
	if len(spy.synced) != len(want) {
		t.Fatalf("synced %d files, want one sync per hour file: %v", len(spy.synced), spy.synced)
	}
	for path, content := range want {
		if spy.synced[path] != content {
			t.Errorf("%s held %q when synced, want the whole batch %q", path, spy.synced[path], content)
		}
	}
}

func TestOutputFailedSyncFailsTheBatchAndLeavesNothingOfIt(t *testing.T) {
	dir := t.TempDir()
	a := newTestOutput(t, "dir: "+dir)
	write(t, a, event(`{"n":1}`, "2026-11-28T12:00:00Z"))
	a.syncFile = (&syncSpy{fail: errors.New("input/output error")}).sync
	err := a.WriteBatch(context.Background(), service.MessageBatch{
		event(`{"n":2}`, "2026-11-28T12:00:00Z"), event(`{"n":3}`, "2026-11-28T13:00:00Z")})
	if err == nil || !strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("a failed fsync was not reported: %v", err)
	}
	// The batch was appended, then cut off again: the retried batch will not
	// leave a copy of itself behind.
	equalLines(t, filepath.Join(dir, "2026-11-28", "12.jsonl"), `{"n":1}`)
	if b, _ := os.ReadFile(filepath.Join(dir, "2026-11-28", "13.jsonl")); len(b) != 0 {
		t.Errorf("13.jsonl kept %q of the failed batch", b)
	}
	a.syncFile = (*os.File).Sync
	write(t, a, event(`{"n":2}`, "2026-11-28T12:00:00Z"), event(`{"n":3}`, "2026-11-28T13:00:00Z"))
	equalLines(t, filepath.Join(dir, "2026-11-28", "12.jsonl"), `{"n":1}`, `{"n":2}`)
	equalLines(t, filepath.Join(dir, "2026-11-28", "13.jsonl"), `{"n":3}`)
}

func TestOutputFailedWriteFailsTheBatchAndLeavesNothingOfIt(t *testing.T) {
	dir := t.TempDir()
	a := newTestOutput(t, "dir: "+dir)
	write(t, a, event(`{"n":1}`, "2026-11-28T12:00:00Z"))
	// 13.jsonl cannot be created: a folder is in its way.
	if err := os.Mkdir(filepath.Join(dir, "2026-11-28", "13.jsonl"), 0o750); err != nil {
		t.Fatal(err)
	}
	err := a.WriteBatch(context.Background(), service.MessageBatch{
		event(`{"n":2}`, "2026-11-28T12:00:00Z"), event(`{"n":3}`, "2026-11-28T13:00:00Z")})
	if err == nil {
		t.Fatal("a batch whose hour file cannot be opened was acknowledged")
	}
	equalLines(t, filepath.Join(dir, "2026-11-28", "12.jsonl"), `{"n":1}`)
}

// A crash halfway through appending a batch leaves a torn record; the
// restarted output cuts it off before appending the events that come again.
func TestOutputCutsATornTailLeftByACrash(t *testing.T) {
	for _, c := range []struct {
		name string
		gzip bool
		cut  func(appended int) int // bytes of the torn batch left on disk
	}{
		{"plain, within a line", false, func(int) int { return 3 }},
		{"gzip, within the header", true, func(int) int { return 3 }},
		{"gzip, within the trailer", true, func(n int) int { return n - 1 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := "dir: " + dir
			path := filepath.Join(dir, "2026-11-28", "13.jsonl")
			if c.gzip {
				conf += "\ngzip: true"
				path += ".gz"
			}
			before := newTestOutput(t, conf)
			write(t, before, event(`{"n":1}`, "2026-11-28T13:00:00Z"))
			whole, _ := os.ReadFile(path)
			write(t, before, event(`{"n":2}`, "2026-11-28T13:00:00Z"), event(`{"n":3}`, "2026-11-28T13:00:00Z"))
			tearOff(t, path, len(whole), c.cut)

			after := newTestOutput(t, conf) // the restarted process
			write(t, after, event(`{"n":2}`, "2026-11-28T13:00:00Z"), event(`{"n":3}`, "2026-11-28T13:00:00Z"))
			equalLines(t, path, `{"n":1}`, `{"n":2}`, `{"n":3}`)
		})
	}
}

// tearOff cuts the file short within what was appended after its first
// whole bytes, as a crash during the write would.
func tearOff(t *testing.T, path string, whole int, cut func(appended int) int) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	appended := int(info.Size()) - whole
	if appended < 4 {
		t.Fatalf("nothing was appended after the first batch")
	}
	if err := os.Truncate(path, int64(whole+cut(appended))); err != nil {
		t.Fatal(err)
	}
}

func TestOutputRetentionRemovesOldHoursAtStart(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC()
	old := hourFile(dir, now.Add(-49*time.Hour), false)
	oldGz := hourFile(dir, now.Add(-49*time.Hour), true)
	kept := hourFile(dir, now.Add(-47*time.Hour), false)
	for _, p := range []string{old, oldGz, kept} {
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("{}\n"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	newTestOutput(t, "dir: "+dir+"\nretention_days: 2")
	for _, p := range []string{old, oldGz} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s, of an hour older than 2 days, was kept: %v", p, err)
		}
	}
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("%s, of an hour within 2 days, was removed: %v", kept, err)
	}
}

func TestOutputRejectsANegativeRetention(t *testing.T) {
	conf, err := outputSpec().ParseYAML("dir: /tmp/x\nretention_days: -1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newOutputFromConfig(conf, service.MockResources()); err == nil {
		t.Error("retention_days: -1 was accepted")
	}
}

// A process killed between creating an hour file and syncing its folders
// leaves a name a power cut can take. After a restart, the first batch
// into that file makes it durable, so a power cut then keeps the file and
// the event fsync'd into it.
func TestOutputMakesAFileLeftUnsyncedByACrashDurable(t *testing.T) {
	disk := powercut.MountForTest(t)
	dir := disk.Path("archive")
	newTestOutput(t, "dir: "+dir) // makes the archive folder durable
	// What the killed process left: a date folder and an hour file, created
	// but never synced into their folders.
	hour := filepath.Join(dir, "2026-11-28", "12.jsonl")
	if err := os.Mkdir(filepath.Dir(hour), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hour, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	restarted := newTestOutput(t, "dir: "+dir)
	// And a file and date folder created by this batch.
	created := filepath.Join(dir, "2026-11-29", "00.jsonl")
	write(t, restarted, event(`{"n":1}`, "2026-11-28T12:30:00Z"), event(`{"n":2}`, "2026-11-29T00:10:00Z"))
	disk.Cut(t, nil, nil)
	for _, f := range []string{hour, created} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("an acknowledged event's hour file is gone after a power cut: %v", err)
		}
	}
	equalLines(t, hour, `{"n":1}`)
	equalLines(t, created, `{"n":2}`)
}

// An event received longer ago than the retention (a backlog older than it)
// is archived and acknowledged like any other; the next round removes its
// hour, and only that one.
func TestOutputArchivesALateEventAndTheNextRoundRemovesIt(t *testing.T) {
	dir := t.TempDir()
	a := newTestOutput(t, "dir: "+dir+"\nretention_days: 2")
	now := time.Now().UTC()
	late := now.Add(-72 * time.Hour)
	write(t, a, event(`{"n":1}`, late.Format(time.RFC3339)), event(`{"n":2}`, now.Format(time.RFC3339)))
	lateFile, current := hourFile(dir, late, false), hourFile(dir, now, false)
	equalLines(t, lateFile, `{"n":1}`)
	a.expire()
	if _, err := os.Stat(lateFile); !os.IsNotExist(err) {
		t.Errorf("%s, of an hour older than 2 days, was kept by the next round: %v", lateFile, err)
	}
	equalLines(t, current, `{"n":2}`)
}
