package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// report is everything a run of the benchmark found, as written to -json.
type report struct {
	Meta   meta     `json:"meta"`
	Ratios []ratio  `json:"ratios"`
	Runs   []record `json:"runs"`
}

// meta says where and how the results were measured.
type meta struct {
	Date        string  `json:"date"`
	Command     string  `json:"command"`
	CPU         string  `json:"cpu"`
	Cores       int     `json:"cores"`
	GoVersion   string  `json:"go_version"`
	RunSeconds  float64 `json:"seconds_per_run"`
	Binary      string  `json:"binary"`
	StockConfig string  `json:"stock_config"`
	Elapsed     string  `json:"elapsed"`
}

// ratio compares the systems in one cell, on the medians of its runs. Zero
// means not measured.
type ratio struct {
	Concurrency   int `json:"concurrency"`
	EventsPerPost int `json:"events_per_post"`
	// ours ÷ bare, acknowledged events/s: how close durable ingest comes to the parse ceiling.
	OursOverBareIngest float64 `json:"ours_over_bare_ack_events"`
	// ours ÷ stock, delivered events/s: end-to-end delivery against stock Benthos.
	OursOverStockDelivered float64 `json:"ours_over_stock_delivered_events"`
	// direct ÷ stock, delivered events/s: the most any one-event-a-request
	// delivery could reach against stock here.
	DirectOverStockDelivered float64 `json:"direct_over_stock_delivered_events"`
	// ours-batched ÷ stock, delivered events/s: with MEIRO_BATCH_SIZE.
	BatchedOverStockDelivered float64 `json:"ours_batched_over_stock_delivered_events"`
}

// cell is one (concurrency, events per post) combination.
type cell struct{ concurrency, size int }

func (d *driver) writeReports(f *runFlags, records []record, started time.Time) error {
	rep := report{
		Meta: meta{
			Date:        started.UTC().Format(time.RFC3339),
			Command:     "netcore-bench " + strings.Join(os.Args[1:], " "),
			CPU:         cpuModel(),
			Cores:       runtime.NumCPU(),
			GoVersion:   runtime.Version(),
			RunSeconds:  d.duration.Seconds(),
			Binary:      d.binary,
			StockConfig: d.stockConfig,
			Elapsed:     time.Since(started).Round(time.Second).String(),
		},
		Runs: records,
	}
	for _, c := range cells(records) {
		// over is a's median of value ÷ b's, in this cell.
		over := func(a, b string, value func(record) float64) float64 {
			return divide(median(records, a, c, value), median(records, b, c, value))
		}
		acked := func(r record) float64 { return r.AckEventsPerSec }
		delivered := func(r record) float64 { return r.DeliveredPerSec }
		rep.Ratios = append(rep.Ratios, ratio{
			Concurrency:               c.concurrency,
			EventsPerPost:             c.size,
			OursOverBareIngest:        over(systemOurs, systemBare, acked),
			OursOverStockDelivered:    over(systemOurs, systemStock, delivered),
			DirectOverStockDelivered:  over(systemDirect, systemStock, delivered),
			BatchedOverStockDelivered: over(systemOursBatched, systemStock, delivered),
		})
	}

	var md strings.Builder
	writeMarkdown(&md, rep)
	fmt.Print(md.String())
	return writeReportFiles(f.out, f.jsonOut, f.svgOut, md.String(), rep, chartSVG(records))
}

