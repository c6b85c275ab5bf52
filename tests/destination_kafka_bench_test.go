package tests

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/netcore-connect/netcore-connect/bench/loadgen"
)

// BenchmarkKafkaDrain fills the queue while Kafka is down, then measures
// events/s delivered from the full queue to kfake, from the first record
// written to the last:
//
//	go test ./tests -run '^$' -bench KafkaDrain -benchtime 1x -timeout 10m
func BenchmarkKafkaDrain(b *testing.B) {
	for range b.N {
		k := newKafka(b, kfake.NumBrokers(1), kfake.SeedTopics(6, kafkaTopic), kfake.BlackholeProduce())
		p := startKafkaRecipe(b, k, "")
		r, err := loadgen.Run(context.Background(), loadgen.Config{URL: p.webhook, Concurrency: 16, EventsPerPost: 10, Duration: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		k.start(b)
		admin := k.admin(b)
		written := func() int64 {
			ends, err := admin.ListEndOffsets(context.Background(), kafkaTopic)
			if err != nil {
				return 0
			}
			var n int64
			ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
			return n
		}
		var first time.Time
		var atFirst int64
		waitFor(b, "the queue drained into Kafka", 5*time.Minute, func() bool {
			n := written()
			if n > 0 && first.IsZero() {
				first, atFirst = time.Now(), n
			}
			return n >= int64(r.Events)
		})
		b.ReportMetric(float64(r.Events), "queued_events")
		b.ReportMetric(float64(int64(r.Events)-atFirst)/time.Since(first).Seconds(), "drained_events/s")
		p.stop(b)
		k.stop()
	}
}
