// Package prometheus is the prometheus metrics exporter: Benthos's metrics
// and ours, served at /metrics on the admin server (Benthos core has no
// Prometheus exporter of its own).
package prometheus

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redpanda-data/benthos/v4/public/service"
)

const (
	pmFieldProcessMetrics = "add_process_metrics"
	pmFieldGoMetrics      = "add_go_metrics"
)

func prometheusSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Summary("Serves metrics in the Prometheus text format at `/metrics` (and `/stats`) on the admin server (`http.address`), for Prometheus to scrape.").
		Description(`
Every metric of the pipeline is exported: Benthos's own (`+"`input_received`"+`, `+"`output_sent`"+`, `+"`output_error`"+`, ... with their `+"`label`"+` and `+"`path`"+` labels) and netcore-connect's (`+"`netcore_posts_total`"+`, `+"`netcore_queue_events`"+`, ...; see docs/operating.md, "Metrics").

Counters and gauges are exported as they are. Timings become histograms: those whose name ends in `+"`_seconds`"+` are exported in seconds, those ending in `+"`_bytes`"+` in bytes (a size recorded through a timing), and Benthos's own (ending in `+"`_ns`"+`) in nanoseconds, as named.`).
		Fields(
			service.NewBoolField(pmFieldProcessMetrics).
				Description("Export the process's CPU, memory and open files (`process_*`).").
				Default(true),
			service.NewBoolField(pmFieldGoMetrics).
				Description("Export the Go runtime's metrics (`go_*`).").
				Default(true),
		)
}

func init() {
	service.MustRegisterMetricsExporter("prometheus", prometheusSpec(),
		func(conf *service.ParsedConfig, log *service.Logger) (service.MetricsExporter, error) {
			return newExporterFromConfig(conf)
		})
}

// exporter keeps one metric family per name in its own registry.
type exporter struct {
	reg *prom.Registry

	mu       sync.Mutex
	families map[string]prom.Collector
}

func newExporterFromConfig(conf *service.ParsedConfig) (*exporter, error) {
	e := &exporter{reg: prom.NewRegistry(), families: map[string]prom.Collector{}}
	process, err := conf.FieldBool(pmFieldProcessMetrics)
	if err != nil {
		return nil, err
	}
	goMetrics, err := conf.FieldBool(pmFieldGoMetrics)
	if err != nil {
		return nil, err
	}
	if process {
		e.reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if goMetrics {
		e.reg.MustRegister(collectors.NewGoCollector())
	}
	return e, nil
}

// HandlerFunc is what the admin server serves at /metrics.
func (e *exporter) HandlerFunc() http.HandlerFunc {
	return promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{}).ServeHTTP
}

// family returns the collector registered under name, creating it with
// create the first time. A name asked for again with other label keys, or
// as another kind of metric (a user's metric processor could), gets a
// collector that is not exported, rather than a panic.
func family[T prom.Collector](e *exporter, name string, labelKeys []string, create func(name string, labels []string) T) T {
	name, labels := metricName(name), labelNames(labelKeys)
	key := name + "{" + strings.Join(labels, ",") + "}"
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.families[key]; ok {
		if same, ok := c.(T); ok {
			return same
		}
		return create(name, labels) // another kind under this name: kept out
	}
	c := create(name, labels)
	if err := e.reg.Register(c); err != nil {
		return c // same name, other labels: kept out of /metrics
	}
	e.families[key] = c
	return c
}

func (e *exporter) NewCounterCtor(name string, labelKeys ...string) service.MetricsExporterCounterCtor {
	vec := family(e, name, labelKeys, func(name string, labels []string) *prom.CounterVec {
		return prom.NewCounterVec(prom.CounterOpts{Name: name, Help: "Counter " + name}, labels)
	})
	return func(labelValues ...string) service.MetricsExporterCounter {
		return counter{vec.WithLabelValues(labelValues...)}
	}
}

func (e *exporter) NewGaugeCtor(name string, labelKeys ...string) service.MetricsExporterGaugeCtor {
	vec := family(e, name, labelKeys, func(name string, labels []string) *prom.GaugeVec {
		return prom.NewGaugeVec(prom.GaugeOpts{Name: name, Help: "Gauge " + name}, labels)
	})
	return func(labelValues ...string) service.MetricsExporterGauge {
		return gauge{vec.WithLabelValues(labelValues...)}
	}
}

func (e *exporter) NewTimerCtor(name string, labelKeys ...string) service.MetricsExporterTimerCtor {
	unit, buckets := 1.0, prom.ExponentialBuckets(1e4, 4, 12) // nanoseconds: 10µs to ~40s
	switch {
	case strings.HasSuffix(name, "_seconds"):
		unit, buckets = 1e-9, []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	case strings.HasSuffix(name, "_bytes"):
		buckets = prom.ExponentialBuckets(256, 4, 10) // 256 B to 64 MiB
	}
	vec := family(e, name, labelKeys, func(name string, labels []string) *prom.HistogramVec {
		return prom.NewHistogramVec(prom.HistogramOpts{Name: name, Help: "Histogram " + name, Buckets: buckets}, labels)
	})
	return func(labelValues ...string) service.MetricsExporterTimer {
		return timer{obs: vec.WithLabelValues(labelValues...), unit: unit}
	}
}

func (e *exporter) Close(context.Context) error { return nil }

type counter struct{ c prom.Counter }

func (c counter) Incr(n int64)          { c.c.Add(float64(n)) }
func (c counter) IncrFloat64(n float64) { c.c.Add(n) }

type gauge struct{ g prom.Gauge }

func (g gauge) Set(v int64)          { g.g.Set(float64(v)) }
func (g gauge) SetFloat64(v float64) { g.g.Set(v) }

type timer struct {
	obs  prom.Observer
	unit float64
}

func (t timer) Timing(delta int64) { t.obs.Observe(float64(delta) * t.unit) }

var invalidNameChars = regexp.MustCompile(`[^a-zA-Z0-9_:]`)

// metricName makes a Benthos metric name a valid Prometheus one.
func metricName(name string) string {
	name = invalidNameChars.ReplaceAllString(name, "_")
	if name == "" || (name[0] >= '0' && name[0] <= '9') {
		name = "_" + name
	}
	return name
}

func labelNames(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = strings.ReplaceAll(metricName(k), ":", "_")
	}
	return out
}
