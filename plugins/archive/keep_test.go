package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/runstatus"
)

// asideFiles are the files kept beside an hour file (moved aside as
// damaged, or a torn tail copied aside), with their bytes.
func asideFiles(t *testing.T, path string) map[string][]byte {
	t.Helper()
	dir, name := filepath.Split(path)
	hh, _, _ := strings.Cut(name, ".")
	found, err := filepath.Glob(filepath.Join(dir, hh+".*-*"))
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string][]byte{}
	for _, f := range found {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		kept[filepath.Base(f)] = b
	}
	return kept
}

// keptWhole checks that before, the bytes of an hour file found at start,
// are all still on disk after the output checked it: in the hour file and
// the files kept beside it, in that order or with the hour file after.
func keptWhole(t *testing.T, path string, before []byte) {
	t.Helper()
	now, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var all [][]byte
	for _, b := range asideFiles(t, path) {
		all = append(all, b)
	}
	for _, b := range all {
		if bytes.Equal(b, before) || bytes.Equal(append(bytes.Clone(now), b...), before) {
			return
		}
	}
	if bytes.Equal(now, before) {
		return
	}
	t.Errorf("bytes lost: the file held %d bytes, now %d, and %d file(s) beside it hold none of the rest", len(before), len(now), len(all))
}

// A last gzip member whose header flag byte flipped is damage, not a torn
// tail: the writer never sets a flag, so such a header was written whole
// and changed later. Before, the header read ran to the end of the file
// and the member was cut off as torn.
func TestExamineCallsAFlaggedLastMemberDamage(t *testing.T) {
	path, m := threeMembers(t, t.TempDir())
	flip(t, path, m[2]+3)
	l := scan(t, path)
	if len(l.damaged) != 1 || l.damaged[0].span != (span{m[2], m[3]}) || l.torn != l.size {
		t.Errorf("members at %v, the last one's flags flipped: damaged %v, torn at %d of %d; want the last member damaged, nothing torn", m, l.damaged, l.torn, l.size)
	}
}

// A torn tail is copied aside, fsync'd, before it is cut off, so that no
// byte is ever lost even when the judgement "torn" is wrong (a damaged last
// member, a flipped final newline).
func TestOutputKeepsATornTailAsideBeforeCuttingIt(t *testing.T) {
	for _, gzipped := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "gzip"}[gzipped], func(t *testing.T) {
			dir := t.TempDir()
			conf, path, ext := "dir: "+dir, filepath.Join(dir, "2026-11-28", "13.jsonl"), ".jsonl"
			if gzipped {
				conf, path, ext = conf+"\ngzip: true", path+".gz", ext+".gz"
			}
			before := newTestOutput(t, conf)
			write(t, before, event(`{"n":1}`, "2026-11-28T13:00:00Z"))
			whole, _ := os.ReadFile(path)
			write(t, before, event(`{"n":2}`, "2026-11-28T13:00:00Z"))
			tearOff(t, path, len(whole), func(n int) int { return n - 1 })
			found, _ := os.ReadFile(path)

			after := newTestOutput(t, conf)
			after.now = func() time.Time { return time.Unix(1764321234, 0) }
			write(t, after, event(`{"n":2}`, "2026-11-28T13:00:00Z"))
			equalLines(t, path, `{"n":1}`, `{"n":2}`)
			torn := asideFiles(t, path)["13.torn-1764321234"+ext]
			if !bytes.Equal(torn, found[len(whole):]) {
				t.Errorf("13.torn-1764321234%s holds %q, want the %d torn bytes cut off", ext, torn, len(found)-len(whole))
			}
		})
	}
}

// Every bit of the last gzip member flipped in turn: whatever the output
// makes of the file at start, not a byte of it is lost.
func TestNoBitFlipInTheLastMemberLosesAByte(t *testing.T) {
	dir := t.TempDir()
	path, m := threeMembers(t, dir)
	// A last member of a few hundred bytes, as a batch of a few events makes.
	var batch []*service.Message
	for i := range 8 {
		batch = append(batch, event(fmt.Sprintf(`{"event_id":"e-%d","panel_name":"journey %d","n":%d}`, i, i*7, i*i), "2026-11-28T13:00:00Z"))
	}
	write(t, newTestOutput(t, "dir: "+dir+"\ngzip: true"), batch...)
	original, _ := os.ReadFile(path)
	start, end := m[3], int64(len(original))
	counts := map[string]int{}
	for off := start; off < end; off++ {
		for bit := range 8 {
			spoilt := bytes.Clone(original)
			spoilt[off] ^= 1 << bit
			if err := os.WriteFile(path, spoilt, 0o640); err != nil {
				t.Fatal(err)
			}
			l := scan(t, path)
			switch {
			case len(l.damaged) > 0:
				counts["damaged"]++
				continue // moved aside whole: TestOutputMovesADamagedFileAside...
			case l.torn == l.size:
				counts["whole"]++ // a flip the gzip header does not check (MTIME, XFL, OS)
				continue
			}
			counts["torn"]++
			a := newTestOutput(t, "dir: "+dir+"\ngzip: true")
			a.now = func() time.Time { return time.Unix(int64(1e9)+off*8+int64(bit), 0) }
			if err := a.checkFound(path, true); err != nil {
				t.Fatal(err)
			}
			keptWhole(t, path, spoilt)
			for name := range asideFiles(t, path) {
				os.Remove(filepath.Join(filepath.Dir(path), name))
			}
		}
	}
	t.Logf("%d bit flips in a last member of %d bytes: %v", 8*(end-start), end-start, counts)
	if counts["torn"] == 0 || counts["damaged"] == 0 {
		t.Errorf("premise: flips judged both torn and damaged, got %v", counts)
	}
}

