package diskqueue

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/claim"
	"github.com/netcore-connect/netcore-connect/internal/fate"
	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
	"github.com/netcore-connect/netcore-connect/internal/stage"

	"github.com/redpanda-data/benthos/v4/public/service"
)

const (
	dqFieldPath           = "path"
	dqFieldMaxBytes       = "max_bytes"
	dqFieldMaxEvents      = "max_events"
	dqFieldDedupeKey      = "dedupe_key"
	dqFieldDedupeWindow   = "dedupe_window"
	dqFieldDedupeMaxIDs   = "dedupe_max_ids"
	dqFieldRetryInitial   = "retry_initial_interval"
	dqFieldRetryMax       = "retry_max_interval"
	dqFieldCheckOnStart   = "check_on_start"
	dqFieldExplode        = "explode"
	dqFieldReadMemory     = "read_memory_bytes"
	dqFieldDestination    = "destination"
	dqFieldRetainAfterAck = "retain_after_ack"
	dedupeKeyDefault      = stage.MetaEventID
	defaultMaxQueueBytes  = 1 << 30
	defaultMaxQueueEvents = 10_000_000
	defaultReadMemory     = 32 << 20
)

func diskQueueSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Utility").
		Summary("Stores messages in a file on disk and acknowledges them to the input only once they are there: with `netcore_webhook`, the 200 to Netcore means \"on disk\".").
		Description(`
A first-in, first-out queue of records in a https://github.com/etcd-io/bbolt[bbolt] file. Each message is one record with a checksum; with `+"`explode`"+` set, each message is a Netcore post, stored whole as one record and split into events when read. All messages of a batch (the events of one post) are written in one transaction; transactions are group-committed (whatever arrives while one commits goes into the next, with no fixed delay) and fsync'd, and only then is the batch acknowledged to the input.

Reading leases one event at a time, so that each event is delivered and acknowledged on its own. An acknowledged record is deleted; a failed one is delivered again after a backoff that doubles from `+"`retry_initial_interval`"+` up to `+"`retry_max_interval`"+`, without end: an outage of Meiro Events for hours loses nothing, the backlog waits on disk and memory stays flat. The number of events out for delivery at once adapts to failures as TCP's window does: each success widens it by one, failures narrow it to 70% at most once per round, so that a share of failing requests costs a share of the rate. A delivery that timed out (its error says `+"`"+stage.TimedOut+"`"+`, as `+"`meiro_http`"+` words it) narrows it further, to the deliveries still out: its request may still be running at the destination, so its place is given to no other until a delivery succeeds. In an outage (16 failures in a row) the queue probes: it hands out one event at a time, pausing between failed probes on the same doubling schedule, so that a destination that is down is not sent the whole backlog again and again; the first delivery that succeeds makes everything waiting due at once.

== Delivery guarantees

At least once. Nothing acknowledged to the input is lost by a crash, kill -9 or power loss (fsync before the acknowledgement). Records leased for delivery but not yet acknowledged when the process stops are delivered again after the restart, so the output may see an event twice: Meiro Events can drop repeats by `+"`event_id`"+`.

== Bounds

When the queue holds `+"`max_events`"+` events or `+"`max_bytes`"+` bytes of records, writes fail at once and `+"`netcore_webhook`"+` answers 503 with `+"`Retry-After`"+`. A disk error is a 503 too, never a 200. The records held in memory for delivery are bounded by `+"`read_memory_bytes`"+`, however big the posts. The file does not shrink when records are deleted; its free pages are reused.

== Repeats

A message whose `+"`dedupe_key`"+` metadata (the event id from `+"`netcore_explode`"+`) was stored within `+"`dedupe_window`"+` is acknowledged and not stored again, so a post that Netcore sends twice is delivered once. Identical events within one post are not repeats of each other: `+"`netcore_explode`"+` (and `+"`explode`"+`) give the second, third… copy an id of its own, the same each time the post is sent. The ids are kept in the same file (one record of 16-byte ids per commit, so a big post costs in proportion to its size), so this survives restarts, and in memory for lookups, in a table outside the Go heap; an id of other than 32 hex digits is kept as 16 bytes of its SHA-256. At most `+"`dedupe_max_ids`"+` are kept, oldest forgotten first (under a sustained rate above `+"`dedupe_max_ids`"+` per window the effective window is shorter).

== Damage

A record whose checksum fails when read is moved aside into the file's `+"`damaged`"+` bucket (kept, logged at error level, counted in `+"`netcore_records_damaged_total`"+`) and never delivered. A file whose structure is damaged (bbolt cannot read one of its pages) stops the start with an error that names the file and the damage; with `+"`check_on_start`"+` every page is read at start, so that such damage is found then rather than later. Move the file aside to start again with an empty queue. Shutting down does not wait for the queue to drain: what waits is delivered after the next start.`).
		Fields(
			service.NewStringField(dqFieldPath).
				Description("The queue file. Its folder is created if missing. One process at a time: a second one fails to start.").
				Example("${NETCORE_DATA_DIR:./data}/queue/events.db"),
			service.NewIntField(dqFieldMaxBytes).
				Description("The most bytes of records held; beyond it posts are answered 503.").
				Default(defaultMaxQueueBytes),
			service.NewIntField(dqFieldMaxEvents).
				Description("The most events held; beyond it posts are answered 503.").
				Default(defaultMaxQueueEvents),
			service.NewStringField(dqFieldDedupeKey).
				Description("The metadata key whose value identifies an event for removing repeats; empty to keep every repeat.").
				Default(dedupeKeyDefault),
			service.NewDurationField(dqFieldDedupeWindow).
				Description("How long a stored event id is remembered, to the second (at least this long, at most a second longer); `0s` to keep every repeat, otherwise at least `1s`.").
				Default("10m"),
			service.NewIntField(dqFieldDedupeMaxIDs).
				Description("The most event ids remembered; the oldest are forgotten first. They are kept in memory too, in a table of 16-byte slots that doubles at 3/4 full: 16 MiB for 500,000 ids.").
				Advanced().
				Default(500_000),
			service.NewDurationField(dqFieldRetryInitial).
				Description("The wait before a failed event is delivered again; it doubles with each failure.").
				Default("1s"),
			service.NewDurationField(dqFieldRetryMax).
				Description("The longest wait between deliveries of a failed event.").
				Default("1m"),
			service.NewObjectField(dqFieldExplode, netcorepost.ExplodeFields("")...).
				Description("Store each post whole, as one record, and split it into events (as `netcore_explode` does, with these settings) only when it is read for delivery; leave `netcore_explode` out of the input's processors then. Each event is still delivered, retried, dead-lettered and acknowledged on its own, and repeats are still removed per event (by the event ids `netcore_explode` gives; `dedupe_key` empty keeps them): a post costs one record instead of one per event, and none of the splitting is on the path the sender waits on. An event whose delivery fails is written as a record of its own; events settled while others of their post wait are marked in the file, so that a restart does not send them again. A file holding whole posts needs this field to start. `timezone` must be given here (it is what turns this on).").
				Optional(),
			service.NewIntField(dqFieldReadMemory).
				Description("The most bytes of records held in memory for delivery, whatever the size of the posts: records read ahead of their turn, records of failed events kept for their retry (at most a quarter of it), the posts whose events are being handed out or are out for delivery, and those events. Past it the next post is not read until deliveries settle, and what was read ahead or kept is let go, to be read from the file again in its turn; one post always goes, however big, its events one at a time while it alone fills the budget. The default holds three posts of 10 MB (the largest `netcore_webhook` takes), so that the next is read while one is out; it is under a quarter of the default `GOMEMLIMIT` (144 MiB), the heap these records live in, so the collector never works against the limit. A restart on a full queue (1 GiB) of 9.6 MB posts peaked at 244-246 MiB of RSS with the defaults (before there was a bound the queue read 128 whole posts ahead: 503 MiB on 24 posts, 1.7 GB on 111). Raise `GOMEMLIMIT` with it.").
				Advanced().
				Default(defaultReadMemory),
			service.NewStringField(dqFieldDestination).
				Description("The name of where this queue delivers, as the inspector shows it: where a process has several queues (one per destination, as in `config/destinations/meiro-and-archive.yaml`), the inspector shows each event's fate at each, by this name (\"Meiro Events: waiting · archive: delivered\"), and what waits in each queue. Empty: the file's name without its extension (`meiro` for `queue/meiro.db`). Names must differ between the queues of a process.").
				Advanced().
				Default(""),
			service.NewDurationField(dqFieldRetainAfterAck).
				Description("Keep each record in the file this long after all its events were acknowledged by the output, instead of deleting it at once: the queue is then a journal in front of an output that acknowledges before its own fsync, such as a NATS JetStream cluster at its default `sync_interval` (2m). A retained record is deleted once its time is up. It is delivered again after a restart, and while the process runs when asked: by the `nats_jetstream` output once its connection is back after losing every server, or by a POST to `/journal/republish` on the process's HTTP server (`netcore-connect journal republish`); a post with events out for delivery then goes again once they settle, never twice at once. The output must drop repeats, as JetStream does by `Nats-Msg-Id` within its duplicate window. Retained records count against `max_bytes` (past it, 503s) and are on disk only: at R posts a second of B bytes each, they take R × B × this of the file. `0s` deletes a record as soon as it is settled.").
				Default("0s"),
			service.NewBoolField(dqFieldCheckOnStart).
				Description("Read every page of the file at start, so that damage stops the start (time grows with the file's size; the events are always read).").
				Advanced().
				Default(true),
		).
		Example("Durable ingest", "Events exploded before the queue (netcore_explode in the input's processors), a record each.", `
buffer:
  disk_queue:
    path: ${NETCORE_DATA_DIR:./data}/queue/events.db
    max_bytes: 1073741824
`).
		Example("Posts stored whole", "The default pipeline's: no netcore_explode before the queue; each post is one record, split into events when read.", `
buffer:
  disk_queue:
    path: ${NETCORE_DATA_DIR:./data}/queue/events.db
    explode:
      timezone: Asia/Kolkata
`)
}