func writeMarkdown(w io.Writer, rep report) {
	m := rep.Meta
	fmt.Fprintf(w, "# netcore-bench %s\n\n", m.Date)
	fmt.Fprintf(w, "`%s`: %s, %d cores, %s; %.0f s of posting per run; took %s.\n\n", m.Command, m.CPU, m.Cores, m.GoVersion, m.RunSeconds, m.Elapsed)
	fmt.Fprintln(w, "Acknowledged: posts answered 200 (p50/p99: their latency). Delivered: distinct events at the sink ÷ time from the first post to the last delivery.")
	fmt.Fprintln(w, "CPU: the system's user+system CPU from ready to the end of delivery, per 1,000 acknowledged events (for direct, the driver's: senders and sink).")
	fmt.Fprintln(w, "Peak RSS: the system's peak resident memory, with the pages of the queue file it maps; anon: its heap and stacks alone, sampled every 100 ms.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| senders | events/post | system | run | acked posts/s | acked events/s | p50 | p99 | delivered events/s | delivered / acked | non-200 | errors | peak RSS | peak anon | CPU s / 1k events |")
	fmt.Fprintln(w, "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
	for _, r := range rep.Runs {
		delivered, deliveredRate := "–", "–"
		if delivers(r.System) {
			delivered = thousands(r.Delivered) + " / " + thousands(r.AckEvents)
			deliveredRate = thousands(int(r.DeliveredPerSec + 0.5))
		}
		fmt.Fprintf(w, "| %d | %d | %s | %d | %s | %s | %s | %s | %s | %s | %s | %d | %s | %s | %.3f |\n",
			r.Concurrency, r.EventsPerPost, r.System, r.Run,
			thousands(int(r.AckPostsPerSec+0.5)), thousands(int(r.AckEventsPerSec+0.5)),
			formatMs(r.P50ms), formatMs(r.P99ms), deliveredRate, delivered, formatStatuses(r.Non200),
			r.PostErrors, formatMiB(r.PeakRSSMiB), formatMiB(r.PeakAnonMiB), r.CPUSecondsPer1kEvents)
	}

	fmt.Fprintln(w, "\n## Ratios (medians of the runs in each cell)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| senders | events/post | ours ÷ bare, acked events/s | ours ÷ stock, delivered events/s | direct (the ceiling) ÷ stock, delivered events/s | ours batched ÷ stock, delivered events/s |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|")
	for _, r := range rep.Ratios {
		fmt.Fprintf(w, "| %d | %d | %s | %s | %s | %s |\n", r.Concurrency, r.EventsPerPost, formatRatio(r.OursOverBareIngest),
			formatRatio(r.OursOverStockDelivered), formatRatio(r.DirectOverStockDelivered), formatRatio(r.BatchedOverStockDelivered))
	}

	fmt.Fprintln(w, "\n## Notes")
	fmt.Fprintln(w)
	notes := 0
	for _, r := range rep.Runs {
		for _, n := range r.notes() {
			fmt.Fprintf(w, "- %s, %s, run %d: %s\n", r.System, describeCell(r.Concurrency, r.EventsPerPost), r.Run, n)
			notes++
		}
	}
	if notes == 0 {
		fmt.Fprintln(w, "Nothing looked wrong: no failed posts, every acknowledged event delivered once, no errors or warnings in the logs.")
	}
}

// maxInFlight is the max_in_flight of the http_client of stock and ours.
const maxInFlight = 64

// notes are what looked wrong in a run, with the evidence.
func (r record) notes() []string {
	var n []string
	if r.Err != "" {
		n = append(n, "error: "+r.Err)
	}
	if len(r.Non200) > 0 {
		n = append(n, "answers other than 200: "+formatStatuses(r.Non200))
	}
	if r.PostErrors > 0 {
		n = append(n, fmt.Sprintf("%d posts got no answer; the first: %s", r.PostErrors, r.FirstPostError))
	}
	if delivers(r.System) {
		if r.Delivered < r.AckEvents {
			n = append(n, fmt.Sprintf("only %s of %s acknowledged events reached the sink (delivery %s)",
				thousands(r.Delivered), thousands(r.AckEvents), r.DrainOutcome))
		}
		if r.Duplicates > 0 {
			n = append(n, fmt.Sprintf("%s events reached the sink more than once", thousands(r.Duplicates)))
		}
		if r.BadDeliveries > 0 {
			n = append(n, fmt.Sprintf("%d requests to the sink were not JSON events", r.BadDeliveries))
		}
		// Both pipelines send at most 64 requests at a time; far more
		// connections than that means they are not kept alive.
		if r.SinkConnections > 2*maxInFlight {
			n = append(n, fmt.Sprintf("opened %s connections to the sink for %s requests: connections are not kept alive",
				thousands(r.SinkConnections), thousands(r.SinkRequests)))
		}
		if r.DrainAfterLoadSecs >= 1 {
			n = append(n, fmt.Sprintf("delivery ended %.1f s after the senders stopped", r.DrainAfterLoadSecs))
		}
	}
	if r.Log.Errors > 0 {
		n = append(n, fmt.Sprintf("%d error lines in %s; the first: `%s`", r.Log.Errors, r.LogFile, r.Log.FirstError))
	}
	if r.Log.Warnings > 0 {
		n = append(n, fmt.Sprintf("%d warning lines in %s; the first: `%s`", r.Log.Warnings, r.LogFile, r.Log.FirstWarning))
	}
	if r.StopErr != "" {
		n = append(n, "on stopping: "+r.StopErr)
	}
	return n
}

// cells lists the cells of the records in the order they were run.
func cells(records []record) []cell {
	var cs []cell
	for _, r := range records {
		if c := (cell{r.Concurrency, r.EventsPerPost}); !slices.Contains(cs, c) {
			cs = append(cs, c)
		}
	}
	return cs
}

// median of value over the runs of system in cell c that measured
// something; 0 if there are none.
func median(records []record, system string, c cell, value func(record) float64) float64 {
	var vs []float64
	for _, r := range records {
		if r.System == system && r.Concurrency == c.concurrency && r.EventsPerPost == c.size && r.AckPosts > 0 {
			vs = append(vs, value(r))
		}
	}
	if len(vs) == 0 {
		return 0
	}
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2]
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
}

func divide(a, b float64) float64 {
	if a == 0 || b == 0 {
		return 0
	}
	return a / b
}

func formatRatio(x float64) string {
	if x == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", x)
}

// formatMiB is e.g. "84 MiB", or "–" when not measured.
func formatMiB(x float64) string {
	if x == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f MiB", x)
}

func formatMs(x float64) string {
	if x >= 10 {
		return fmt.Sprintf("%.1f ms", x)
	}
	return fmt.Sprintf("%.2f ms", x)
}

// formatStatuses is e.g. "503×12, 429×3", or "0".
func formatStatuses(m map[int]int) string {
	if len(m) == 0 {
		return "0"
	}
	var parts []string
	for _, s := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%d×%d", s, m[s]))
	}
	return strings.Join(parts, ", ")
}

// thousands is a count with commas: 52,785.
func thousands(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, digit := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(digit)
	}
	return b.String()
}

// cpuModel is the processor's name from /proc/cpuinfo, for the report.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, value, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown CPU"
}

// writeReportFiles writes a run's report three ways: the Markdown md, rep as
// JSON, and the SVG chart.
func writeReportFiles(out, jsonOut, svgOut, md string, rep any, svg string) error {
	if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the results: %w", err)
	}
	if err := os.WriteFile(jsonOut, append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the results: %w", err)
	}
	if err := os.WriteFile(svgOut, []byte(svg), 0o644); err != nil {
		return fmt.Errorf("writing the chart: %w", err)
	}
	fmt.Fprintf(os.Stderr, "wrote %s, %s and %s\n", out, jsonOut, svgOut)
	return nil
}
