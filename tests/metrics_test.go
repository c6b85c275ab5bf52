package tests

import (
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/stage"
)

// sumMetric adds up every series of a metric whose labels contain match.
func sumMetric(metrics, name, match string) float64 {
	var sum float64
	re := regexp.MustCompile(`(?m)^` + name + `(\{[^}]*\})? (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(metrics, -1) {
		if strings.Contains(m[1], match) {
			v, _ := strconv.ParseFloat(m[2], 64)
			sum += v
		}
	}
	return sum
}

func scrape(t testing.TB, p *process) string {
	t.Helper()
	resp, err := http.Get(p.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

func TestMetricsCountWhatArrived(t *testing.T) {
	m := newMeiro(t)
	env := m.env()
	env["NETCORE_ALLOWED_IPS"] = "127.0.0.1"
	p := startProcess(t, options{env: env})

	events := len(postSamples(t, p))
	// From 127.0.0.2: still loopback, but not on the allowlist.
	outsider := fromOtherAddress()
	resp, err := outsider.Post(p.webhook, "application/json", strings.NewReader(`{"p":[{}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a post from 127.0.0.2: %d, want 403", resp.StatusCode)
	}
	waitFor(t, "every event delivered", 10*time.Second, func() bool { return len(m.received()) == events })
	waitFor(t, "the metrics to catch up", 5*time.Second, func() bool {
		return sumMetric(scrape(t, p), "netcore_events_delivered_total", "") == float64(events)
	})

	metrics := scrape(t, p)
	for _, name := range stage.Metrics {
		if name == stage.MetricEventsArchived || name == stage.MetricArchiveFilesDamaged {
			continue // exported by the archive recipes, not the default pipeline
		}
		if name == stage.MetricRepeatsDropped || name == stage.MetricDeliveredIDsEvicted {
			continue // exported by the scale-out deliverer's input (TestJournalSavesWhatAPowerCutOfTheWholeClusterLoses)
		}
		if name == stage.MetricQuarantinedPosts {
			continue // a series per client, from the first post quarantined (TestQuarantineHoldsPostsFromUnknownAddressesUntilReleased)
		}
		if !regexp.MustCompile(`(?m)^` + name + `(_bucket|_count|_sum)?(\{|\s)`).MatchString(metrics) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if got := sumMetric(metrics, "netcore_events_received_total", ""); got != float64(events) {
		t.Errorf("netcore_events_received_total %v, want %d", got, events)
	}
	if got := sumMetric(metrics, "netcore_events_received_total", `panel="cart_abandon"`); got != 2 {
		t.Errorf("cart_abandon received %v, want 2", got)
	}
	if got := sumMetric(metrics, "netcore_posts_total", `status="403"`); got != 1 {
		t.Errorf("403s counted %v, want 1", got)
	}
	if got := sumMetric(metrics, "netcore_posts_total", `status="200"`); got != 4 {
		t.Errorf("200s counted %v, want 4", got)
	}
	if got := sumMetric(metrics, "netcore_queue_events", ""); got != 0 {
		t.Errorf("netcore_queue_events %v once all is delivered, want 0", got)
	}
	if got := sumMetric(metrics, "netcore_ack_seconds_count", ""); got != 4 {
		t.Errorf("netcore_ack_seconds counted %v posts, want 4", got)
	}
}

// The dashboard and alerts must only use metrics that exist.
func TestDeployFilesUseExportedMetrics(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(repoRoot(t), "deploy", "*"))
	if len(files) < 2 {
		t.Fatalf("deploy/ holds %v, want the dashboard and the alerts", files)
	}
	known := map[string]bool{}
	for _, n := range stage.Metrics {
		known[n] = true
	}
	for _, f := range files {
		used := regexp.MustCompile(`netcore_[a-z_]+`).FindAllString(string(readFile(t, f)), -1)
		if len(used) == 0 {
			t.Errorf("%s uses no netcore metric", f)
		}
		for _, name := range used {
			if base := regexp.MustCompile(`_(bucket|count|sum)$`).ReplaceAllString(name, ""); !known[base] {
				t.Errorf("%s uses %s, which is not exported", filepath.Base(f), name)
			}
		}
	}
}

// The metric table of docs/operating.md names exactly the metrics of the
// stage contract: none missing, none that is not exported.
func TestMetricTableMatchesTheContract(t *testing.T) {
	page := string(readFile(t, filepath.Join(repoRoot(t), "docs", "operating.md")))
	documented := map[string]bool{}
	for _, row := range regexp.MustCompile("(?m)^\\| (`netcore_[^|]*)\\|").FindAllStringSubmatch(page, -1) {
		for _, name := range regexp.MustCompile("netcore_[a-z_]+").FindAllString(row[1], -1) {
			documented[name] = true
		}
	}
	for _, name := range stage.Metrics {
		if !documented[name] {
			t.Errorf("%s is exported but not in the metric table of docs/operating.md", name)
		}
		delete(documented, name)
	}
	for name := range documented {
		t.Errorf("the metric table of docs/operating.md lists %s, which is not in internal/stage", name)
	}
}
