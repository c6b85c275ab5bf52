package natsjs

import (
	"runtime"
	"strconv"
	"testing"
	"time"
)

// heapGrowth is what the heap holds more after fill than before it, once
// the garbage is collected.
func heapGrowth(fill func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fill()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if after.HeapAlloc < before.HeapAlloc {
		return 0
	}
	return after.HeapAlloc - before.HeapAlloc
}

// Past dedupe_max_bytes the oldest ids are forgotten, counted, and the heap
// holds no more than the bound, however many ids went through.
func TestDeliveredIDsStayWithinTheirBytes(t *testing.T) {
	const maxBytes = 16 << 20
	var d *deliveredIDs
	now := time.Now()
	total, evicted := 0, 0
	grown := heapGrowth(func() {
		d = newDeliveredIDs(time.Hour, maxBytes)
		total = 4 * d.maxIDs
		for i := range total {
			evicted += d.add(now, keyOfID("event-"+strconv.Itoa(i)))
		}
	})
	if grown > maxBytes {
		t.Errorf("%d ids through a set bounded to %d bytes: the heap grew by %d", total, maxBytes, grown)
	}
	n, _ := d.held()
	if n != d.maxIDs {
		t.Errorf("holds %d ids, want its bound %d", n, d.maxIDs)
	}
	if evicted != total-d.maxIDs {
		t.Errorf("%d ids counted as forgotten early, want %d", evicted, total-d.maxIDs)
	}
	if d.has(keyOfID("event-0"), now) {
		t.Error("the oldest id is still held past the bound")
	}
	if !d.has(keyOfID("event-"+strconv.Itoa(total-1)), now) {
		t.Error("the newest id is not held")
	}
	runtime.KeepAlive(d)
}

// An id counts as delivered for the window after its delivery, no less, no
// more; delivered again meanwhile, it keeps its first time.
func TestDeliveredIDsAreForgottenAfterTheWindow(t *testing.T) {
	d := newDeliveredIDs(time.Minute, 1<<20)
	t0 := time.Now()
	a, b := keyOfID("a"), keyOfID("b")
	d.add(t0, a)
	if ev := d.add(t0.Add(30*time.Second), a, b); ev != 0 {
		t.Errorf("%d counted as forgotten early, with room", ev)
	}
	if !d.has(a, t0.Add(time.Minute-time.Nanosecond)) {
		t.Error("forgotten before its window")
	}
	if d.has(a, t0.Add(time.Minute)) {
		t.Error("held after its window (from its first delivery)")
	}
	if !d.has(b, t0.Add(time.Minute)) {
		t.Error("an id delivered later was forgotten with an older one")
	}
	if n, _ := d.held(); n != 1 {
		t.Errorf("holds %d ids, want 1", n)
	}
}

// BenchmarkDeliveredIDsBytesPerID measures the heap per remembered id, at
// sizes right after the map grew (the most per id) and in between, with
// ids going through a full set (old ones forgotten): bytesPerDeliveredID
// must be at least the largest.
func BenchmarkDeliveredIDsBytesPerID(b *testing.B) {
	for _, n := range []int{1 << 17, 1<<17 + 1<<10, 3 << 17, 1 << 20, 1<<20 + 1<<10} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			var worst float64
			for range b.N {
				var d *deliveredIDs
				grown := heapGrowth(func() {
					d = newDeliveredIDs(time.Hour, 1<<40)
					for i := range n {
						d.add(time.Now(), keyOfID(strconv.Itoa(i)))
					}
				})
				worst = max(worst, float64(grown)/float64(n))
				runtime.KeepAlive(d)
			}
			b.ReportMetric(worst, "bytes/id")
		})
	}
}
