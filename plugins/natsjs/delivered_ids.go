package natsjs

import (
	"crypto/sha256"
	"sync"
	"time"
)

// idKey is an event id as a deliverer remembers and shares it: the first 16
// bytes of its SHA-256. The same on every deliverer (peers exchange keys, not
// ids), small, and two ids share one with odds of about n²/2^129: a shared
// key would drop an event never delivered, so a short or seeded hash will not
// do.
type idKey [16]byte

func keyOfID(id string) (k idKey) {
	sum := sha256.Sum256([]byte(id))
	copy(k[:], sum[:len(k)])
	return k
}

// heldID is one remembered id and when it was delivered (unix nanoseconds).
type heldID struct {
	key idKey
	at  int64
}

// bytesPerDeliveredID is what one remembered id costs on the heap, at worst:
// its heldID in the ring (24 bytes) and its slot in the map. Measured by
// BenchmarkDeliveredIDsBytesPerID: 56 to 60 bytes an id, 84 right after the
// map and the ring doubled (the most), rounded up. dedupe_max_bytes is
// divided by it.
const bytesPerDeliveredID = 88

// deliveredIDs remembers the ids of the events delivered within the window,
// by this deliverer or its peers, so that a repeat of one (the stream stored
// it again after a power cut lost it) is dropped rather than delivered twice.
// It holds at most maxIDs (its byte bound divided by bytesPerDeliveredID):
// past that the oldest are forgotten before their time, and the window is in
// effect shorter; memory never grows past the bound.
//
// The ids are in a ring, oldest first, and a map for lookups; an id is held
// once, from its first delivery, so the two always hold the same ids.
type deliveredIDs struct {
	window time.Duration
	maxIDs int

	mu    sync.Mutex
	ring  []heldID // a circular buffer of n ids from start, grown up to maxIDs
	start int
	n     int
	index map[idKey]struct{}
}

func newDeliveredIDs(window time.Duration, maxBytes int) *deliveredIDs {
	return &deliveredIDs{window: window, maxIDs: max(maxBytes/bytesPerDeliveredID, 1), index: map[idKey]struct{}{}}
}

// has says whether k was delivered within the window before now.
func (d *deliveredIDs) has(k idKey, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expire(now.UnixNano())
	_, ok := d.index[k]
	return ok
}

// add remembers keys as delivered at now; one already held keeps its time.
// It returns how many older ids it forgot before their window for room.
func (d *deliveredIDs) add(now time.Time, keys ...idKey) (evicted int) {
	at := now.UnixNano()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expire(at)
	for _, k := range keys {
		if _, ok := d.index[k]; ok {
			continue
		}
		if d.n == d.maxIDs {
			evicted++
			d.dropOldest()
		}
		d.push(heldID{key: k, at: at})
		d.index[k] = struct{}{}
	}
	return evicted
}

// held is how many ids are remembered, and when the oldest was delivered.
func (d *deliveredIDs) held() (n int, oldest time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == 0 {
		return 0, time.Time{}
	}
	return d.n, time.Unix(0, d.ring[d.start].at)
}

// expire forgets the ids delivered a window or more before at.
func (d *deliveredIDs) expire(at int64) {
	for d.n > 0 && d.ring[d.start].at <= at-int64(d.window) {
		d.dropOldest()
	}
}

func (d *deliveredIDs) dropOldest() {
	delete(d.index, d.ring[d.start].key)
	d.start = (d.start + 1) % len(d.ring)
	d.n--
}

// push appends h to the ring, growing it (doubling, up to maxIDs) when full;
// the caller made room if it is at maxIDs.
func (d *deliveredIDs) push(h heldID) {
	if d.n == len(d.ring) {
		grown := make([]heldID, min(max(2*len(d.ring), 1024), d.maxIDs))
		for i := range d.n {
			grown[i] = d.ring[(d.start+i)%len(d.ring)]
		}
		d.ring, d.start = grown, 0
	}
	d.ring[(d.start+d.n)%len(d.ring)] = h
	d.n++
}
