package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/testing/pgtest"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newOutput is a postgres output from yaml (dsn added), not yet connected.
func newOutput(t *testing.T, dsn, yaml string) *output {
	t.Helper()
	conf, err := outputSpec().ParseYAML(fmt.Sprintf("dsn: %q\n%s", dsn, yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := newOutputFromConfig(conf, service.MockResources(), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = out.Close(context.Background()) })
	return out
}

func connectedOutput(ctx context.Context, t *testing.T, dsn, yaml string) *output {
	t.Helper()
	out := newOutput(t, dsn, yaml)
	if err := out.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	return out
}

// event is a message as netcore_explode makes it: the body with the added
// fields, and its metadata.
func event(id, panel, body string) *service.Message {
	m := service.NewMessage([]byte(body))
	m.MetaSetMut("netcore_event_id", id)
	m.MetaSetMut("netcore_panel", panel)
	m.MetaSetMut("netcore_received_at", "2026-11-28T04:00:00.123456Z")
	return m
}

// storedRow is a row as read back, the event as its JSON text.
type storedRow struct {
	panel                 *string
	eventTime, receivedAt *time.Time
	event                 string
}

func readRows(ctx context.Context, t *testing.T, conn *pgx.Conn, table string) map[string]storedRow {
	t.Helper()
	rows, err := conn.Query(ctx, `SELECT event_id, panel_name, event_time, received_at, event::text FROM `+pgx.Identifier{table}.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]storedRow{}
	for rows.Next() {
		var id string
		var r storedRow
		if err := rows.Scan(&id, &r.panel, &r.eventTime, &r.receivedAt, &r.event); err != nil {
			t.Fatal(err)
		}
		got[id] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// exactJSON decodes JSON keeping every number as the text it was written as.
func exactJSON(t *testing.T, s string) any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decoding %s: %v", s, err)
	}
	return v
}

const bigEvent = `{"msgid":"201","n":12345678901234567890,"price":45999.50,"tiny":1.000000000000000000001,` +
	`"event_params":{"ts":240302090000,"identity":"a@example.com"},"panel_name":"cart_abandon","event_time":"2024-03-02T03:30:00Z","event_id":"id-1"}`

func TestRowsKeepTheEventExactlyAndItsColumns(t *testing.T) {
	s := pgtest.Start(t)
	ctx := testContext(t)
	out := connectedOutput(ctx, t, s.DSN, "create_table: true")

	batch := service.MessageBatch{
		event("id-1", "cart_abandon", bigEvent),
		event("id-2", "email_open", `{"channel":"email","event_time":"not a time"}`),
		// No metadata (from another input): the fields netcore_explode adds.
		service.NewMessage([]byte(`{"event_id":"body-id","panel_name":"sms"}`)),
	}
	if err := out.WriteBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}

	got := readRows(ctx, t, s.Conn(ctx), defaultTable)
	if len(got) != 3 {
		t.Fatalf("got %d rows, want 3: %v", len(got), got)
	}
	if r, ok := got["body-id"]; !ok || r.panel == nil || *r.panel != "sms" || r.receivedAt != nil {
		t.Errorf("an event without metadata: %+v (found %v); want its body's event_id and panel_name", r, ok)
	}
	r := got["id-1"]
	if !reflect.DeepEqual(exactJSON(t, r.event), exactJSON(t, bigEvent)) {
		t.Errorf("event column\n got %s\nwant %s", r.event, bigEvent)
	}
	for _, number := range []string{`12345678901234567890`, `45999.50`, `1.000000000000000000001`} {
		if !strings.Contains(r.event, number) {
			t.Errorf("event column lost the exact number %s: %s", number, r.event)
		}
	}
	wantTime := time.Date(2024, 3, 2, 3, 30, 0, 0, time.UTC)
	wantReceived := time.Date(2026, 11, 28, 4, 0, 0, 123456000, time.UTC)
	if r.panel == nil || *r.panel != "cart_abandon" || r.eventTime == nil || !r.eventTime.Equal(wantTime) ||
		r.receivedAt == nil || !r.receivedAt.Equal(wantReceived) {
		t.Errorf("columns of id-1: panel %v, event_time %v, received_at %v", r.panel, r.eventTime, r.receivedAt)
	}
	if r := got["id-2"]; r.eventTime != nil || r.panel == nil || *r.panel != "email_open" {
		t.Errorf("a malformed event_time is NULL, the rest kept: panel %v, event_time %v", r.panel, r.eventTime)
	}
}