// A torn tail in a file no one has written for over a minute is no write in
// progress: the replay cannot tell a crash from damage to acknowledged
// events, so it reports the bytes and the run exits 3.
func TestReplayReportsATornTailOfAFileNotBeingWritten(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "2026-11-28", "13.jsonl")
	writeFile(t, path, "{\"n\":1}\n{\"n\":2}")
	old := time.Now().Add(-2 * time.Minute)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	before := runstatus.Reports()
	got := replay(t, dir, "2026-11-28T13:00:00Z", "2026-11-28T14:00:00Z", false)
	if bodies(got) != `{"n":1}` {
		t.Errorf("replayed\n%s", bodies(got))
	}
	newReports := reportsSince(before)
	if len(newReports) != 1 || !strings.Contains(newReports[0], "2026-11-28/13.jsonl: the last 7 bytes") {
		t.Errorf("the replay reported %q, want the 7 bytes of the torn tail", newReports)
	}
}

// reportsSince are the runstatus reports made since before was taken (a
// replay's pending report comes and goes, so counting would not do).
func reportsSince(before []string) []string {
	seen := map[string]int{}
	for _, r := range before {
		seen[r]++
	}
	var made []string
	for _, r := range runstatus.Reports() {
		if seen[r] > 0 {
			seen[r]--
			continue
		}
		made = append(made, r)
	}
	return made
}

// connectedInput is a netcore_archive input over [from, to) that has listed
// its files.
func connectedInput(t *testing.T, dir, from, to string) *archiveInput {
	t.Helper()
	conf, err := inputSpec().ParseYAML("dir: "+dir+"\nfrom: "+from+"\nto: "+to, nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := newInputFromConfig(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	return in
}

// readAll reads and acknowledges every message until the input ends.
func readAll(t *testing.T, in *archiveInput) []string {
	t.Helper()
	ctx := context.Background()
	var got []string
	for {
		msg, ack, err := in.Read(ctx)
		if errors.Is(err, service.ErrEndOfInput) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := msg.AsBytes()
		got = append(got, string(b))
		if err := ack(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// A file listed at the start and gone when its turn comes: moved aside as
// damaged by a receiver started meanwhile, the replay reads it there; gone
// for good (retention), it is reported.
func TestReplayOfAFileGoneSinceTheStart(t *testing.T) {
	t.Run("moved aside as damaged", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "2026-11-28", "13.jsonl.gz")
		threeMembers(t, dir)
		in := connectedInput(t, dir, "2026-11-28T13:00:00Z", "2026-11-28T14:00:00Z")
		before := runstatus.Reports()
		if err := os.Rename(path, asideFile(path, damagedInfix, time.Unix(1764321234, 0))); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, in); len(got) != 6 {
			t.Errorf("replayed %q, want the 6 events of the file moved aside", got)
		}
		if r := reportsSince(before); len(r) != 0 {
			t.Errorf("reported %q, want nothing", r)
		}
	})
	t.Run("removed", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "2026-11-28", "13.jsonl")
		writeFile(t, path, "{\"n\":1}\n")
		in := connectedInput(t, dir, "2026-11-28T13:00:00Z", "2026-11-28T14:00:00Z")
		before := runstatus.Reports()
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, in); len(got) != 0 {
			t.Errorf("replayed %q from a file removed", got)
		}
		if r := reportsSince(before); len(r) != 1 || !strings.Contains(r[0], "2026-11-28/13.jsonl was in the range") {
			t.Errorf("reported %q, want the file removed named", r)
		}
	})
}

// A replay stopped before Benthos connects its input (SIGTERM at start)
// delivered nothing, so it counts as stopped early from its construction.
func TestReplayCountsAsStoppedEarlyBeforeItConnects(t *testing.T) {
	before := runstatus.Reports()
	conf, err := inputSpec().ParseYAML("dir: "+t.TempDir()+"\nfrom: 2026-11-28T20:00:00Z\nto: 2026-11-28T22:00:00Z", nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := newInputFromConfig(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	defer in.finished()
	if r := reportsSince(before); len(r) != 1 || !strings.Contains(r[0], "stopped before the end of the range [2026-11-28T20:00:00Z, 2026-11-28T22:00:00Z): 0 event(s) delivered") {
		t.Errorf("a replay built and never connected reported %q, want it stopped early", r)
	}
}
