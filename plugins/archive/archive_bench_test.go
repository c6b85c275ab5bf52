package archive

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// BenchmarkOutputWriteBatch archives batches of 1024 events of about 300
// bytes, each batch appended and fsync'd, as the recipes configure it;
// events/s is what one output sustains on this disk.
func BenchmarkOutputWriteBatch(b *testing.B) {
	for _, gz := range []bool{false, true} {
		b.Run(fmt.Sprintf("gzip=%v", gz), func(b *testing.B) {
			conf, err := outputSpec().ParseYAML(fmt.Sprintf("dir: %s\ngzip: %v", b.TempDir(), gz), nil)
			if err != nil {
				b.Fatal(err)
			}
			a, err := newOutputFromConfig(conf, service.MockResources())
			if err != nil {
				b.Fatal(err)
			}
			if err := a.Connect(context.Background()); err != nil {
				b.Fatal(err)
			}
			batch := make(service.MessageBatch, 1024)
			for i := range batch {
				batch[i] = event(fmt.Sprintf(`{"channel":"custom_activity","msgid":"%d","event_params":{"ts":240302090000,"identity":"user%d@example.com","product":"Trek Marlin 7","price":45999.50,"big":12345678901234567890},"panel_name":"cart_abandon","event_time":"2024-03-02T03:30:00Z","event_id":"144671a68cfba6dc9b38cb6c3fc43e0a"}`, i, i), "2026-11-28T13:00:00Z")
			}
			for b.Loop() {
				if err := a.WriteBatch(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkExamineGzipHour checks a gzip hour file of 100 batches of 1024
// events member by member, as the output does on its first append after a
// start and a replay does before reading a file; events/s is how fast.
func BenchmarkExamineGzipHour(b *testing.B) {
	dir := b.TempDir()
	conf, err := outputSpec().ParseYAML("dir: "+dir+"\ngzip: true", nil)
	if err != nil {
		b.Fatal(err)
	}
	a, err := newOutputFromConfig(conf, service.MockResources())
	if err != nil {
		b.Fatal(err)
	}
	batch := make(service.MessageBatch, 1024)
	for i := range batch {
		batch[i] = event(fmt.Sprintf(`{"channel":"custom_activity","msgid":"%d","event_params":{"ts":240302090000,"identity":"user%d@example.com","price":45999.50},"panel_name":"cart_abandon","event_id":"144671a68cfba6dc9b38cb6c3fc43e0a"}`, i, i), "2026-11-28T13:00:00Z")
	}
	for range 100 {
		if err := a.WriteBatch(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	f, err := os.Open(hourFile(dir, time.Date(2026, 11, 28, 13, 0, 0, 0, time.UTC), true))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for b.Loop() {
		if l, err := examine(f, true); err != nil || len(l.whole) != 1 {
			b.Fatal(err, l)
		}
	}
	b.ReportMetric(float64(b.N*100*len(batch))/b.Elapsed().Seconds(), "events/s")
}
