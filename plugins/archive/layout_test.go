package archive

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestHourFileIsTheUTCDateAndHour(t *testing.T) {
	ist := time.FixedZone("IST", 5*3600+1800)
	got := hourFile("/a", time.Date(2026, 11, 29, 4, 59, 0, 0, ist), true)
	if want := filepath.Join("/a", "2026-11-28", "23.jsonl.gz"); got != want {
		t.Errorf("hourFile = %s, want %s", got, want)
	}
	for rel, want := range map[string]bool{
		"2026-11-28/13.jsonl": true, "2026-11-28/00.jsonl.gz": true,
		"2026-11-28/24.jsonl": false, "2026-11-28/1.jsonl": false, "2026-13-01/13.jsonl": false,
		"2026-11-28/13.json": false, "notes/13.jsonl": false, "13.jsonl": false,
		"2026-11-28/13.damaged-1764321234.jsonl.gz": true, "2026-11-28/13.damaged-.jsonl": false,
		"2026-11-28/13.damaged-x.jsonl": false,
	} {
		if _, ok := parseHourFile(rel); ok != want {
			t.Errorf("parseHourFile(%q) ok = %v, want %v", rel, ok, want)
		}
	}
}

func TestRemoveExpiredKeepsRecentHoursAndWhatIsNotTheArchives(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 28, 13, 20, 0, 0, time.UTC)
	files := map[string]bool{ // path: kept
		"2026-11-25/23.jsonl":                       false, // ended 2026-11-26T00:00, over 2 days before now
		"2026-11-26/12.jsonl.gz":                    false, // ended 13:00, 2 days and 20 minutes before now
		"2026-11-26/12.damaged-1764321234.jsonl.gz": false, // moved aside: kept as long as its hour
		"2026-11-26/13.jsonl":                       true,  // ends 14:00: within 2 days
		"2026-11-26/notes.txt":                      true,  // not an archive file
		"2026-11-28/13.jsonl":                       true,
		"README":                                    true,
	}
	for rel := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("{}\n"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	n, err := removeExpired(dir, 48*time.Hour, now)
	if err != nil || n != 3 {
		t.Fatalf("removed %d files (%v), want 3", n, err)
	}
	for rel, kept := range files {
		_, err := os.Stat(filepath.Join(dir, rel))
		if kept != (err == nil) {
			t.Errorf("%s: kept = %v, want %v", rel, err == nil, kept)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "2026-11-25")); !os.IsNotExist(err) {
		t.Errorf("the date folder left empty was kept: %v", err)
	}
	if n, err := removeExpired(filepath.Join(dir, "missing"), time.Hour, now); n != 0 || err != nil {
		t.Errorf("a missing archive: removed %d, %v", n, err)
	}
}