func init() {
	service.MustRegisterBatchBuffer("disk_queue", diskQueueSpec(),
		func(conf *service.ParsedConfig, res *service.Resources) (service.BatchBuffer, error) {
			return newDiskQueueFromConfig(conf, res)
		})
}

func queueConfigFromParsed(conf *service.ParsedConfig) (c queueConfig, dedupeKey string, err error) {
	if c.path, err = conf.FieldString(dqFieldPath); err != nil {
		return c, "", err
	}
	// Slices, not maps: of two bad fields, the same is reported each time.
	for _, f := range []struct {
		field string
		v     *int64
	}{{dqFieldMaxBytes, &c.maxBytes}, {dqFieldMaxEvents, &c.maxEvents}, {dqFieldDedupeMaxIDs, &c.dedupeMaxIDs}, {dqFieldReadMemory, &c.readMemory}} {
		n, err := conf.FieldInt(f.field)
		if err != nil {
			return c, "", err
		}
		if n <= 0 {
			return c, "", fmt.Errorf("%s must be positive, got %d", f.field, n)
		}
		*f.v = int64(n)
	}
	for _, f := range []struct {
		field string
		d     *time.Duration
	}{{dqFieldDedupeWindow, &c.dedupeWindow}, {dqFieldRetryInitial, &c.retryInitial}, {dqFieldRetryMax, &c.retryMax}, {dqFieldRetainAfterAck, &c.retainAfterAck}} {
		if *f.d, err = conf.FieldDuration(f.field); err != nil {
			return c, "", err
		}
	}
	if c.dedupeWindow != 0 && c.dedupeWindow < time.Second {
		// The ids are remembered to the second (see idTable).
		return c, "", fmt.Errorf("%s is %s: set at least 1s, or 0s to keep every repeat", dqFieldDedupeWindow, c.dedupeWindow)
	}
	if c.retainAfterAck < 0 {
		return c, "", fmt.Errorf("%s is %s: set 0s or more", dqFieldRetainAfterAck, c.retainAfterAck)
	}
	if c.retryInitial <= 0 || c.retryMax < c.retryInitial {
		return c, "", fmt.Errorf("%s must be positive and at most %s", dqFieldRetryInitial, dqFieldRetryMax)
	}
	if c.checkOnStart, err = conf.FieldBool(dqFieldCheckOnStart); err != nil {
		return c, "", err
	}
	if conf.Contains(dqFieldExplode, netcorepost.FieldTimezone) {
		if c.explode, err = netcorepost.NewExploder(conf.Namespace(dqFieldExplode)); err != nil {
			return c, "", fmt.Errorf("%s: %w", dqFieldExplode, err)
		}
	}
	dedupeKey, err = conf.FieldString(dqFieldDedupeKey)
	return c, dedupeKey, err
}

