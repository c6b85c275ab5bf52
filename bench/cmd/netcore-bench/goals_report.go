package main

import (
	"fmt"
	"html"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// goalReport is what `netcore-bench goals` writes to -json.
type goalReport struct {
	Meta  meta         `json:"meta"`
	Goals []goalResult `json:"goals"`
	Runs  []goalRun    `json:"runs"`
	// renderedFrom is the -json file a report is written again from by
	// `netcore-bench render`, said under its header.
	renderedFrom string
}

// goalResult is one figure against its goal: the median of the runs, and
// each run's value.
type goalResult struct {
	Figure string    `json:"figure"`
	Goal   string    `json:"goal"`
	Median float64   `json:"median"`
	Values []float64 `json:"values"`
	Met    bool      `json:"met"` // by the median
	// MetRuns counts the runs whose own value meets the goal: a median
	// met by 2 runs of 3 sits within the machine's noise of its goal.
	MetRuns int `json:"met_runs"`
	unit    string
}

// goalSpec is how a figure of a run is computed and judged.
type goalSpec struct {
	figure, goal, unit string
	// measured says whether a run ran the scenarios the figure is made of:
	// a run of -scenarios burst has no steady, and a file from before
	// engine existed has no engine; such runs are left out of the figure.
	measured func(goalRun) bool
	value    func(goalRun) float64
	met      func(float64) bool
}

// ran says whether every one of records was measured. A scenario that
// started and failed counts: its figure is then 0, not met, rather than
// left out.
func ran(records ...record) bool {
	for _, r := range records {
		if r.System == "" {
			return false
		}
	}
	return true
}

func cpuMicros(r record) float64 { return r.CPUSecondsPer1kEvents * 1000 }

var goalSpecs = []goalSpec{
	{"burst ÷ bare, acked events/s at 64 senders", "≥ 0.8 (stretch 1.0)", "×",
		func(g goalRun) bool { return ran(g.Burst, g.Bare) },
		func(g goalRun) float64 { return divide(g.Burst.AckEventsPerSec, g.Bare.AckEventsPerSec) },
		func(x float64) bool { return x >= 0.8 }},
	{"CPU per event, burst ÷ bare", "≤ 1.2", "×",
		func(g goalRun) bool { return ran(g.Burst, g.Bare) },
		func(g goalRun) float64 { return divide(cpuMicros(g.Burst), cpuMicros(g.Bare)) },
		func(x float64) bool { return x > 0 && x <= 1.2 }},
	{"drain ÷ direct, delivered events/s", "≥ 0.75 (stretch 0.9)", "×",
		func(g goalRun) bool { return ran(g.Drain, g.Direct) },
		func(g goalRun) float64 { return divide(g.Drain.DeliveredPerSec, g.Direct.DeliveredPerSec) },
		func(x float64) bool { return x >= 0.75 }},
	{"steady ÷ direct, delivered events/s", "≥ 0.6", "×",
		func(g goalRun) bool { return ran(g.Steady, g.Direct) },
		func(g goalRun) float64 { return divide(g.Steady.DeliveredPerSec, g.Direct.DeliveredPerSec) },
		func(x float64) bool { return x >= 0.6 }},
	{"steady ÷ burst and drain together, 1/(1/burst + 1/drain): 1.0 when steady costs what its parts cost apart (for reference)", "–", "×",
		func(g goalRun) bool { return ran(g.Steady, g.Burst, g.Drain) },
		func(g goalRun) float64 {
			return divide(g.Steady.DeliveredPerSec, together(g.Burst.AckEventsPerSec, g.Drain.DeliveredPerSec))
		},
		func(float64) bool { return true }},
	{"engine ÷ direct: Benthos alone, from a file, no queue (for reference)", "–", "×",
		func(g goalRun) bool { return ran(g.Engine, g.Direct) },
		func(g goalRun) float64 { return divide(g.Engine.DeliveredPerSec, g.Direct.DeliveredPerSec) },
		func(float64) bool { return true }},
	{"drain ÷ engine: the queue against Benthos's file input (for reference)", "–", "×",
		func(g goalRun) bool { return ran(g.Drain, g.Engine) },
		func(g goalRun) float64 { return divide(g.Drain.DeliveredPerSec, g.Engine.DeliveredPerSec) },
		func(float64) bool { return true }},
	{"steady ÷ stock, delivered events/s", "≥ 2", "×",
		func(g goalRun) bool { return ran(g.Steady, g.Stock) },
		func(g goalRun) float64 { return divide(g.Steady.DeliveredPerSec, g.Stock.DeliveredPerSec) },
		func(x float64) bool { return x >= 2 }},
	{"journal ÷ burst, acked events/s at 64 senders: the scale-out ingest with its journal against the default pipeline", "≥ 0.8", "×",
		func(g goalRun) bool { return ran(g.Journal.record, g.Burst) },
		func(g goalRun) float64 {
			return journalFigure(g.Journal, g.Journal.AckEventsPerSec, g.Burst.AckEventsPerSec)
		},
		func(x float64) bool { return x >= 0.8 }},
	{"journal's drain ÷ burst: events/s published after the load, against burst's acked (for reference: below 1, a sustained burst fills the journal)", "–", "×",
		func(g goalRun) bool { return ran(g.Journal.record, g.Burst) },
		func(g goalRun) float64 {
			return journalFigure(g.Journal, g.Journal.DrainPerSec, g.Burst.AckEventsPerSec)
		},
		func(float64) bool { return true }},
	{"p99 ack at 16 senders, burst", "≤ 10 ms", "ms",
		func(g goalRun) bool { return ran(g.Burst16) },
		func(g goalRun) float64 { return g.Burst16.P99ms },
		func(x float64) bool { return x > 0 && x <= 10 }},
	{"p99 at 16 senders, bare (the ceiling, for reference)", "–", "ms",
		func(g goalRun) bool { return ran(g.Bare16) },
		func(g goalRun) float64 { return g.Bare16.P99ms },
		func(float64) bool { return true }},
	{"peak RSS (VmHWM) over burst and steady", "≤ 120 MB", "MiB",
		func(g goalRun) bool { return ran(g.Burst, g.Steady) },
		func(g goalRun) float64 { return g.peakRSS() },
		func(x float64) bool { return x > 0 && x*(1<<20)/1e6 <= 120 }},
	{"big post: seconds to its 200", "200 within 5 s", "s",
		func(g goalRun) bool { return g.BigPost.Events > 0 },
		func(g goalRun) float64 { return bigPostFigure(g.BigPost.Status, g.BigPost.Seconds) },
		func(x float64) bool { return x > 0 && x <= 5 }},
	{"small post sent 1 s into it: seconds to its 200", "within 1 s", "s",
		func(g goalRun) bool { return g.BigPost.Events > 0 },
		func(g goalRun) float64 {
			return bigPostFigure(g.BigPost.SmallStatus, g.BigPost.SmallSeconds)
		},
		func(x float64) bool { return x > 0 && x <= 1 }},
}

// together is the rate of a process that does two jobs, each alone done at
// rate a and b, one after the other for every event on the same cores: its
// cost per event is the sum of theirs. Steady is burst's work and drain's
// at once, so together(burst, drain) is what steady comes to when doing
// both costs nothing more than doing each.
func together(a, b float64) float64 {
	if a == 0 || b == 0 {
		return 0
	}
	return 1 / (1/a + 1/b)
}

// bigPostFigure is the seconds to a 200, or 0 (not met) for another answer.
func bigPostFigure(status int, seconds float64) float64 {
	if status != 200 {
		return 0
	}
	return seconds
}

func writeGoalReports(f *goalFlags, d *driver, runs []goalRun, started time.Time) error {
	rep := goalReport{
		Meta: meta{
			Date: started.UTC().Format(time.RFC3339), Command: "netcore-bench " + strings.Join(os.Args[1:], " "),
			CPU: cpuModel(), Cores: runtime.NumCPU(), GoVersion: runtime.Version(), RunSeconds: d.duration.Seconds(),
			Binary: d.binary, StockConfig: d.stockConfig, Elapsed: time.Since(started).Round(time.Second).String(),
		},
		Runs: runs,
	}
	rep.Goals = judgeGoals(runs)
	var md strings.Builder
	writeGoalMarkdown(&md, rep)
	fmt.Print(md.String())
	return writeReportFiles(f.out, f.jsonOut, f.svgOut, md.String(), rep, goalChartSVG(runs))
}

// judgeGoals judges every figure over runs.
func judgeGoals(runs []goalRun) []goalResult {
	var goals []goalResult
	for _, s := range goalSpecs {
		goals = append(goals, s.judge(runs))
	}
	return goals
}

// judge computes the figure in each run that measured it, their median,
// and whether the median and each run meet the goal.
func (s goalSpec) judge(runs []goalRun) goalResult {
	r := goalResult{Figure: s.figure, Goal: s.goal, unit: s.unit}
	for _, g := range runs {
		if !s.measured(g) {
			continue
		}
		v := s.value(g)
		r.Values = append(r.Values, v)
		if s.met(v) {
			r.MetRuns++
		}
	}
	r.Median = medianOf(r.Values)
	r.Met = len(r.Values) > 0 && s.met(r.Median)
	return r
}

func medianOf(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	vs = slices.Sorted(slices.Values(vs))
	if len(vs)%2 == 1 {
		return vs[len(vs)/2]
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
}

func writeGoalMarkdown(w io.Writer, rep goalReport) {
	m := rep.Meta
	fmt.Fprintf(w, "# netcore-bench goals %s\n\n", m.Date)
	fmt.Fprintf(w, "`%s`: %s, %d cores, %s; %.0f s of posting per scenario; took %s. Scenarios take turns within each run.\n\n",
		m.Command, m.CPU, m.Cores, m.GoVersion, m.RunSeconds, m.Elapsed)
	if rep.renderedFrom != "" {
		fmt.Fprintf(w, "Written again from `%s` by `netcore-bench render`: the figures as measured, the goals judged by this version.\n\n", rep.renderedFrom)
	}
	writeGoalTable(w, rep.Goals)
	fmt.Fprintln(w, "\n## Each run")
	fmt.Fprintln(w)
	for _, g := range rep.Runs {
		fmt.Fprintf(w, "Run %d: 1-minute load average of the machine %s before, %s after (2 cores; above 2, other work was waiting for them too).\n", g.Run, g.LoadAvg[0], g.LoadAvg[1])
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| run | scenario | senders | acked events/s | p50 | p99 | delivered events/s | delivered / acked | non-200 | peak RSS | CPU µs / event |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
	for _, g := range rep.Runs {
		for _, r := range g.records() {
			if !ran(r) {
				continue // a scenario left out with -scenarios
			}
			delivered := "–"
			if r.Delivered > 0 {
				delivered = thousands(r.Delivered) + " / " + thousands(r.AckEvents)
			}
			fmt.Fprintf(w, "| %d | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", g.Run, r.System, r.Concurrency,
				thousands(int(r.AckEventsPerSec+0.5)), formatMs(r.P50ms), formatMs(r.P99ms), thousands(int(r.DeliveredPerSec+0.5)),
				delivered, formatStatuses(r.Non200), formatMiB(r.PeakRSSMiB), cpuCell(r))
		}
		bp := g.BigPost
		if bp.Events > 0 {
			fmt.Fprintf(w, "| %d | big post | 1 | %s events: %d in %.2f s; 1 event sent 1 s later: %d in %.2f s; %s of the big post's events delivered %s |||||||||\n",
				g.Run, thousands(bp.Events), bp.Status, bp.Seconds, bp.SmallStatus, bp.SmallSeconds, thousands(bp.Delivered), bp.Err)
		}
	}
	var names []string
	for _, g := range rep.Runs {
		names = append(names, fmt.Sprint(g.Run))
	}
	writeJournalTable(w, rep.Runs, names)
	fmt.Fprintln(w, "\n## Notes")
	fmt.Fprintln(w)
	for _, g := range rep.Runs {
		for _, r := range g.records() {
			for _, n := range r.goalNotes() {
				fmt.Fprintf(w, "- run %d, %s at %d senders: %s\n", g.Run, r.System, r.Concurrency, n)
			}
		}
	}
}

// writeGoalTable writes each figure against its goal: the median, each
// run's value, and whether the goal is met.
func writeGoalTable(w io.Writer, goals []goalResult) {
	fmt.Fprintln(w, "| figure | goal | median | runs | met (by the median; runs meeting it on their own) |")
	fmt.Fprintln(w, "|---|---|---:|---|---|")
	for _, g := range goals {
		if len(g.Values) == 0 {
			fmt.Fprintf(w, "| %s | %s | not measured | – | – |\n", g.Figure, g.Goal)
			continue
		}
		var each []string
		for _, v := range g.Values {
			each = append(each, formatGoalValue(v, g.unit))
		}
		met := "–"
		if g.Goal != "–" {
			met = fmt.Sprintf("no, %d of %d runs", g.MetRuns, len(g.Values))
			if g.Met {
				met = fmt.Sprintf("yes, %d of %d runs", g.MetRuns, len(g.Values))
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", g.Figure, g.Goal, formatGoalValue(g.Median, g.unit), strings.Join(each, ", "), met)
	}
}

// goalNotes are what looked wrong in a run. Burst's refusals by Meiro
// Events are the scenario, not a fault, so its log is not read.
func (r record) goalNotes() []string {
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
	if r.DrainOutcome != "" && r.Delivered < r.AckEvents {
		n = append(n, fmt.Sprintf("only %s of %s acknowledged events reached the sink (%s)", thousands(r.Delivered), thousands(r.AckEvents), r.DrainOutcome))
	}
	if r.StopErr != "" {
		n = append(n, "on stopping: "+r.StopErr)
	}
	return n
}

func formatGoalValue(v float64, unit string) string {
	switch {
	case v == 0:
		return "n/a"
	case unit == "×":
		return fmt.Sprintf("%.2f×", v)
	case unit == "MiB":
		return fmt.Sprintf("%.0f MiB (%.0f MB)", v, v*(1<<20)/1e6)
	default:
		return fmt.Sprintf("%.2f %s", v, unit)
	}
}

// goalChartSVG draws the events/s of each scenario as bars, the median of
// the runs: the ceilings in grey, ours in blue, stock in orange.
func goalChartSVG(runs []goalRun) string {
	bars := []struct {
		label, color string
		value        func(goalRun) float64
	}{
		{"bare, acked (parse ceiling)", "#7f7f7f", func(g goalRun) float64 { return g.Bare.AckEventsPerSec }},
		{"burst, acked (ours, Meiro down)", "#3182bd", func(g goalRun) float64 { return g.Burst.AckEventsPerSec }},
		{"direct, delivered (delivery ceiling)", "#7f7f7f", func(g goalRun) float64 { return g.Direct.DeliveredPerSec }},
		{"engine, delivered (Benthos, no queue)", "#7f7f7f", func(g goalRun) float64 { return g.Engine.DeliveredPerSec }},
		{"drain, delivered (ours, backlog)", "#3182bd", func(g goalRun) float64 { return g.Drain.DeliveredPerSec }},
		{"steady, delivered (ours)", "#3182bd", func(g goalRun) float64 { return g.Steady.DeliveredPerSec }},
		{"stock, delivered (stock Benthos)", "#e6550d", func(g goalRun) float64 { return g.Stock.DeliveredPerSec }},
	}
	const labelW, barMaxW, rowH, top = 260, 420, 30, 50
	values := make([]float64, len(bars))
	highest := 1.0
	for i, b := range bars {
		var vs []float64
		for _, g := range runs {
			vs = append(vs, b.value(g))
		}
		values[i] = medianOf(vs)
		highest = max(highest, values[i])
	}
	width, height := labelW+barMaxW+90, top+rowH*len(bars)+20
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="13">`+"\n", width, height)
	fmt.Fprintf(&s, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&s, `<text x="10" y="25" font-size="15" font-weight="bold">events/s, 64 senders, 10 events a post (median of %d runs)</text>`+"\n", len(runs))
	for i, b := range bars {
		y := top + i*rowH
		w := int(values[i] / highest * barMaxW)
		fmt.Fprintf(&s, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW-8, y+15, html.EscapeString(b.label))
		fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%d" height="20" fill="%s"/>`+"\n", labelW, y, w, b.color)
		fmt.Fprintf(&s, `<text x="%d" y="%d">%s</text>`+"\n", labelW+w+6, y+15, thousands(int(values[i]+0.5)))
	}
	s.WriteString("</svg>\n")
	return s.String()
}
