package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the unit of utime and stime in /proc/PID/stat (USER_HZ),
// 100 on every Linux this runs on.
const clockTicks = 100

// cpuTime is the user plus system CPU time a process has used so far, all
// threads together.
func cpuTime(pid int) (time.Duration, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("reading CPU time: %w", err)
	}
	// The command name (field 2) is in parentheses and may contain spaces,
	// so the fields are counted from the last ')'. After it come state
	// (field 3) ... utime (14) and stime (15).
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return 0, fmt.Errorf("%s: no command name in %q", path, b)
	}
	fields := strings.Fields(string(b[end+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("%s: %d fields after the command name, want at least 13", path, len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: utime or stime: %w", path, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// peakRSS is a process's peak resident memory (VmHWM) in bytes: its heap
// and stacks, and the pages of files it maps (the queue file, for ours).
func peakRSS(pid int) (int64, error) { return statusBytes(pid, "VmHWM") }

// anonRSS is a process's resident anonymous memory (RssAnon) in bytes: its
// heap and stacks, without the pages of mapped files, which the kernel can
// drop at will.
func anonRSS(pid int) (int64, error) { return statusBytes(pid, "RssAnon") }

// statusBytes reads a "Field:   123 kB" line of /proc/PID/status.
func statusBytes(pid int, field string) (int64, error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("reading memory: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		value, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %s: %w", path, field, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("%s: no %s line", path, field)
}

// watchAnonRSS samples a process's anonymous memory every 100 ms, since
// /proc keeps the peak of the total only. The returned func stops the
// sampling and gives the highest value seen.
func watchAnonRSS(pid int) (peak func() int64) {
	stop, done := make(chan struct{}), make(chan int64)
	go func() {
		var highest int64
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if n, err := anonRSS(pid); err == nil {
				highest = max(highest, n)
			}
			select {
			case <-stop:
				done <- highest
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 {
		close(stop)
		return <-done
	}
}
