package prometheus

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// newTestExporter exports only what a test records.
func newTestExporter(t *testing.T) *exporter {
	t.Helper()
	conf, err := prometheusSpec().ParseYAML("add_go_metrics: false\nadd_process_metrics: false", nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := newExporterFromConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestExporterServesCountersGaugesAndHistograms(t *testing.T) {
	e := newTestExporter(t)
	e.NewCounterCtor("netcore_posts_total", "path", "status")("root.input", "200").Incr(3)
	e.NewGaugeCtor("netcore_queue_events")().Set(42)
	e.NewTimerCtor("netcore_ack_seconds")().Timing(2_000_000) // 2 ms, in nanoseconds
	e.NewTimerCtor("netcore_post_bytes")().Timing(1500)
	e.NewTimerCtor("output_latency_ns")().Timing(5000)
	// Asked for again, the same family is used; with other labels it is
	// kept out rather than breaking the exporter.
	e.NewCounterCtor("netcore_posts_total", "path", "status")("root.input", "200").Incr(1)
	e.NewCounterCtor("netcore_posts_total", "other")("x").Incr(100)
	e.NewCounterCtor("odd.name-with chars")().Incr(1)

	rec := httptest.NewRecorder()
	e.HandlerFunc()(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`netcore_posts_total{path="root.input",status="200"} 4`,
		`netcore_queue_events 42`,
		`netcore_ack_seconds_bucket{le="0.0025"} 1`, // seconds, not nanoseconds
		`netcore_ack_seconds_count 1`,
		`netcore_post_bytes_bucket{le="4096"} 1`,
		`netcore_post_bytes_sum 1500`,
		`output_latency_ns_sum 5000`,
		`odd_name_with_chars 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(string(body), `other="x"`) {
		t.Error("a family asked for with other labels was exported")
	}
}

func TestExporterSurvivesANameUsedForTwoKinds(t *testing.T) {
	e := newTestExporter(t)
	e.NewCounterCtor("twice")().Incr(1)
	e.NewGaugeCtor("twice")().Set(5) // must not panic, nor replace the counter
	e.NewTimerCtor("twice")().Timing(5)
	e.NewCounterCtor("after")().Incr(2)

	rec := httptest.NewRecorder()
	e.HandlerFunc()(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 {
		t.Fatalf("/metrics answered %d: %s", rec.Code, body)
	}
	// The first kind keeps the name; the others are left out, and metrics
	// made afterwards are still exported.
	for _, want := range []string{"# TYPE twice counter\ntwice 1\n", "after 2\n"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(string(body), "twice 5") || strings.Contains(string(body), "twice_bucket") {
		t.Errorf("the gauge or the timer named like the counter was exported:\n%s", body)
	}
}
