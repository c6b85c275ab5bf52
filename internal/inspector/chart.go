package inspector

import (
	"fmt"
	"html/template"
	"strings"
)

// Size of the chart of events per minute, in SVG user units.
const (
	chartWidth  = 600
	chartHeight = 100
)

// perMinuteChart draws events received and delivered per minute for the
// last hour as an inline SVG: drawn by the server, nothing loaded from
// anywhere else. Both lines share one scale, so a gap between them is a
// backlog growing or shrinking.
func perMinuteChart(received, delivered []int) template.HTML {
	top := 1
	for _, series := range [][]int{received, delivered} {
		for _, v := range series {
			top = max(top, v)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="events received and delivered per minute, last hour">`,
		chartWidth, chartHeight+20, chartWidth, chartHeight+20)
	fmt.Fprintf(&b, `<line x1="0" y1="%d" x2="%d" y2="%d" stroke="#ccc"/>`, chartHeight, chartWidth, chartHeight)
	for _, line := range []struct {
		series []int
		color  string
		name   string
	}{{received, "#2563eb", "received"}, {delivered, "#16a34a", "delivered"}} {
		fmt.Fprintf(&b, `<polyline class="%s" fill="none" stroke="%s" stroke-width="2" points="%s"/>`, line.name, line.color, chartPoints(line.series, top))
	}
	fmt.Fprintf(&b, `<text x="0" y="%d" font-size="11">60 min ago</text><text x="%d" y="%d" font-size="11" text-anchor="end">now</text>`, chartHeight+15, chartWidth, chartHeight+15)
	fmt.Fprintf(&b, `<text x="2" y="11" font-size="11">%d/min</text></svg>`, top)
	return template.HTML(b.String()) //nolint:gosec // built from numbers only
}

func chartPoints(series []int, top int) string {
	points := make([]string, len(series))
	step := float64(chartWidth) / float64(max(len(series)-1, 1))
	for i, v := range series {
		points[i] = fmt.Sprintf("%.1f,%.1f", float64(i)*step, float64(chartHeight)-float64(v)*float64(chartHeight-14)/float64(top))
	}
	return strings.Join(points, " ")
}
