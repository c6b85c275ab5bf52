package tests

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/netcore-connect/netcore-connect/internal/testing/pgtest"
)

// These tests run config/destinations/postgres.yaml in the built binary
// against a real PostgreSQL server (a throwaway cluster, internal/testing/pgtest).

const postgresRecipe = "config/destinations/postgres.yaml"

// A table name that needs quoting, as an operator might choose.
const postgresTestTable = "Netcore Events"

func startPostgresRecipe(t testing.TB, pg *pgtest.Server, dir string, set ...string) *process {
	t.Helper()
	return startProcess(t, options{
		config: filepath.Join(repoRoot(t), postgresRecipe),
		dir:    dir,
		set:    set,
		env:    map[string]string{"POSTGRES_DSN": pg.DSN, "POSTGRES_TABLE": postgresTestTable},
	})
}

// pgRow is a row of the table, its event column as JSON text.
type pgRow struct {
	panel                 *string
	eventTime, receivedAt *time.Time
	event                 string
}

// pgRows reads the whole table, by event_id. It returns nil while the
// server or the table is not there yet.
func pgRows(t testing.TB, pg *pgtest.Server) map[string]pgRow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		return nil
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT event_id, panel_name, event_time, received_at, event::text FROM `+
		pgx.Identifier{postgresTestTable}.Sanitize())
	if err != nil {
		return nil
	}
	got := map[string]pgRow{}
	for rows.Next() {
		var id string
		var r pgRow
		if err := rows.Scan(&id, &r.panel, &r.eventTime, &r.receivedAt, &r.event); err != nil {
			t.Fatal(err)
		}
		got[id] = r
	}
	if rows.Err() != nil {
		return nil
	}
	return got
}

func TestPostgresRecipeWritesEachEventOnceAsARowExactly(t *testing.T) {
	pg := pgtest.Start(t)
	// Without the queue's removal of repeated posts, every event reaches
	// the output twice: the table alone must keep it to one row.
	p := startPostgresRecipe(t, pg, "", "buffer.disk_queue.dedupe_window=0s")
	want := postSamples(t, p)
	again := postSamples(t, p)
	waitFor(t, "both copies of every event written", 30*time.Second, func() bool {
		return sumMetric(scrape(t, p), "netcore_events_delivered_total", "") == float64(len(want)+len(again))
	})

	rows := pgRows(t, pg)
	if len(rows) != len(want) {
		t.Fatalf("%d rows for %d events, each sent twice; want one row per event", len(rows), len(want))
	}
	for id, r := range rows {
		ev := decodeExact(t, []byte(r.event))
		if ev["event_id"] != id || r.panel == nil || ev["panel_name"] != *r.panel || r.receivedAt == nil ||
			time.Since(*r.receivedAt) > time.Minute {
			t.Errorf("row %s: panel_name %v, received_at %v; event %s", id, r.panel, r.receivedAt, r.event)
		}
		for _, f := range addedFields {
			delete(ev, f)
		}
		matched := -1
		for i, w := range want {
			if r.panel != nil && w.panel == *r.panel && reflect.DeepEqual(w.fields, ev) {
				matched = i
				break
			}
		}
		if matched < 0 {
			t.Errorf("row %s holds an event that was not sent, or changed: %s", id, r.event)
			continue
		}
		if w := want[matched]; w.eventTime != "" && (r.eventTime == nil || r.eventTime.UTC().Format(time.RFC3339) != w.eventTime) {
			t.Errorf("row %s: event_time %v, want %s", id, r.eventTime, w.eventTime)
		}
		want = append(want[:matched], want[matched+1:]...)
	}
	for _, w := range want {
		t.Errorf("no row for: panel %s event %v", w.panel, w.fields)
	}
}

func TestPostgresRecipeKeepsBigNumbersExact(t *testing.T) {
	pg := pgtest.Start(t)
	p := startPostgresRecipe(t, pg, "")
	body, markers := markedBody("big", 1)
	if status, err := postJSON(p.webhook, body); err != nil || status != http.StatusOK {
		t.Fatalf("post: %v %d", err, status)
	}
	var rows map[string]pgRow
	waitFor(t, "the row", 30*time.Second, func() bool { rows = pgRows(t, pg); return len(rows) == 1 })
	for _, r := range rows {
		if !strings.Contains(r.event, `"big": 12345678901234567890`) || !strings.Contains(r.event, markers[0]) {
			t.Errorf("event column %s; want the marker and 12345678901234567890 exactly", r.event)
		}
	}
}

// PostgreSQL crashes and comes back, then restarts cleanly, while Netcore
// keeps posting: every event answered 200 ends as exactly one row, and
// nothing else is in the table.
func TestPostgresRestartsMidLoadLoseNothingAcknowledgedAndDuplicateNothing(t *testing.T) {
	pg := pgtest.Start(t)
	p := startPostgresRecipe(t, pg, "")
	received := func() float64 { return sumMetric(scrape(t, p), "netcore_events_received_total", "") }

	stop := make(chan struct{})
	acked := load(p.webhook, "pg", 8, stop)
	outages := []struct {
		name string
		stop func()
	}{
		// Immediate shutdown: batches in flight fail, the next start
		// recovers from the write-ahead log.
		{"crash", pg.Crash},
		// Fast shutdown, as pg_ctl restart does: sessions are ended.
		{"restart", pg.Stop},
	}
	for _, o := range outages {
		before := len(pgRows(t, pg))
		waitFor(t, "more rows written before the "+o.name, 30*time.Second, func() bool { return len(pgRows(t, pg)) > before })
		o.stop()
		atStop := received()
		time.Sleep(1500 * time.Millisecond)
		duringOutage := received() - atStop
		pg.Restart()
		if duringOutage == 0 {
			t.Fatalf("no post was acknowledged while PostgreSQL was down (%s): the test did not test the outage", o.name)
		}
		t.Logf("%s: %.0f events acknowledged while PostgreSQL was down", o.name, duringOutage)
	}
	close(stop)
	want := markerSet(acked())

	rows := waitForMarkers(t, pg, want)
	if len(rows) != len(want) {
		t.Errorf("%d rows for %d acknowledged events", len(rows), len(want))
	}
	t.Logf("%d acknowledged events, %d rows", len(want), len(rows))
}

// netcore-connect is killed (kill -9) while it writes: the batches it had
// in flight are written again after its restart, some of them a second
// time, and still every event answered 200 is exactly one row.
func TestPostgresKill9OfNetcoreConnectMidLoadKeepsOneRowPerEvent(t *testing.T) {
	pg := pgtest.Start(t)
	dir := t.TempDir()
	p := startPostgresRecipe(t, pg, dir)

	stop := make(chan struct{})
	acked := load(p.webhook, "kill", 8, stop)
	// Well into the load, with batches in flight.
	waitFor(t, "rows written before the kill", 30*time.Second, func() bool { return len(pgRows(t, pg)) >= 2000 })
	p.kill()
	close(stop)
	want := markerSet(acked())
	if len(want) == 0 {
		t.Fatal("no post was acknowledged before the kill")
	}

	startPostgresRecipe(t, pg, dir)
	// A post cut off by the kill may have been stored without its 200: its
	// events may be rows too, so only the acknowledged ones are counted.
	rows := waitForMarkers(t, pg, want)
	t.Logf("%d acknowledged events, %d rows", len(want), len(rows))
}

func markerSet(markers []string) map[string]bool {
	set := map[string]bool{}
	for _, m := range markers {
		set[m] = true
	}
	return set
}

// waitForMarkers waits until every wanted marker is in the table, and
// checks that no marker is in it twice.
func waitForMarkers(t *testing.T, pg *pgtest.Server, want map[string]bool) map[string]pgRow {
	t.Helper()
	var rows map[string]pgRow
	count := map[string]int{}
	waitFor(t, fmt.Sprintf("%d acknowledged events as rows", len(want)), 90*time.Second, func() bool {
		rows = pgRows(t, pg)
		clear(count)
		for _, r := range rows {
			marker, _ := decodeExact(t, []byte(r.event))["marker"].(string)
			count[marker]++
		}
		for m := range want {
			if count[m] == 0 {
				return false
			}
		}
		return true
	})
	for m, n := range count {
		if n != 1 {
			t.Errorf("event %s: %d rows, want 1", m, n)
		}
	}
	return rows
}

// An event PostgreSQL can never store (a \u0000 escape, which jsonb
// refuses) becomes a dead letter with the reason, and leaves the queue; the
// event posted with it is written as a row.
func TestPostgresRecipeKeepsAnEventThatCannotBeARowAsADeadLetter(t *testing.T) {
	pg := pgtest.Start(t)
	p := startPostgresRecipe(t, pg, "")
	body := []byte(`{"load":[{"marker":"fine"},{"marker":"nul","note":"a\u0000b"}]}`)
	if status, err := postJSON(p.webhook, body); err != nil || status != http.StatusOK {
		t.Fatalf("post: %d %v", status, err)
	}
	waitFor(t, "a row and a dead letter", 30*time.Second, func() bool {
		m := scrape(t, p)
		return sumMetric(m, "netcore_events_delivered_total", "") == 2 && sumMetric(m, "netcore_events_dead_lettered_total", "") == 1
	})
	rows := pgRows(t, pg)
	if len(rows) != 1 {
		t.Fatalf("%d rows, want the one event that can be a row", len(rows))
	}
	for _, r := range rows {
		if !strings.Contains(r.event, `"fine"`) {
			t.Errorf("the row holds %s, want the event marked fine", r.event)
		}
	}
	letters := readLines(t, filepath.Join(p.dataDir, "dead-letter"))
	if !strings.Contains(letters, `"marker":"nul"`) || !strings.Contains(letters, `a\u0000b`) || !strings.Contains(letters, "jsonb cannot store") {
		t.Errorf("dead letters:\n%s\nwant the event marked nul, exactly, with the reason", letters)
	}
	waitQueued(t, p, 0)
}

func TestPostgresRecipeLints(t *testing.T) {
	cmd := exec.Command(binary, "lint", postgresRecipe)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "POSTGRES_DSN=postgres://netcore@127.0.0.1:1/events")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("netcore-connect lint %s: %v\n%s", postgresRecipe, err, out)
	}
}

var drainEvents = flag.Int("drain-events", 20000, "events in the queue for BenchmarkPostgresDrain")

// fillQueue posts n events, 100 a post, from 8 senders, each answered 200.
func fillQueue(b *testing.B, p *process, n int) {
	b.Helper()
	const perPost, senders = 100, 8
	posts := make(chan []byte)
	failed := make(chan string, n/perPost+1)
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range posts {
				if status, err := postJSON(p.webhook, body); err != nil || status != http.StatusOK {
					failed <- fmt.Sprintf("%v %d", err, status)
				}
			}
		}()
	}
	for i := 0; i < n; i += perPost {
		body, _ := markedBody(fmt.Sprintf("drain-%d", i), min(perPost, n-i))
		posts <- body
	}
	close(posts)
	wg.Wait()
	close(failed)
	for f := range failed {
		b.Fatalf("filling the queue, a post was not acknowledged: %s", f)
	}
}
