package tests

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/netcore-connect/netcore-connect/internal/testing/pgtest"
)

// BenchmarkDestinationsDrain fills one disk queue while Meiro Events is down,
// then drains copies of it into each destination in turn, in the same run:
// the HTTP stand-in of Meiro Events (the default pipeline, one event a
// request), PostgreSQL (the postgres recipe, a real server), Kafka (the kafka
// recipe, franz-go's in-process kfake: a test double, no broker runs here)
// and the hourly archive (archive-only). Each is timed from its start to its
// last event; with -count above 1 the order turns each time, so that no
// destination always runs first:
//
//	go test ./tests -run '^$' -bench DestinationsDrain -benchtime 1x -count 2 -drain-events 50000
func BenchmarkDestinationsDrain(b *testing.B) {
	full := b.TempDir()
	m := newMeiro(b)
	m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
	fill := startProcess(b, options{env: m.env(), dir: full})
	fillQueue(b, fill, *drainEvents)
	fill.stop(b)

	drains := []struct {
		name  string
		drain func(b *testing.B, dir string) time.Duration
	}{
		{"http", drainToHTTP}, {"postgres", drainToPostgres}, {"kafka", drainToKafka}, {"archive", drainToArchive},
	}
	rates := map[string][]float64{}
	for i := range b.N {
		for j := range drains {
			d := drains[(i+j)%len(drains)]
			dir := b.TempDir()
			copyFile(b, filepath.Join(full, "data", "queue", "events.db"), filepath.Join(dir, "data", "queue", "events.db"))
			rates[d.name] = append(rates[d.name], float64(*drainEvents)/d.drain(b, dir).Seconds())
		}
	}
	for _, d := range drains {
		b.ReportMetric(mean(rates[d.name]), d.name+"-events/s")
	}
}

func copyFile(b *testing.B, from, to string) {
	b.Helper()
	if err := os.MkdirAll(filepath.Dir(to), 0o750); err != nil {
		b.Fatal(err)
	}
	src, err := os.Open(from)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		b.Fatal(err)
	}
	defer dst.Close()
	if _, err := io.Copy(dst, src); err != nil {
		b.Fatal(err)
	}
}

func drainToHTTP(b *testing.B, dir string) time.Duration {
	m := newMeiro(b)
	start := time.Now()
	p := startProcess(b, options{env: m.env(), dir: dir})
	waitFor(b, "the queue drained to the HTTP stand-in", 10*time.Minute, func() bool { return m.receivedCount() >= *drainEvents })
	elapsed := time.Since(start)
	p.stop(b)
	return elapsed
}

func drainToPostgres(b *testing.B, dir string) time.Duration {
	pg := pgtest.Start(b)
	start := time.Now()
	p := startPostgresRecipe(b, pg, dir)
	ctx := context.Background()
	conn := pg.Conn(ctx)
	waitFor(b, "the queue drained into PostgreSQL", 10*time.Minute, func() bool {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{postgresTestTable}.Sanitize()).Scan(&n)
		return err == nil && n >= *drainEvents
	})
	elapsed := time.Since(start)
	p.stop(b)
	return elapsed
}

func drainToKafka(b *testing.B, dir string) time.Duration {
	k := newKafka(b, kfake.NumBrokers(1), kfake.SeedTopics(6, kafkaTopic))
	k.start(b)
	start := time.Now()
	p := startKafkaRecipe(b, k, dir)
	admin := k.admin(b)
	waitFor(b, "the queue drained into Kafka", 10*time.Minute, func() bool {
		ends, err := admin.ListEndOffsets(context.Background(), kafkaTopic)
		if err != nil {
			return false
		}
		var n int64
		ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
		return n >= int64(*drainEvents)
	})
	elapsed := time.Since(start)
	p.stop(b)
	k.stop()
	return elapsed
}

func drainToArchive(b *testing.B, dir string) time.Duration {
	start := time.Now()
	p := startProcess(b, options{config: recipe(b, "destinations/archive-only.yaml"), dir: dir})
	waitFor(b, "the queue drained into the archive", 10*time.Minute, func() bool { return len(archived(b, p.dataDir)) >= *drainEvents })
	elapsed := time.Since(start)
	p.stop(b)
	return elapsed
}
