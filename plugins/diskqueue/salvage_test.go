package diskqueue

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// queueFileWith writes a closed queue file holding events n = 0..stored-1,
// the first delivered of them acknowledged (deleted), and returns its path.
func queueFileWith(t *testing.T, stored, delivered int) string {
	t.Helper()
	c := testConfig(t)
	c.maxEvents, c.maxBytes = int64(stored), 1<<30
	q, err := openQueue(c)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < stored; i += 10 {
		var bodies []string
		for n := i; n < min(i+10, stored); n++ {
			bodies = append(bodies, eventBody(n))
		}
		if err := store(t, q, bodies, nil); err != nil {
			t.Fatal(err)
		}
	}
	for range delivered {
		l, _ := take(t, q)
		q.ack(l, nil)
	}
	if err := q.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c.path
}

func eventBody(n int) string {
	return fmt.Sprintf(`{"n":%d,"pad":"%s"}`, n, strings.Repeat(fmt.Sprint(n%10), 200))
}

// intact says whether body is event n exactly as stored.
func intact(body []byte) (int, bool) {
	var n int
	if _, err := fmt.Sscanf(string(body), `{"n":%d,`, &n); err != nil {
		return -1, false
	}
	return n, string(body) == eventBody(n)
}

func salvageAll(t *testing.T, path string) ([]int, SalvageReport) {
	t.Helper()
	var got []int
	report, err := Salvage(path, func(_ uint64, msg *service.Message) error {
		body, _ := msg.AsBytes()
		n, ok := intact(body)
		if !ok {
			t.Errorf("a damaged event was salvaged: %.80s", body)
		}
		got = append(got, n)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, report
}

func TestSalvageGetsEveryWaitingEventBackInOrder(t *testing.T) {
	path := queueFileWith(t, 300, 100)
	got, report := salvageAll(t, path)
	if len(got) != 200 || got[0] != 100 || got[199] != 299 {
		t.Fatalf("salvaged %d events (%v…), want the 200 waiting, 100 to 299 in order; report %+v", len(got), got[:min(len(got), 5)], report)
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("out of order at %d: %d after %d", i, got[i], got[i-1])
		}
	}
	if !report.FreeListKnown || report.UnreadablePages != 0 || report.Damaged != 0 {
		t.Errorf("a sound file reported %+v", report)
	}
	stats, err := ReadFileStats(path)
	if err != nil || stats.Events != 200 || stats.Oldest.IsZero() || stats.Damaged != 0 {
		t.Errorf("stats of the same file: %+v, %v; want 200 events waiting", stats, err)
	}
}

// Every page of a queue file is garbled in turn, as in
// TestQueueSurvivesAGarbledPageAnywhere: salvage never panics, hands out
// only intact events, and loses at most the events of the garbled page.
func TestSalvageSurvivesAGarbledPageAnywhere(t *testing.T) {
	path := queueFileWith(t, 300, 0)
	pristine, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const pageSize = 16 << 10
	worst := 300
	for page := range len(pristine) / pageSize {
		garbled := append([]byte(nil), pristine...)
		rnd := rand.New(rand.NewPCG(uint64(page), 7))
		for i := page * pageSize; i < (page+1)*pageSize; i++ {
			garbled[i] = byte(rnd.IntN(256))
		}
		gp := filepath.Join(t.TempDir(), "events.db")
		if err := os.WriteFile(gp, garbled, 0o600); err != nil {
			t.Fatal(err)
		}
		got, report := salvageAll(t, gp)
		worst = min(worst, len(got))
		// A 16 KiB page holds at most 16384/230 events of this size.
		if lost := 300 - len(got); lost > pageSize/230 {
			t.Errorf("page %d garbled: %d events lost, more than one page holds (report %+v)", page, lost, report)
		}
		if _, err := ReadFileStats(gp); err != nil && !strings.Contains(err.Error(), gp) {
			t.Errorf("page %d garbled: stats error %v does not name the file", page, err)
		}
	}
	t.Logf("%d pages garbled one at a time: at least %d of 300 events salvaged each time", len(pristine)/pageSize, worst)
}

// A salvage holds an index of the records, not the file: halfway through
// handing out 6,000 events of a file of several MB, the live heap is a
// small part of the file (reading the file whole and keeping every record
// decoded, as salvage once did, held 2.3 times the file here).
func TestSalvageDoesNotHoldTheFileInMemory(t *testing.T) {
	path := queueFileWith(t, 6000, 0)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	var before, during runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n := 0
	if _, err := Salvage(path, func(uint64, *service.Message) error {
		if n++; n == 3000 {
			runtime.GC()
			runtime.ReadMemStats(&during)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	grown := int64(during.HeapAlloc) - int64(before.HeapAlloc)
	if n != 6000 || grown > info.Size()/2 {
		t.Errorf("%d events handed out; the live heap grew by %d bytes for a file of %d", n, grown, info.Size())
	}
	t.Logf("file %d bytes, heap grown by %d bytes halfway", info.Size(), grown)
}
