package archive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/runstatus"
)

// threeMembers archives three batches of two events in one gzip hour file
// and returns the file and where each member starts (and the last ends).
func threeMembers(t *testing.T, dir string) (string, []int64) {
	t.Helper()
	a := newTestOutput(t, "dir: "+dir+"\ngzip: true")
	path := filepath.Join(dir, "2026-11-28", "13.jsonl.gz")
	offsets := []int64{0}
	for i := range 3 {
		n := string(rune('1' + 2*i))
		write(t, a, event(`{"n":`+n+`,"a":"x"}`, "2026-11-28T13:00:00Z"), event(`{"n":`+n+`,"b":"y"}`, "2026-11-28T13:00:00Z"))
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		offsets = append(offsets, info.Size())
	}
	return path, offsets
}

// flip changes one byte of path at offset.
func flip(t *testing.T, path string, offset int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[offset] ^= 0xff
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

func scan(t *testing.T, path string) layout {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, err := examine(f, true)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestExamineTellsDamageFromATornTail(t *testing.T) {
	// Each case spoils the file whose members start at m[0], m[1], m[2]
	// (m[3] is its end) and says what examine must find; a torn of -1 is
	// none.
	for _, c := range []struct {
		name  string
		spoil func(t *testing.T, path string, m []int64)
		want  func(m []int64) (whole, damaged []span, torn int64)
	}{
		{"a flipped byte in the middle member",
			func(t *testing.T, p string, m []int64) { flip(t, p, (m[1]+m[2])/2) },
			func(m []int64) ([]span, []span, int64) {
				return []span{{0, m[1]}, {m[2], m[3]}}, []span{{m[1], m[2]}}, -1
			}},
		{"a flipped byte in the last member's checksum: damage, not a torn tail",
			func(t *testing.T, p string, m []int64) { flip(t, p, m[3]-6) },
			func(m []int64) ([]span, []span, int64) { return []span{{0, m[2]}}, []span{{m[2], m[3]}}, -1 }},
		{"the last member cut short: a torn tail",
			func(t *testing.T, p string, m []int64) {
				if err := os.Truncate(p, m[3]-3); err != nil {
					t.Fatal(err)
				}
			},
			func(m []int64) ([]span, []span, int64) { return []span{{0, m[2]}}, nil, m[2] }},
	} {
		t.Run(c.name, func(t *testing.T) {
			path, m := threeMembers(t, t.TempDir())
			c.spoil(t, path, m)
			l := scan(t, path)
			wantWhole, wantDamaged, wantTorn := c.want(m)
			if wantTorn < 0 {
				wantTorn = l.size
			}
			var damaged []span
			for _, d := range l.damaged {
				damaged = append(damaged, d.span)
			}
			if !slices.Equal(l.whole, wantWhole) || !slices.Equal(damaged, wantDamaged) || l.torn != wantTorn {
				t.Errorf("members at %v: whole %v, damaged %v, torn at %d; want whole %v, damaged %v, torn at %d",
					m, l.whole, damaged, l.torn, wantWhole, wantDamaged, wantTorn)
			}
		})
	}
}

// A damaged file found at start is moved aside whole, never cut, and its
// hour goes on in a new file; a replay reads the intact members of the
// file moved aside, then the new file, and reports the damage.
func TestOutputMovesADamagedFileAsideAndTheReplayReadsWhatIsWhole(t *testing.T) {
	dir := t.TempDir()
	path, m := threeMembers(t, dir)
	flip(t, path, (m[1]+m[2])/2)
	damaged, _ := os.ReadFile(path)

	after := newTestOutput(t, "dir: "+dir+"\ngzip: true")
	after.now = func() time.Time { return time.Unix(1764321234, 0) }
	write(t, after, event(`{"n":7}`, "2026-11-28T13:00:00Z"))
	aside := filepath.Join(dir, "2026-11-28", "13.damaged-1764321234.jsonl.gz")
	if b, err := os.ReadFile(aside); err != nil || string(b) != string(damaged) {
		t.Fatalf("the damaged file was not moved aside whole to %s: %v", aside, err)
	}
	equalLines(t, path, `{"n":7}`)

	reports := len(runstatus.Reports())
	got := replay(t, dir, "2026-11-28T13:00:00Z", "2026-11-28T14:00:00Z", false)
	want := `{"n":1,"a":"x"}` + "\n" + `{"n":1,"b":"y"}` + "\n" + `{"n":5,"a":"x"}` + "\n" + `{"n":5,"b":"y"}` + "\n" + `{"n":7}`
	if bodies(got) != want {
		t.Errorf("replayed\n%s\nwant\n%s", bodies(got), want)
	}
	newReports := runstatus.Reports()[reports:]
	if len(newReports) != 1 || !strings.Contains(newReports[0], "2026-11-28/13.damaged-1764321234.jsonl.gz: from byte ") {
		t.Errorf("the replay reported %q, want the damaged member of the file moved aside", newReports)
	}
}

// A folder where an hour file should be cannot be read: the replay sends
// the other hours, ends, and reports it.
func TestReplaySkipsAndReportsAnHourFileItCannotRead(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "2026-11-28", "13.jsonl"), "{\"n\":1}\n")
	if err := os.MkdirAll(filepath.Join(dir, "2026-11-28", "14.jsonl"), 0o750); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "2026-11-28", "15.jsonl"), "{\"n\":2}\n")
	reports := len(runstatus.Reports())
	got := replay(t, dir, "2026-11-28T13:00:00Z", "2026-11-28T16:00:00Z", false)
	if bodies(got) != "{\"n\":1}\n{\"n\":2}" {
		t.Errorf("replayed\n%s", bodies(got))
	}
	newReports := runstatus.Reports()[reports:]
	if len(newReports) != 1 || !strings.Contains(newReports[0], "2026-11-28/14.jsonl cannot be read (it is a folder, not a file)") {
		t.Errorf("the replay reported %q, want the folder named", newReports)
	}
}