func TestAnEventDeliveredAgainStaysOneRowAndTheFirstWins(t *testing.T) {
	s := pgtest.Start(t)
	ctx := testContext(t)
	out := connectedOutput(ctx, t, s.DSN, "create_table: true\ntable: events_once")

	first := service.MessageBatch{event("a", "p", `{"v":1}`), event("b", "p", `{"v":1}`)}
	if err := out.WriteBatch(ctx, first); err != nil {
		t.Fatal(err)
	}
	// Delivered again, with a repeat inside the batch and one new event.
	again := service.MessageBatch{event("b", "p", `{"v":2}`), event("a", "p", `{"v":2}`), event("c", "p", `{"v":2}`), event("c", "p", `{"v":3}`)}
	if err := out.WriteBatch(ctx, again); err != nil {
		t.Fatal(err)
	}

	got := readRows(ctx, t, s.Conn(ctx), "events_once")
	want := map[string]string{"a": `{"v": 1}`, "b": `{"v": 1}`, "c": `{"v": 2}`}
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d: %v", len(got), len(want), got)
	}
	for id, ev := range want {
		if got[id].event != ev {
			t.Errorf("row %s: event %s, want %s", id, got[id].event, ev)
		}
	}
}

// writeWithFailures writes batch, which must fail as a batch error, and
// returns the error of each message that failed, by its index.
func writeWithFailures(ctx context.Context, t *testing.T, out *output, batch service.MessageBatch) map[int]string {
	t.Helper()
	index := batch.Index()
	var berr *service.BatchError
	if err := out.WriteBatch(ctx, batch); !errors.As(err, &berr) {
		t.Fatalf("want a batch error naming the messages that failed, got %v", err)
	}
	failed := map[int]string{}
	berr.WalkMessagesIndexedBy(index, func(i int, _ *service.Message, err error) bool {
		if err != nil {
			failed[i] = err.Error()
		}
		return true
	})
	return failed
}

func TestAMessageThatCannotBeARowFailsAloneAndTheRestIsWritten(t *testing.T) {
	s := pgtest.Start(t)
	ctx := testContext(t)
	out := connectedOutput(ctx, t, s.DSN, "create_table: true")

	batch := service.MessageBatch{
		event("ok-1", "p", `{"v":1}`),
		event("bad-json", "p", `{"v":`),
		event("", "p", `{"v":2}`),
		event("ok-2", "p", `{"v":3}`),
	}
	failed := writeWithFailures(ctx, t, out, batch)
	if len(failed) != 2 || !strings.Contains(failed[1], "not a JSON document") || !strings.Contains(failed[2], "event id is empty") {
		t.Errorf("failed messages: %v; want 1 (not JSON) and 2 (no id)", failed)
	}
	got := readRows(ctx, t, s.Conn(ctx), defaultTable)
	if _, ok := got["ok-1"]; !ok || len(got) != 2 {
		t.Errorf("rows %v; want ok-1 and ok-2 written", got)
	}
}

