package main

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strings"
)

// series is one line of the chart: a measure of one system.
type series struct {
	system string
	label  string
	color  string
	dashed bool
	value  func(record) float64
}

var chartSeries = []series{
	{systemBare, "bare, acknowledged", "#7f7f7f", false, func(r record) float64 { return r.AckEventsPerSec }},
	{systemStock, "stock, acknowledged", "#e6550d", false, func(r record) float64 { return r.AckEventsPerSec }},
	{systemOurs, "ours, acknowledged", "#3182bd", false, func(r record) float64 { return r.AckEventsPerSec }},
	{systemDirect, "direct (ceiling), delivered", "#000000", true, func(r record) float64 { return r.DeliveredPerSec }},
	{systemStock, "stock, delivered", "#e6550d", true, func(r record) float64 { return r.DeliveredPerSec }},
	{systemOurs, "ours, delivered", "#3182bd", true, func(r record) float64 { return r.DeliveredPerSec }},
	{systemOursBatched, "ours batched, delivered", "#31a354", true, func(r record) float64 { return r.DeliveredPerSec }},
}

// Chart geometry, in pixels.
const (
	plotW, plotH             = 380, 260
	marginL, marginR         = 70, 20
	marginT, marginB         = 40, 50
	headerH                  = 70 // title and legend
	panelW                   = marginL + plotW + marginR
	panelH                   = marginT + plotH + marginB
	legendItemW, legendLineW = 175, 28
	chartMinW                = 2*marginL + 3*legendItemW // room for the title and a legend row
)

// chartSVG draws events/s against the number of senders, one panel per
// number of events a post, each point the median of its runs. The y axis is
// shared, so the panels compare.
func chartSVG(records []record) string {
	var shown []series
	for _, s := range chartSeries {
		if slices.ContainsFunc(records, func(r record) bool { return r.System == s.system }) {
			shown = append(shown, s)
		}
	}
	var concurrencies, sizes []int
	for _, c := range cells(records) {
		if !slices.Contains(concurrencies, c.concurrency) {
			concurrencies = append(concurrencies, c.concurrency)
		}
		if !slices.Contains(sizes, c.size) {
			sizes = append(sizes, c.size)
		}
	}
	slices.Sort(concurrencies)
	slices.Sort(sizes)

	var values []float64
	for _, s := range shown {
		for _, c := range cells(records) {
			if v := median(records, s.system, c, s.value); v > 0 {
				values = append(values, v)
			}
		}
	}
	axis := newLogAxis(values)

	width := max(len(sizes)*panelW, chartMinW)
	height := headerH + panelH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="16" font-weight="bold">Netcore events per second by concurrent senders</text>`+"\n", marginL)
	for i, s := range shown {
		x, y := marginL+(i%3)*legendItemW, 42+(i/3)*18
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2.5"%s/>`, x, y-4, x+legendLineW, y-4, s.color, dash(s))
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", x+legendLineW+6, y, html.EscapeString(s.label))
	}
	for i, size := range sizes {
		drawPanel(&b, records, shown, concurrencies, size, i*panelW, headerH, axis)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func drawPanel(b *strings.Builder, records []record, shown []series, concurrencies []int, size, x0, y0 int, axis logAxis) {
	left, bottom := float64(x0+marginL), float64(y0+marginT+plotH)
	xAt := func(i int) float64 { return left + (float64(i)+0.5)*plotW/float64(len(concurrencies)) }
	yAt := func(v float64) float64 { return bottom - axis.fraction(v)*plotH }

	fmt.Fprintf(b, `<text x="%.0f" y="%d" font-weight="bold" text-anchor="middle">%s a post</text>`+"\n", left+plotW/2, y0+marginT-12, plural(size, "event"))
	for _, v := range axis.ticks() {
		y := yAt(v)
		fmt.Fprintf(b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#e0e0e0"/>`, left, y, left+plotW, y)
		fmt.Fprintf(b, `<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y+4, shortNumber(v))
	}
	fmt.Fprintf(b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`, left, bottom, left+plotW, bottom)
	fmt.Fprintf(b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, bottom, left, bottom-plotH)
	for i, c := range concurrencies {
		fmt.Fprintf(b, `<text x="%.1f" y="%.0f" text-anchor="middle">%d</text>`+"\n", xAt(i), bottom+18, c)
	}
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="middle">concurrent senders</text>`+"\n", left+plotW/2, bottom+38)
	fmt.Fprintf(b, `<text transform="translate(%.0f %.0f) rotate(-90)" text-anchor="middle">events/s (log scale)</text>`+"\n", left-52, bottom-plotH/2)

	for _, s := range shown {
		var points []string
		for i, c := range concurrencies {
			v := median(records, s.system, cell{c, size}, s.value)
			if v == 0 {
				continue // not measured
			}
			x, y := xAt(i), yAt(v)
			points = append(points, fmt.Sprintf("%.1f,%.1f", x, y))
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s, %d senders: %s events/s</title></circle>`+"\n",
				x, y, s.color, html.EscapeString(s.label), c, thousands(int(v+0.5)))
		}
		if len(points) > 1 {
			fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(points, " "), s.color, dash(s))
		}
	}
}

func dash(s series) string {
	if s.dashed {
		return ` stroke-dasharray="6 4"`
	}
	return ""
}

// logAxis is a base-10 logarithmic axis from 10^lo to 10^hi: the systems
// differ by ten times and more, which a linear axis would flatten.
type logAxis struct{ lo, hi float64 }

// newLogAxis spans values in whole decades.
func newLogAxis(values []float64) logAxis {
	if len(values) == 0 {
		return logAxis{2, 5}
	}
	lo, hi := math.Floor(math.Log10(slices.Min(values))), math.Ceil(math.Log10(slices.Max(values)))
	if hi == lo {
		hi++
	}
	return logAxis{lo, hi}
}

// fraction is where v lies on the axis, 0 at the bottom, 1 at the top.
func (a logAxis) fraction(v float64) float64 {
	return (math.Log10(v) - a.lo) / (a.hi - a.lo)
}

// ticks are 1, 2 and 5 times each power of ten, or only the powers of ten
// when there are more than three decades.
func (a logAxis) ticks() []float64 {
	steps := []float64{1, 2, 5}
	if a.hi-a.lo > 3 {
		steps = []float64{1}
	}
	var ts []float64
	for e := a.lo; e <= a.hi; e++ {
		for _, m := range steps {
			if t := m * math.Pow(10, e); e < a.hi || m == 1 {
				ts = append(ts, t)
			}
		}
	}
	return ts
}

// shortNumber is an axis label: 5, 500, 2k, 200k, 1M.
func shortNumber(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	default:
		return fmt.Sprintf("%g", v)
	}
}
