package tests

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/netcore-connect/netcore-connect/bench/loadgen"
)

// BenchmarkIngestAndDelivery measures the single-node disk queue against the
// scale-out configs on JetStream, with the same load: 64 senders posting 10
// events a post for 5 s, then until every event is delivered.
//
//	go test ./tests -run '^$' -bench IngestAndDelivery -benchtime 1x -timeout 20m
func BenchmarkIngestAndDelivery(b *testing.B) {
	b.Run("disk-queue", func(b *testing.B) {
		m := newMeiro(b)
		p := startProcess(b, options{env: m.env()})
		measureIngestAndDelivery(b, m, p.webhook)
	})
	for _, tc := range []struct {
		name     string
		nodes    int
		replicas string
	}{{"jetstream-3-nodes-replicas-3", 3, "3"}, {"jetstream-3-nodes-replicas-1", 3, "1"}} {
		b.Run(tc.name, func(b *testing.B) {
			nodes := startCluster(b)
			m := newMeiro(b)
			env := map[string]string{"NATS_URL": clusterURLs(nodes), "NETCORE_STREAM_REPLICAS": tc.replicas, "MEIRO_EVENTS_URL": m.URL + "/collect"}
			ingest := startProcess(b, options{env: env, config: filepath.Join(repoRoot(b), "config", "scale-out", "ingest.yaml")})
			startProcess(b, options{env: env, config: filepath.Join(repoRoot(b), "config", "scale-out", "deliver.yaml")})
			measureIngestAndDelivery(b, m, ingest.webhook)
		})
	}
}

// measureIngestAndDelivery posts from 64 senders for 5 s to target and
// reports the acknowledged and delivered rates.
func measureIngestAndDelivery(b *testing.B, m *meiro, target string) {
	for range b.N {
		start := time.Now()
		r, err := loadgen.Run(context.Background(), loadgen.Config{URL: target, Concurrency: 64, EventsPerPost: 10, Duration: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		waitFor(b, "every acknowledged event delivered", 5*time.Minute, func() bool { return len(m.received()) >= r.Events })
		delivered := time.Since(start)
		b.ReportMetric(r.EventsPerSec(), "acked_events/s")
		b.ReportMetric(float64(r.P99.Microseconds())/1000, "p99_ms")
		b.ReportMetric(float64(len(m.received()))/delivered.Seconds(), "delivered_events/s")
	}
}
