package diskqueue

import (
	"bufio"
	"os"
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
	if err := q.db.View(readAll); err != nil {
		t.Fatal(err)
	}
	before := mappedRSS(t, c.path)
	if before < 4<<20 {
		t.Fatalf("only %d KiB of the file mapped after reading 8 MB of records", before>>10)
	}
	if err := q.db.View(func(tx *bolt.Tx) error { releaseMappedPages(q.db, tx); return nil }); err != nil {
		t.Fatal(err)
	}
	if after := mappedRSS(t, c.path); after > before/4 {
		t.Errorf("%d KiB of the file still mapped, %d KiB before the release", after>>10, before>>10)
	}
	// The records read back whole after the release.
	if err := q.db.View(readAll); err != nil {
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
