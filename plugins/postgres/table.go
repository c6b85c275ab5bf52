package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redpanda-data/benthos/v4/public/service"
)

// table is the destination table and the SQL that writes to it.
type table struct {
	schema, name string
	quoted       string // schema-qualified when a schema is set, quoted for SQL
	createSQL    string
	insertSQL    string
}

func tableFromConfig(conf *service.ParsedConfig) (table, error) {
	schema, err := conf.FieldString(opFieldSchema)
	if err != nil {
		return table{}, err
	}
	name, err := conf.FieldString(opFieldTable)
	if err != nil {
		return table{}, err
	}
	return newTable(schema, name)
}

func newTable(schema, name string) (table, error) {
	t := table{schema: schema, name: name}
	if t.name == "" {
		return t, fmt.Errorf("%s is empty: name the table to write to", opFieldTable)
	}
	ident := pgx.Identifier{t.name}
	if t.schema != "" {
		ident = pgx.Identifier{t.schema, t.name}
	}
	// Sanitize quotes every part and doubles quotes inside it, so that a
	// name is always one identifier and never SQL.
	t.quoted = ident.Sanitize()
	t.createSQL = `CREATE TABLE IF NOT EXISTS ` + t.quoted + ` (
  event_id    text PRIMARY KEY,
  panel_name  text,
  event_time  timestamptz,
  received_at timestamptz,
  event       jsonb NOT NULL
)`
	// One statement with five array parameters: its text does not depend
	// on the batch size, so it is prepared once per connection, and a batch
	// is one Bind/Execute round trip. The events go as text[] and are cast
	// to jsonb row by row: a jsonb[] parameter cost the server a third more
	// (insert_bench_test.go). DO NOTHING also covers an id that comes twice
	// within one batch.
	t.insertSQL = `INSERT INTO ` + t.quoted + ` (event_id, panel_name, event_time, received_at, event)
SELECT id, panel, event_time, received_at, event::jsonb
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[]) AS batch(id, panel, event_time, received_at, event)
ON CONFLICT (event_id) DO NOTHING`
	return t, nil
}

// prepare creates the table when asked to, or else checks that it exists.
func (t table) prepare(ctx context.Context, pool *pgxpool.Pool, create bool) error {
	if create {
		if _, err := pool.Exec(ctx, t.createSQL); err != nil {
			return fmt.Errorf("creating table %s (create it yourself, or grant CREATE on the schema): %w", t.quoted, err)
		}
		return nil
	}
	var found *string
	if err := pool.QueryRow(ctx, `SELECT to_regclass($1)::text`, t.quoted).Scan(&found); err != nil {
		return fmt.Errorf("looking up table %s: %w", t.quoted, err)
	}
	if found == nil {
		return fmt.Errorf("table %s does not exist: set %s: true, or create it with: %s", t.quoted, opFieldCreateTable, t.createSQL)
	}
	return nil
}

// insert writes the rows in one statement, committed when it returns nil.
func (t table) insert(ctx context.Context, pool *pgxpool.Pool, r rowSet) error {
	_, err := pool.Exec(ctx, t.insertSQL, r.ids, r.panels, r.eventTimes, r.receivedAts, r.events)
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P10" { // invalid_column_reference
		return fmt.Errorf("writing to %s: event_id needs a primary key or unique index for ON CONFLICT: %w", t.quoted, err)
	}
	return fmt.Errorf("writing %d events to %s (they stay queued and are written again): %w", len(r.ids), t.quoted, err)
}
