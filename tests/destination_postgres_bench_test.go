package tests

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/netcore-connect/netcore-connect/internal/testing/pgtest"
)

// BenchmarkPostgresDrain measures how fast a full queue empties into
// PostgreSQL. The queue is filled by the default pipeline while its Meiro
// Events answers 503 (the postgres recipe would not be ready without its
// database), then the postgres recipe starts on the same queue, and the
// time is taken from its start to the last row:
//
//	go test ./tests -run '^$' -bench PostgresDrain -benchtime 1x -drain-events 100000
func BenchmarkPostgresDrain(b *testing.B) {
	for i := 0; i < b.N; i++ {
		pg := pgtest.Start(b)
		dir := b.TempDir()
		m := newMeiro(b)
		m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
		fill := startProcess(b, options{env: m.env(), dir: dir})
		fillQueue(b, fill, *drainEvents)
		fill.stop(b)

		start := time.Now()
		startPostgresRecipe(b, pg, dir)
		ctx := context.Background()
		conn := pg.Conn(ctx)
		waitFor(b, "the queue drained into PostgreSQL", 10*time.Minute, func() bool {
			var n int
			err := conn.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{postgresTestTable}.Sanitize()).Scan(&n)
			return err == nil && n == *drainEvents
		})
		b.ReportMetric(float64(*drainEvents)/time.Since(start).Seconds(), "events/s")
	}
}
