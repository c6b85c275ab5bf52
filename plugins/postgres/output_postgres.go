package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/netcore-connect/netcore-connect/internal/stage"
	"github.com/netcore-connect/netcore-connect/plugins/deadletter"
	"github.com/redpanda-data/benthos/v4/public/service"
)

const (
	opFieldDSN         = "dsn"
	opFieldSchema      = "schema"
	opFieldTable       = "table"
	opFieldCreateTable = "create_table"
	opFieldEventID     = "event_id"
	opFieldPanelName   = "panel_name"
	opFieldEventTime   = "event_time"
	opFieldReceivedAt  = "received_at"
	opFieldMaxInFlight = "max_in_flight"
	opFieldBatching    = "batching"
	opFieldDeadLetters = "dead_letter_dir"

	defaultTable = "netcore_events"
)

func outputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Writes each event as one row of a PostgreSQL table, keeping exactly one row per event id however often an event is delivered.").
		Description(`
Each message becomes a row of the table `+"`"+`(event_id text primary key, panel_name text, event_time timestamptz, received_at timestamptz, event jsonb)`+"`"+`. The `+"`event`"+` column holds the message body as delivered (it must be a JSON document); `+"`jsonb`"+` keeps every value exactly, big integers and decimals included (`+"`12345678901234567890`"+` stays that number; nothing is read through floating point on the way), but not the key order, white space or repeated keys of the text. The other columns are read from each message by the interpolations below; by default from what `+"`netcore_explode`"+` adds.

A batch is written with a single statement, in one round trip: `+"`INSERT ... SELECT FROM unnest($1, ..., $5) ON CONFLICT (event_id) DO NOTHING`"+` (measured against `+"`COPY`"+` into a temporary table and a multi-row `+"`VALUES`"+`: no more processor time per event than either from 100 to 2,000 events a batch, a third less than `+"`COPY`"+` at 100, and one statement whatever the batch size). The table needs a primary key or unique index on `+"`event_id`"+`. With `+"`create_table: true`"+` it is created when missing, with the columns above; otherwise a missing table stops the connection with an error that gives the SQL to create it, and the events wait.

The connection string is a libpq URL or key=value string; TLS is set there too (`+"`sslmode=verify-full`"+`, `+"`sslrootcert`"+`, `+"`sslcert`"+`, `+"`sslkey`"+`), and so are the pool's limits (`+"`pool_max_conns`"+`, by default `+"`max_in_flight`"+`).

== Delivery guarantees

A message is acknowledged only once the statement that wrote its batch has committed, which with PostgreSQL's default `+"`synchronous_commit = on`"+` means it is in the server's write-ahead log on disk. A batch that fails (server down, restarting, connection lost) is acknowledged as failed and written again later, whole; a row the failed attempt did commit is skipped then by `+"`ON CONFLICT (event_id) DO NOTHING`"+`. So at-least-once delivery ends as exactly one row per event id, and the first write of an event wins. A message that can never be a row (a body that is not JSON, a `+"`\\u0000`"+` that `+"`jsonb`"+` refuses, a NUL byte in its id) is written to a dead letter file in `+"`dead_letter_dir`"+` (fsync'd, with the reason, in the format of the `+"`dead_letter`"+` output; `+"`config/replay-dead-letters.yaml`"+` with its output swapped for this one writes them once fixed) and acknowledged, after the rest of its batch is written; with `+"`dead_letter_dir`"+` empty it fails on its own instead, and behind `+"`disk_queue`"+` stays queued and is tried again for ever. A message whose id is empty, or whose fields cannot be interpolated, fails on its own either way: that is more likely the pipeline's settings than the event, and it is written once they are fixed.`).
		Fields(
			service.NewStringField(opFieldDSN).
				Description("The PostgreSQL connection string, a URL or key=value pairs as libpq takes them, TLS settings included.").
				Example("postgres://netcore:secret@db.internal:5432/events?sslmode=verify-full&sslrootcert=/etc/netcore/db-ca.pem").
				Secret(),
			service.NewStringField(opFieldSchema).
				Description("The schema of the table; empty for the connection's `search_path` (normally `public`).").
				Default(""),
			service.NewStringField(opFieldTable).
				Description("The table to write to. It is quoted as an identifier: any name works, and it is never read as SQL.").
				Default(defaultTable),
			service.NewBoolField(opFieldCreateTable).
				Description("Create the table at connection when it is missing. Off by default, so that a mistyped name fails with a clear error instead of filling a new table, and so that the output needs no right to create tables.").
				Default(false),
			service.NewInterpolatedStringField(opFieldEventID).
				Description("The event id, the table's primary key: by default the id `netcore_explode` gives (its metadata, else the body's `event_id`). A message whose id is empty fails and is not written.").
				Default(`${! @netcore_event_id.or(this.event_id.or("")) }`),
			service.NewInterpolatedStringField(opFieldPanelName).
				Description("The panel name (by default the metadata `netcore_panel`, else the body's `panel_name`); empty is stored as NULL.").
				Default(`${! @netcore_panel.or(this.panel_name.or("")) }`),
			service.NewInterpolatedStringField(opFieldEventTime).
				Description("The time of the event, RFC 3339 (by default the body's `event_time`, which `netcore_explode` adds); empty or not RFC 3339 is stored as NULL (the latter with a warning in the log).").
				Default(`${! this.event_time.or("") }`),
			service.NewInterpolatedStringField(opFieldReceivedAt).
				Description("The time the post was received, RFC 3339 (by default the metadata `netcore_received_at` of `netcore_webhook`); empty or not RFC 3339 is stored as NULL (the latter with a warning in the log).").
				Default(`${! @netcore_received_at.or("") }`),
			service.NewIntField(opFieldMaxInFlight).
				Description("Batches written in parallel, each over a connection of its own.").
				Default(4),
			service.NewStringField(opFieldDeadLetters).
				Description("The folder for events whose content can never be a row (not JSON, a `\\u0000`, a NUL in the id), kept as dead letters with the reason; empty leaves them failing, to be tried again.").
				Example("${NETCORE_DATA_DIR:./data}/dead-letter").
				Default(""),
			service.NewBatchPolicyField(opFieldBatching),
		).
		Example("Events into a table", "Rows of `netcore_events`, created when missing, 500 events a statement.", `
output:
  postgres:
    dsn: ${POSTGRES_DSN}
    table: ${POSTGRES_TABLE:netcore_events}
    create_table: true
    dead_letter_dir: ${NETCORE_DATA_DIR:./data}/dead-letter
    batching:
      count: 500
      period: 50ms
`)
}