func TestRangeFilesListsOnlyTheRangeInReadingOrder(t *testing.T) {
	dir := t.TempDir()
	for _, rel := range []string{"2026-11-27/23.jsonl", "2026-11-28/00.jsonl.gz", "2026-11-28/00.jsonl",
		"2026-11-28/00.damaged-1764321234.jsonl.gz", "2026-11-28/01.jsonl", "2026-11-28/notes.txt", "2026-11-29/00.jsonl"} {
		writeFile(t, filepath.Join(dir, rel), "{}\n")
	}
	files, unlisted, err := rangeFiles(dir, time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC))
	if err != nil || unlisted != nil {
		t.Fatal(err, unlisted)
	}
	var rel []string
	for _, f := range files {
		r, _ := filepath.Rel(dir, f)
		rel = append(rel, filepath.ToSlash(r))
	}
	want := []string{"2026-11-27/23.jsonl", "2026-11-28/00.damaged-1764321234.jsonl.gz", "2026-11-28/00.jsonl", "2026-11-28/00.jsonl.gz"}
	if !slices.Equal(rel, want) {
		t.Errorf("rangeFiles = %v, want %v", rel, want)
	}
}

// Until its range is read and delivered whole, a replay counts as stopped
// early, whether or not Benthos closes it before the process exits.
func TestReplayCountsAsStoppedEarlyUntilItsRangeIsDelivered(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "2026-11-28", "20.jsonl"), "{\"n\":1}\n{\"n\":2}\n")
	conf, err := inputSpec().ParseYAML("dir: "+dir+"\nfrom: 2026-11-28T20:00:00Z\nto: 2026-11-28T21:00:00Z", nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := newInputFromConfig(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := in.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	stoppedEarly := func() string {
		for _, r := range runstatus.Reports() {
			if strings.Contains(r, "stopped before the end of the range [2026-11-28T20:00:00Z") {
				return r
			}
		}
		return ""
	}
	var acks []service.AckFunc
	for range 2 {
		_, ack, err := in.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		acks = append(acks, ack)
	}
	if err := acks[0](ctx, nil); err != nil {
		t.Fatal(err)
	}
	if r := stoppedEarly(); !strings.Contains(r, "1 event(s) delivered") {
		t.Errorf("with 1 of 2 events delivered, reported %q", r)
	}
	if _, _, err := in.Read(ctx); !errors.Is(err, service.ErrEndOfInput) {
		t.Fatalf("read past the end: %v", err)
	}
	if r := stoppedEarly(); r == "" {
		t.Error("with every event read and 1 of 2 delivered, the run no longer counts as stopped early")
	}
	if err := acks[1](ctx, nil); err != nil {
		t.Fatal(err)
	}
	if r := stoppedEarly(); r != "" {
		t.Errorf("with the range delivered whole, still reported %q", r)
	}
	if err := in.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