// destinationBook is the fate book of the destination the queue delivers
// to, named by its destination field or else by its file, which no other
// queue of the process can have open.
func destinationBook(conf *service.ParsedConfig, path string) (*fate.Book, error) {
	name, err := conf.FieldString(dqFieldDestination)
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	return fate.Default.For(name), nil
}

// diskQueue is the Benthos face of a queue.
type diskQueue struct {
	q         *queue
	dedupeKey string
	book      *fate.Book // of the destination it delivers to
	// Events acknowledged by the output (delivered, or kept as dead letters)
	// since the counter was last told; see newDiskQueueFromConfig.
	delivered *atomic.Int64
	full      atomic.Bool // the last put was refused for a full queue
	// Repeats acknowledged and not stored again.
	deduplicated *service.MetricCounter
	log          *service.Logger
	leave        func() // leaves the process's journals (journal.go)
}

func newDiskQueueFromConfig(conf *service.ParsedConfig, res *service.Resources) (*diskQueue, error) {
	c, dedupeKey, err := queueConfigFromParsed(conf)
	if err != nil {
		return nil, err
	}
	book, err := destinationBook(conf, c.path)
	if err != nil {
		return nil, err
	}
	log := res.Logger()
	damaged := res.Metrics().NewCounter(stage.MetricRecordsDamaged)
	deduplicated := res.Metrics().NewCounter(stage.MetricEventsDeduplicated)
	c.onDamaged = func(seq uint64, cause error) {
		damaged.Incr(1)
		log.Errorf("Queue record %d is damaged (%v): moved aside to the damaged bucket of %s, not delivered", seq, cause, c.path)
	}
	// Delivered events are added to their counter with the gauges, once a
	// second: an Incr per event cost 3.3% of the CPU of a drain (Benthos and
	// client_golang look the counter's labels up on each call).
	delivered, deliveredSince := res.Metrics().NewCounter(stage.MetricEventsDelivered), &atomic.Int64{}
	queueEvents := res.Metrics().NewGauge(stage.MetricQueueEvents)
	queueBytes := res.Metrics().NewGauge(stage.MetricQueueBytes)
	queueOldest := res.Metrics().NewGauge(stage.MetricQueueOldest)
	queueFull := res.Metrics().NewGauge(stage.MetricQueueFullRatio)
	c.onStats = func(events, bytes int64, oldest time.Duration) {
		delivered.Incr(deliveredSince.Swap(0))
		queueEvents.Set(events)
		queueBytes.Set(bytes)
		queueOldest.SetFloat64(oldest.Seconds())
		queueFull.SetFloat64(max(float64(events)/float64(c.maxEvents), float64(bytes)/float64(c.maxBytes)))
		book.QueueState(fate.Queue{Events: events, Bytes: bytes, MaxBytes: c.maxBytes, Oldest: oldest}, time.Now())
	}
	// Every counter is exported from the start, at 0, so that dashboards
	// and alerts see it before the first event.
	for _, counter := range []*service.MetricCounter{damaged, deduplicated, delivered} {
		counter.Incr(0)
	}
	c.onRepublished = republishedCounter(res)
	q, err := openQueue(c)
	if err != nil {
		return nil, err
	}
	if events, bytes := q.stats(); events > 0 {
		log.Infof("Queue %s holds %d events (%d bytes) from before: delivering them", c.path, events, bytes)
	}
	d := &diskQueue{q: q, dedupeKey: dedupeKey, book: book, delivered: deliveredSince, deduplicated: deduplicated, log: log}
	if err := d.joinJournals(res); err != nil {
		_ = q.close(context.Background())
		return nil, err
	}
	return d, nil
}