func init() {
	service.MustRegisterBatchOutput("postgres", outputSpec(),
		func(conf *service.ParsedConfig, res *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
			maxInFlight, err := conf.FieldInt(opFieldMaxInFlight)
			if err != nil {
				return nil, service.BatchPolicy{}, 0, err
			}
			policy, err := conf.FieldBatchPolicy(opFieldBatching)
			if err != nil {
				return nil, service.BatchPolicy{}, 0, err
			}
			out, err := newOutputFromConfig(conf, res, maxInFlight)
			return out, policy, maxInFlight, err
		})
}

type output struct {
	dsn         string
	table       table
	createTable bool
	columns     columnReaders
	maxConns    int
	deadLetters *deadletter.Keeper // nil: events that cannot be rows fail
	log         *service.Logger

	mu   sync.Mutex
	pool *pgxpool.Pool
}

func newOutputFromConfig(conf *service.ParsedConfig, res *service.Resources, maxInFlight int) (*output, error) {
	if maxInFlight < 1 {
		return nil, fmt.Errorf("%s must be at least 1, got %d", opFieldMaxInFlight, maxInFlight)
	}
	o := &output{maxConns: maxInFlight, log: res.Logger()}
	deadLetters, err := conf.FieldString(opFieldDeadLetters)
	if err != nil {
		return nil, err
	}
	if deadLetters != "" {
		o.deadLetters = deadletter.NewKeeper(deadLetters, stage.MetaPrefix, res)
	}
	if o.dsn, err = conf.FieldString(opFieldDSN); err != nil {
		return nil, err
	}
	if o.table, err = tableFromConfig(conf); err != nil {
		return nil, err
	}
	if o.createTable, err = conf.FieldBool(opFieldCreateTable); err != nil {
		return nil, err
	}
	if o.columns, err = columnReadersFromConfig(conf, o.log); err != nil {
		return nil, err
	}
	return o, nil
}

