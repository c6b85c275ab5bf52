package main

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

func TestChartIsWellFormed(t *testing.T) {
	var records []record
	for _, c := range []int{1, 16, 64} {
		for _, size := range []int{1, 10} {
			for i, system := range allSystems {
				r := record{System: system, Concurrency: c, EventsPerPost: size, Run: 1,
					AckPosts: 100, AckEventsPerSec: float64(1000 * c * (i + 1))}
				if delivers(system) {
					r.DeliveredPerSec = r.AckEventsPerSec / 2
				}
				records = append(records, r)
			}
		}
	}
	svg := chartSVG(records)
	dec := xml.NewDecoder(strings.NewReader(svg))
	elements := map[string]int{}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
		if start, ok := tok.(xml.StartElement); ok {
			elements[start.Name.Local]++
		}
	}
	// Every series in each of two panels, three points each.
	if want := 2 * len(chartSeries); elements["polyline"] != want || elements["circle"] != 3*want {
		t.Errorf("%d lines and %d points, want %d and %d", elements["polyline"], elements["circle"], want, 3*want)
	}
	for _, label := range []string{"ours, delivered", "1 event a post", "10 events a post", "concurrent senders", "64"} {
		if !strings.Contains(svg, label) {
			t.Errorf("no %q in the chart", label)
		}
	}
}

func TestLogAxisTicks(t *testing.T) {
	a := newLogAxis([]float64{150, 48000})
	if a.lo != 2 || a.hi != 5 {
		t.Fatalf("axis 10^%v to 10^%v, want 10^2 to 10^5", a.lo, a.hi)
	}
	ticks := a.ticks()
	if ticks[0] != 100 || ticks[len(ticks)-1] != 100000 || len(ticks) != 10 {
		t.Errorf("ticks %v", ticks)
	}
	if f := a.fraction(1000); f < 0.33 || f > 0.34 {
		t.Errorf("1000 at %v of the axis, want a third", f)
	}
}