// WriteBatch stores a batch and acknowledges it once it is on disk. A full
// or closed queue refuses it at once.
func (d *diskQueue) WriteBatch(_ context.Context, batch service.MessageBatch, ack service.AckFunc) error {
	var err error
	if d.q.conf.explode != nil {
		err = d.writePosts(batch, ack)
	} else {
		err = d.writeEvents(batch, ack)
	}
	if errors.Is(err, ErrFull) && !d.full.Swap(true) {
		// The gauges are refreshed once a second; the moment the queue
		// turns full is worth seeing at once.
		d.q.reportStats()
	} else if err == nil {
		d.full.Store(false)
	}
	return err
}

// writeEvents stores a batch of events, a record each.
func (d *diskQueue) writeEvents(batch service.MessageBatch, ack service.AckFunc) error {
	now := time.Now()
	records, err := encodeBatch(batch, recordHeader, func(dst []byte, _ int, msg *service.Message) ([]byte, error) {
		return appendRecord(dst, msg, now)
	})
	if err != nil {
		return err
	}
	ids := make([]string, len(batch))
	if d.dedupeKey != "" {
		for i, msg := range batch {
			ids[i], _ = msg.MetaGet(d.dedupeKey)
		}
	}
	// The events of a post share its claim (netcore_explode copies the
	// post's context into each); a batch of several posts has several.
	return d.q.put(records, ids, claim.Of(batch), func(err error, repeats []int) {
		if err == nil {
			d.deduplicated.Incr(int64(len(repeats)))
			reportStored(d.book, batch, ids, repeats, time.Now())
		}
		_ = ack(context.Background(), err)
	})
}

