package main

import (
	"os"
	"testing"
	"time"
)

func TestProcStatOfThisProcess(t *testing.T) {
	before, err := cpuTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Work until /proc has counted at least 100 ms of CPU (ticks of 10 ms):
	// on shared cores that takes longer than 100 ms of wall time, so the
	// test waits for the count to move rather than timing the work.
	after := before
	for deadline := time.Now().Add(30 * time.Second); after-before < 100*time.Millisecond && time.Now().Before(deadline); {
		for start := time.Now(); time.Since(start) < 10*time.Millisecond; {
		}
		if after, err = cpuTime(os.Getpid()); err != nil {
			t.Fatal(err)
		}
	}
	if d := after - before; d < 100*time.Millisecond {
		t.Errorf("the CPU time read from /proc moved by %s in 30 s of busy work", d)
	}
	rss, err := peakRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss < 1<<20 || rss > 16<<30 {
		t.Errorf("peak RSS %d bytes is implausible", rss)
	}
	if _, err := cpuTime(-1); err == nil {
		t.Error("no error for a process that does not exist")
	}
}

func TestWatchAnonRSSSeesAHeapThatCameAndWent(t *testing.T) {
	peak := watchAnonRSS(os.Getpid())
	before, err := anonRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	held := make([]byte, 64<<20)
	for i := range held {
		held[i] = 1 // touched, so resident
	}
	time.Sleep(300 * time.Millisecond) // a few samples
	held = nil
	if got := peak(); got < before+48<<20 {
		t.Errorf("peak anonymous memory %d MiB, want at least %d MiB + the 64 MiB held", got>>20, before>>20)
	}
}
