package netcore

import (
	"net/netip"
	"testing"
	"time"
)

func TestRefusalLinesLogOncePerIntervalWithTheCountSkipped(t *testing.T) {
	l := newRefusalLines()
	client := netip.MustParseAddr("192.0.2.7")
	start := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	logged := 0
	for i := range 1000 {
		// 1,000 refusals over 5 s.
		if _, ok := l.admit(client, 403, msgRefused, start.Add(time.Duration(i)*5*time.Millisecond)); ok {
			logged++
		}
	}
	if logged != 1 {
		t.Fatalf("1,000 refusals within 5 s wrote %d lines, want 1", logged)
	}
	skipped, ok := l.admit(client, 403, msgRefused, start.Add(refusalLogEvery+time.Second))
	if !ok || skipped != 999 {
		t.Fatalf("the next line after the interval: logged %v, skipped %d; want true, 999", ok, skipped)
	}
	if _, ok := l.admit(client, 404, msgRefused, start.Add(refusalLogEvery+time.Second)); !ok {
		t.Fatal("another status of the same client was not logged")
	}
}

func TestRefusalLinesStayBoundedOverManyClients(t *testing.T) {
	l := newRefusalLines()
	now := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	logged := 0
	for i := range 3 * maxRefusalKeys {
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if _, ok := l.admit(addr, 403, msgRefused, now); ok {
			logged++
		}
	}
	if logged != maxRefusalKeys || len(l.seen) != maxRefusalKeys {
		t.Fatalf("logged %d lines and kept %d clients, want %d of each", logged, len(l.seen), maxRefusalKeys)
	}
	if _, ok := l.admit(netip.MustParseAddr("192.0.2.1"), 403, msgRefused, now.Add(refusalLogEvery)); !ok {
		t.Fatal("a new client was not logged once the others went stale")
	}
}