// encodeBatch encodes a record per message of batch, appended by appendOne
// (header: the record's fixed size), into one allocation: one object for
// the garbage collector instead of one per record.
func encodeBatch(batch service.MessageBatch, header int, appendOne func(dst []byte, i int, msg *service.Message) ([]byte, error)) ([][]byte, error) {
	size := 0
	for _, msg := range batch {
		if body, err := msg.AsBytes(); err == nil {
			size += header + len(body) + 256 // metadata and lengths: a guess; append grows it if short
		}
	}
	arena := make([]byte, 0, size)
	ends := make([]int, len(batch))
	for i, msg := range batch {
		var err error
		if arena, err = appendOne(arena, i, msg); err != nil {
			return nil, err
		}
		ends[i] = len(arena)
	}
	records := make([][]byte, len(batch))
	start := 0
	for i, end := range ends {
		records[i] = arena[start:end:end] // capped: appending to one cannot reach the next
		start = end
	}
	return records, nil
}

// writePosts stores a batch of posts, a record each, to be split into
// events when read.
func (d *diskQueue) writePosts(batch service.MessageBatch, ack service.AckFunc) error {
	now := time.Now()
	keys := make([][]eventKey, len(batch))
	records, err := encodeBatch(batch, postHeader, func(dst []byte, i int, msg *service.Message) (rec []byte, err error) {
		rec, keys[i], err = appendPostRecord(dst, msg, now)
		return rec, err
	})
	if err != nil {
		return err
	}
	stored := keys
	if d.dedupeKey == "" {
		stored = make([][]eventKey, len(batch)) // every repeat is kept
	}
	return d.q.putRecords(records, stored, claim.Of(batch), func(err error, repeats []int) {
		if err == nil {
			d.deduplicated.Incr(int64(len(repeats)))
			reportStoredPosts(d.book, batch, keys, repeats, time.Now())
		}
		_ = ack(context.Background(), err)
	})
}

// ReadBatch leases the next event: a batch of one, acknowledged on its own.
func (d *diskQueue) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	l, err := d.q.next(ctx)
	if errors.Is(err, errClosed) {
		return nil, nil, service.ErrEndOfBuffer
	}
	if err != nil {
		return nil, nil, err
	}
	msg := l.msg
	if d.book.Enabled() {
		// What settles the event after the queue (the dead letter keeper)
		// reports to this destination's book.
		msg = msg.WithContext(fate.WithBook(msg.Context(), d.book))
	}
	return service.MessageBatch{msg}, func(_ context.Context, err error) error {
		retryAt := d.q.ack(l, err)
		if err == nil {
			d.delivered.Add(1)
		}
		reportSettled(d.book, l.msg, err, time.Now(), retryAt)
		return nil
	}, nil
}

// EndOfInput stops reads at once instead of draining: everything waiting is
// on disk and is delivered after the next start.
func (d *diskQueue) EndOfInput() { d.q.endReads() }

// Close closes the queue, once the counters are told what was delivered
// since they last were.
func (d *diskQueue) Close(ctx context.Context) error {
	d.leave()
	d.q.reportStats()
	return d.q.close(ctx)
}
