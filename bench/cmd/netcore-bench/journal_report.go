package main

import (
	"fmt"
	"io"
)

// journalSystem names the journal's record: its report tells it apart.
const journalSystem = "journal"

// journalFigure is value ÷ of, or 0 (not met) when the journal run did not
// publish what it acknowledged: its 200s then promised the stream events it
// never got, and a rate of them is no measure of the scale-out ingest.
func journalFigure(jr journalRun, value, of float64) float64 {
	if !jr.published() {
		return 0
	}
	return divide(value, of)
}

// cpuCell is a record's CPU µs per acknowledged event. The journal's is
// read when the load stops, before most of its publishing.
func cpuCell(r record) string {
	if r.System == journalSystem {
		return fmt.Sprintf("%.0f during the load (publishing mostly after it)", cpuMicros(r))
	}
	return fmt.Sprintf("%.0f", cpuMicros(r))
}

// writeJournalTable writes the figures of each journal run in runs, the
// i-th named names[i], if any ran.
func writeJournalTable(w io.Writer, runs []goalRun, names []string) {
	header := false
	for i, g := range runs {
		jr := g.Journal
		if !ran(jr.record) {
			continue
		}
		if !header {
			fmt.Fprintln(w, "\n### The journal")
			fmt.Fprintln(w)
			fmt.Fprintln(w, "Acked: posts answered 200 by the scale-out ingest, once in its journal. Stored by the stream: the events the JetStream stream held when the load stopped, a second of the load; then the rest of the 200s' events a second until it held them all (the drain: a run whose stream did not hold them all within the drain timeout failed). CPU: the ingest's, from ready until the load stopped, per acked event: most of its publishing comes after that, and is not counted.")
			fmt.Fprintln(w)
			fmt.Fprintln(w, "| run | acked events/s | acked posts/s | stored by the stream during the load, events/s | stored after the load (drain), events/s | CPU µs per acked event during the load (publishing mostly after it) | journal records a post | journal per minute of retention |")
			fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
			header = true
		}
		drain := thousands(int(jr.DrainPerSec + 0.5))
		if !jr.published() {
			drain = "failed (see the notes)"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %.0f | %s B | %s MB |\n", names[i],
			thousands(int(jr.AckEventsPerSec+0.5)), thousands(int(jr.AckPostsPerSec+0.5)), thousands(int(jr.PublishedPerSec+0.5)),
			drain, cpuMicros(jr.record), thousands(int(jr.RecordBytes/int64(max(jr.AckPosts, 1)))), thousands(int(jr.DiskPerMinute/1e6+0.5)))
	}
}