// Connect opens the pool, checks that the server answers, and creates or
// checks the table, so that a wrong DSN or table shows at start, not at the
// first event.
func (o *output) Connect(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pool != nil {
		return nil
	}
	if o.deadLetters != nil {
		if err := o.deadLetters.Prepare(); err != nil {
			return err
		}
	}
	pool, err := o.newPool(ctx)
	if err != nil {
		return err
	}
	if err := o.table.prepare(ctx, pool, o.createTable); err != nil {
		pool.Close()
		return err
	}
	o.pool = pool
	return nil
}

func (o *output) newPool(ctx context.Context) (*pgxpool.Pool, error) {
	conf, err := pgxpool.ParseConfig(o.dsn)
	if err != nil {
		// pgx's parse errors can quote the DSN, password included: not logged.
		return nil, fmt.Errorf("the %s is not a valid PostgreSQL connection string: check its syntax", opFieldDSN)
	}
	if !dsnSetsMaxConns(o.dsn) {
		conf.MaxConns = int32(o.maxConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, conf)
	if err != nil {
		return nil, fmt.Errorf("opening the PostgreSQL pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to PostgreSQL (check %s and that the server is up): %w", opFieldDSN, err)
	}
	return pool, nil
}

// WriteBatch writes the batch's rows in one statement. Messages that cannot
// be rows become dead letters, or fail alone; the others are written.
func (o *output) WriteBatch(ctx context.Context, batch service.MessageBatch) error {
	o.mu.Lock()
	pool := o.pool
	o.mu.Unlock()
	if pool == nil {
		return service.ErrNotConnected
	}
	rows, failed := o.columns.rows(batch)
	if len(rows.ids) > 0 {
		if err := o.table.insert(ctx, pool, rows); err != nil {
			return err
		}
	}
	if o.deadLetters != nil {
		failed = o.keepUnstorable(batch, failed)
	}
	if len(failed) == 0 {
		return nil
	}
	return batchError(batch, failed)
}

// keepUnstorable writes the failures no retry can fix as dead letters, and
// returns the failures left to fail: the others, and these too if they
// could not be written.
func (o *output) keepUnstorable(batch service.MessageBatch, failed []rowFailure) []rowFailure {
	var dead, left []rowFailure
	for _, f := range failed {
		if errors.As(f.err, new(unstorable)) {
			dead = append(dead, f)
		} else {
			left = append(left, f)
		}
	}
	if len(dead) == 0 {
		return left
	}
	if err := o.keepDeadLetters(batch, dead); err != nil {
		o.log.Errorf("Keeping %d event(s) that cannot be rows as dead letters: %v", len(dead), err)
		return failed
	}
	return left
}

// keepDeadLetters writes the messages that cannot be rows to a dead letter
// file, each with the reason as its error.
func (o *output) keepDeadLetters(batch service.MessageBatch, failed []rowFailure) error {
	dead := make(service.MessageBatch, len(failed))
	for i, f := range failed {
		dead[i] = deadletter.WithReason(batch[f.index], fmt.Errorf("cannot be a row of %s: %w", o.table.quoted, f.err))
	}
	return o.deadLetters.Keep(dead, "cannot be rows")
}

func (o *output) Close(context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pool != nil {
		o.pool.Close()
		o.pool = nil
	}
	return nil
}

// dsnSetsMaxConns says whether the DSN sizes the pool itself, which then
// wins over max_in_flight.
func dsnSetsMaxConns(dsn string) bool {
	return strings.Contains(dsn, "pool_max_conns")
}
