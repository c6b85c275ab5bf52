package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netcore-connect/netcore-connect/internal/testing/pgtest"
)

// The ways to write a batch with ON CONFLICT in one go, compared on a real
// server (fsync on, as in production):
//
//	go test ./plugins/postgres/ -run '^$' -bench Insert -benchtime 100x -count 3
//
// unnest is what the output does: five array parameters, the events as
// text[] cast to jsonb. unnest-jsonb passes the events as jsonb[] instead.
// values is a multi-row INSERT ... VALUES with five parameters a row (its
// text depends on the batch size, so a connection prepares one statement
// per size it meets; PostgreSQL allows 65535 parameters: 13107 rows). copy
// is COPY into a temporary table and INSERT ... SELECT from it in one
// transaction (BEGIN, COPY, INSERT, COMMIT: four round trips, the COPY
// itself two).
//
// Besides events/s (wall clock, which on a busy machine says little) it
// reports the processor time per event of the server and of this process.
func BenchmarkInsert(b *testing.B) {
	s := pgtest.Start(b)
	ctx := context.Background()
	conf, err := pgxpool.ParseConfig(s.DSN + "&pool_max_conns=1")
	if err != nil {
		b.Fatal(err)
	}
	// The staging table of copy, once per connection as it would be done.
	conf.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, `CREATE TEMP TABLE netcore_stage
  (event_id text, panel_name text, event_time timestamptz, received_at timestamptz, event jsonb) ON COMMIT DELETE ROWS`)
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, conf)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	tbl, err := newTable("", defaultTable)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, tbl.createSQL); err != nil {
		b.Fatal(err)
	}
	ways := []struct {
		name  string
		write func(context.Context, *pgxpool.Pool, table, rowSet) error
	}{
		{"unnest", func(ctx context.Context, p *pgxpool.Pool, t table, r rowSet) error { return t.insert(ctx, p, r) }},
		{"unnest-jsonb", insertUnnestJSONB},
		{"values", insertValues},
		{"copy", insertCopy},
	}
	next := 0
	for _, size := range []int{100, 500, 2000} {
		for _, way := range ways {
			b.Run(fmt.Sprintf("%s/batch=%d", way.name, size), func(b *testing.B) {
				batches := make([]rowSet, b.N)
				for i := range batches {
					batches[i] = benchRows(next, size)
					next += size
				}
				// Each way starts from an empty table, so that none pays for
				// a bigger index than the others.
				if _, err := pool.Exec(ctx, `TRUNCATE `+tbl.quoted); err != nil {
					b.Fatal(err)
				}
				serverCPU, clientCPU := s.CPUTime(), processCPU(b)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := way.write(ctx, pool, tbl, batches[i]); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				events := float64(b.N * size)
				b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
				b.ReportMetric(float64((s.CPUTime()-serverCPU).Microseconds())/events, "server-µs/event")
				b.ReportMetric(float64((processCPU(b)-clientCPU).Microseconds())/events, "client-µs/event")
			})
		}
	}
}

// processCPU is the processor time this process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		b.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// benchRows are n new events, about 400 bytes of JSON each.
func benchRows(from, n int) rowSet {
	rows := make([]row, n)
	now := time.Now()
	for i := range rows {
		id := strconv.Itoa(from + i)
		rows[i] = row{
			id:         id,
			panel:      pgtype.Text{String: "cart_abandon", Valid: true},
			eventTime:  pgtype.Timestamptz{Time: now, Valid: true},
			receivedAt: pgtype.Timestamptz{Time: now, Valid: true},
			event: []byte(`{"channel":"custom_activity","msgid":"` + id + `","n":12345678901234567890,"price":45999.50,` +
				`"event_params":{"ts":240302090000,"identity":"a@example.com","product_name":"Running shoes","url":"https://shop.example.com/p/123?utm_source=netcore"},` +
				`"custom_params":{"city":"Pune","tier":"gold"},"panel_name":"cart_abandon","event_time":"2024-03-02T03:30:00Z","event_id":"` + id + `"}`),
		}
	}
	return columns(rows)
}

// insertUnnestJSONB is unnest with the events as a jsonb[] parameter.
func insertUnnestJSONB(ctx context.Context, pool *pgxpool.Pool, t table, r rowSet) error {
	_, err := pool.Exec(ctx, `INSERT INTO `+t.quoted+` (event_id, panel_name, event_time, received_at, event)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::jsonb[])
ON CONFLICT (event_id) DO NOTHING`, r.ids, r.panels, r.eventTimes, r.receivedAts, r.events)
	return err
}

func insertValues(ctx context.Context, pool *pgxpool.Pool, t table, r rowSet) error {
	var sql strings.Builder
	sql.WriteString(`INSERT INTO ` + t.quoted + ` (event_id, panel_name, event_time, received_at, event) VALUES `)
	args := make([]any, 0, 5*len(r.ids))
	for i := range r.ids {
		if i > 0 {
			sql.WriteByte(',')
		}
		n := len(args)
		fmt.Fprintf(&sql, "($%d,$%d,$%d,$%d,$%d::jsonb)", n+1, n+2, n+3, n+4, n+5)
		args = append(args, r.ids[i], r.panels[i], r.eventTimes[i], r.receivedAts[i], r.events[i])
	}
	sql.WriteString(` ON CONFLICT (event_id) DO NOTHING`)
	_, err := pool.Exec(ctx, sql.String(), args...)
	return err
}

func insertCopy(ctx context.Context, pool *pgxpool.Pool, t table, r rowSet) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"netcore_stage"},
			[]string{"event_id", "panel_name", "event_time", "received_at", "event"},
			pgx.CopyFromSlice(len(r.ids), func(i int) ([]any, error) {
				return []any{r.ids[i], r.panels[i], r.eventTimes[i], r.receivedAts[i], r.events[i]}, nil
			}))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO `+t.quoted+` SELECT * FROM netcore_stage ON CONFLICT (event_id) DO NOTHING`)
		return err
	})
}
