package diskqueue

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestReleaseMappedPagesDropsTheQueueFileFromRSS(t *testing.T) {
	c := testConfig(t)
	c.maxBytes, c.maxEvents = 64<<20, 100000
	q := open(t, c)
	body := strings.Repeat("x", 4000)
	for range 20 {
		bodies := make([]string, 100)
		for i := range bodies {
			bodies[i] = body
		}
		if err := store(t, q, bodies, nil); err != nil {
			t.Fatal(err)
		}
	}
	readAll := func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEvents).ForEach(func(_, _ []byte) error { return nil })
	}
	if err := q.store.db.View(readAll); err != nil {
		t.Fatal(err)
	}
	before := mappedRSS(t, c.path)
	if before < 4<<20 {
		t.Fatalf("only %d KiB of the file mapped after reading 8 MB of records", before>>10)
	}
	if err := q.store.db.View(func(tx *bolt.Tx) error { releaseMappedPages(q.store.db, tx); return nil }); err != nil {
		t.Fatal(err)
	}
	if after := mappedRSS(t, c.path); after > before/4 {
		t.Errorf("%d KiB of the file still mapped, %d KiB before the release", after>>10, before>>10)
	}
	// The records read back whole after the release.
	if err := q.store.db.View(readAll); err != nil {
		t.Fatal(err)
	}
	l, got := take(t, q)
	if got != body {
		t.Errorf("first record after the release is %d bytes, want %d", len(got), len(body))
	}
	q.ack(l, nil)
}

// mappedRSS is the resident size of this process's mappings of path.
func mappedRSS(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var total int64
	inFile := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 6 && strings.Contains(fields[0], "-"):
			inFile = fields[len(fields)-1] == path
		case inFile && len(fields) == 3 && fields[0] == "Rss:":
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			total += kb << 10
		}
	}
	return total
}

// A restart on a full queue reads every record that waits; the pages are let
// go as it goes, every 16 MiB, so that the start does not leave the whole
// file counted in the process's peak RSS (it did: 679 MiB after a restart on
// a file of 650 MB). The check at start is left out here: bbolt reads the
// pages for it in a goroutine of its own, let go every 200 µs, which depends
// on the scheduling (measured by hand instead: a restart on that file of
// 650 MB with the check peaked at 215 MiB).
func TestStartOnABigFileDoesNotHoldItResident(t *testing.T) {
	c := testConfig(t)
	c.maxBytes, c.maxEvents, c.checkOnStart = 1<<30, 1_000_000, false
	q, err := openQueue(c)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("x", 4000)
	bodies := make([]string, 1000)
	for i := range bodies {
		bodies[i] = body
	}
	for range 32 {
		if err := store(t, q, bodies, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.close(t.Context()); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(c.path)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	debug.FreeOSMemory()
	// Writing 5 to clear_refs resets this process's peak RSS (VmHWM) to what
	// it holds now.
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS here: %v", err)
	}
	before := procStatusKiB(t, "VmRSS")
	q = open(t, c)
	if events, _ := q.stats(); events != 32_000 {
		t.Fatalf("%d events waiting after the restart, want 32000", events)
	}
	grew := (procStatusKiB(t, "VmHWM") - before) << 10
	if grew > info.Size()/4 {
		t.Errorf("the start on a file of %d MiB took the peak RSS up by %d MiB, want at most a quarter of the file", info.Size()>>20, grew>>20)
	}
	t.Logf("file %d MiB, peak RSS up by %d MiB at the start", info.Size()>>20, grew>>20)
}

// procStatusKiB reads a field of this process's /proc status, in KiB.
func procStatusKiB(t *testing.T, field string) int64 {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field+":" {
			kib, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kib
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}