// With dead_letter_dir, the events whose content can never be a row are
// kept as dead letters, each with its reason and its body as sent, and
// acknowledged: behind a disk queue they no longer come back for ever. An
// event without an id still fails alone (the pipeline's settings may be at
// fault, and it is written once they are fixed).
func TestEventsThatCannotBeRowsBecomeDeadLetters(t *testing.T) {
	s := pgtest.Start(t)
	ctx := testContext(t)
	dir := t.TempDir()
	out := connectedOutput(ctx, t, s.DSN, "create_table: true\ndead_letter_dir: "+dir)

	batch := service.MessageBatch{
		event("ok-1", "p", `{"v":1}`),
		event("bad-json", "p", `{"v":`),
		event("nul", "p", `{"v":"a\u0000b"}`),
		event("", "p", `{"v":2}`),
		event("ok-2", "p", `{"v":3}`),
	}
	if failed := writeWithFailures(ctx, t, out, batch); len(failed) != 1 || !strings.Contains(failed[3], "event id is empty") {
		t.Errorf("failed messages %v; want only 3, the event without an id", failed)
	}
	got := readRows(ctx, t, s.Conn(ctx), defaultTable)
	if _, ok := got["ok-1"]; !ok || len(got) != 2 {
		t.Errorf("rows %v; want ok-1 and ok-2 written", got)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil || len(files) != 1 {
		t.Fatalf("dead letter files %v (%v); want one", files, err)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	type deadLetter struct {
		Error    string            `json:"error"`
		Metadata map[string]string `json:"metadata"`
		Event    json.RawMessage   `json:"event"`
		Text     json.RawMessage   `json:"event_text"` // a body that is not JSON
	}
	var lines []deadLetter
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var line deadLetter
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("dead letter line %q: %v", l, err)
		}
		lines = append(lines, line)
	}
	want := []struct{ id, reason, event, text string }{
		{"bad-json", "not a JSON document", "", `"{\"v\":"`},
		{"nul", "\\u0000", `{"v":"a\u0000b"}`, ""},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d dead letters, want %d: %s", len(lines), len(want), data)
	}
	for i, w := range want {
		l := lines[i]
		if l.Metadata["netcore_event_id"] != w.id || !strings.Contains(l.Error, w.reason) || string(l.Event) != w.event || string(l.Text) != w.text {
			t.Errorf("dead letter %d: id %q, error %q, event %s, event_text %s; want id %q, an error saying %q, event %s, event_text %s",
				i, l.Metadata["netcore_event_id"], l.Error, l.Event, l.Text, w.id, w.reason, w.event, w.text)
		}
	}
}

func TestTheTableNameIsAlwaysOneQuotedIdentifier(t *testing.T) {
	s := pgtest.Start(t)
	ctx := testContext(t)
	conn := s.Conn(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE victim (v int)`); err != nil {
		t.Fatal(err)
	}
	name := `Events"; DROP TABLE victim; --`
	out := connectedOutput(ctx, t, s.DSN, fmt.Sprintf("create_table: true\ntable: %q", name))
	if err := out.WriteBatch(ctx, service.MessageBatch{event("x", "p", `{}`)}); err != nil {
		t.Fatal(err)
	}
	if got := readRows(ctx, t, conn, name); len(got) != 1 {
		t.Errorf("table %q holds %d rows, want 1", name, len(got))
	}
	var victim *string
	if err := conn.QueryRow(ctx, `SELECT to_regclass('victim')::text`).Scan(&victim); err != nil || victim == nil {
		t.Errorf("the table victim is gone (%v): the name was read as SQL", err)
	}
}

func TestAMissingTableStopsTheConnectionUnlessCreateTable(t *testing.T) {
	s := pgtest.Start(t)
	ctx := testContext(t)
	out := newOutput(t, s.DSN, "schema: public\ntable: not_there")
	err := out.Connect(ctx)
	if err == nil || !strings.Contains(err.Error(), `table "public"."not_there" does not exist`) ||
		!strings.Contains(err.Error(), "create_table: true") || !strings.Contains(err.Error(), "CREATE TABLE") {
		t.Fatalf("Connect: %v; want an error that says the table is missing and how to create it", err)
	}
	if err := out.WriteBatch(ctx, service.MessageBatch{event("x", "p", `{}`)}); !errors.Is(err, service.ErrNotConnected) {
		t.Errorf("WriteBatch before a connection: %v, want ErrNotConnected", err)
	}

	// Created by hand (say by a migration), the table is used as it is.
	if _, err := s.Conn(ctx).Exec(ctx, out.table.createSQL); err != nil {
		t.Fatal(err)
	}
	if err := out.Connect(ctx); err != nil {
		t.Fatalf("Connect once the table exists: %v", err)
	}
	if err := out.WriteBatch(ctx, service.MessageBatch{event("x", "p", `{}`)}); err != nil {
		t.Fatal(err)
	}
}

func TestAWrongDSNSaysWhatToCheckWithoutTheSecret(t *testing.T) {
	out := newOutput(t, "postgres://u:s3cret@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", "")
	err := out.Connect(testContext(t))
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || !strings.Contains(err.Error(), "check dsn") ||
		strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Connect: %v; want an error naming the address and the dsn field, not the password", err)
	}
	out = newOutput(t, "postgres://u:s3cret@[::1", "")
	if err := out.Connect(testContext(t)); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Connect with a malformed DSN: %v; want an error without the password", err)
	}
}

