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
	// Burn 100 ms of CPU, which /proc shows in ticks of 10 ms.
	for start := time.Now(); time.Since(start) < 100*time.Millisecond; {
	}
	after, err := cpuTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := after - before; d < 50*time.Millisecond || d > 5*time.Second {
		t.Errorf("100 ms of work took %s of CPU", d)
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