// A batch written while the server is down fails (so it stays queued), and
// the same output writes again, on new connections, as soon as it is back.
func TestWritesFailWhileTheServerIsDownAndResumeAfter(t *testing.T) {
	s := pgtest.Start(t)
	ctx := testContext(t)
	out := connectedOutput(ctx, t, s.DSN, "create_table: true")
	if err := out.WriteBatch(ctx, service.MessageBatch{event("before", "p", `{}`)}); err != nil {
		t.Fatal(err)
	}

	s.Crash()
	if err := out.WriteBatch(ctx, service.MessageBatch{event("during", "p", `{}`)}); err == nil {
		t.Fatal("a write with the server down succeeded")
	}
	s.Restart()
	// pgx drops a connection that failed, and checks one that sat idle
	// before using it: the first write after the restart goes through.
	if err := out.WriteBatch(ctx, service.MessageBatch{event("during", "p", `{}`)}); err != nil {
		t.Fatalf("the first write after the restart: %v", err)
	}
	got := readRows(ctx, t, s.Conn(ctx), defaultTable)
	if _, ok := got["before"]; !ok || len(got) != 2 {
		t.Errorf("rows after the crash: %v; want before and during", got)
	}
}

// The output runs in the real Benthos engine from its documented example.
func TestTheExampleRunsInAStream(t *testing.T) {
	s := pgtest.Start(t)
	ctx := testContext(t)
	b := service.NewStreamBuilder()
	if err := b.SetYAML(fmt.Sprintf(`
input:
  generate:
    count: 3
    interval: ""
    mapping: |
      root = "{\"big\":12345678901234567890,\"i\":%%d}".format(count("example"))
      meta netcore_event_id = "ev-" + count("example-id").string()
output:
  postgres:
    dsn: %q
    create_table: true
    batching:
      count: 3
`, s.DSN)); err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Run(ctx); err != nil {
		t.Fatal(err)
	}
	got := readRows(ctx, t, s.Conn(ctx), defaultTable)
	if len(got) != 3 {
		t.Fatalf("got %d rows, want 3: %v", len(got), got)
	}
	for id, r := range got {
		if !bytes.Contains([]byte(r.event), []byte(`12345678901234567890`)) || r.panel != nil {
			t.Errorf("row %s: %+v", id, r)
		}
	}
}

// TLS is set in the DSN: against a server that takes TLS connections only,
// a DSN that verifies its certificate writes, and one without TLS cannot.
func TestTLSComesFromTheDSN(t *testing.T) {
	s := pgtest.StartTLS(t)
	ctx := testContext(t)
	plain := strings.Replace(s.DSN, "sslmode=verify-full", "sslmode=disable", 1)
	if err := newOutput(t, plain, "create_table: true").Connect(ctx); err == nil {
		t.Fatal("connected without TLS: the server does not require it, and the test proves nothing")
	}
	out := connectedOutput(ctx, t, s.DSN, "create_table: true")
	if err := out.WriteBatch(ctx, service.MessageBatch{event("tls", "p", `{"n":12345678901234567890}`)}); err != nil {
		t.Fatal(err)
	}
	if got := readRows(ctx, t, s.Conn(ctx), defaultTable); got["tls"].event != `{"n": 12345678901234567890}` {
		t.Errorf("rows over TLS: %v", got)
	}
}
