package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/durabledir"
	"github.com/netcore-connect/netcore-connect/internal/stage"
)

const (
	aoFieldDir           = "dir"
	aoFieldTimeMetadata  = "time_metadata"
	aoFieldGzip          = "gzip"
	aoFieldRetentionDays = "retention_days"
	aoFieldBatching      = "batching"

	// metricArchived counts the events archived, metricDamaged the hour
	// files found damaged and moved aside.
	metricArchived = stage.MetricEventsArchived
	metricDamaged  = stage.MetricArchiveFilesDamaged

	// retentionEvery is how often expired hours are looked for while running.
	retentionEvery = 10 * time.Minute
)

func outputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Local").
		Summary("Archives every event as a JSON line in one file per UTC hour, fsync'd before the event is acknowledged, and removes hours older than the retention.").
		Description(`
Each event is appended to `+"`<dir>/<UTC date>/<UTC hour>.jsonl`"+` (`+"`.jsonl.gz`"+` with `+"`gzip`"+`), for example `+"`<dir>/2026-11-28/13.jsonl`"+`, exactly as it is (numbers and strings unchanged). The hour is that of the time in the metadata `+"`time_metadata`"+`: by default `+"`netcore_received_at`"+`, the moment `+"`netcore_webhook`"+` received the post. That time is fixed when the post arrives and travels with the event through the queue, so an event archived late (after a backlog or a restart) still lands in the hour it was received, and a replay of "the last six hours" means the events received in those hours. An event without that metadata is archived in the hour it is written.

The `+"`netcore_archive`"+` input replays a range of hours, in order.

### Delivery guarantees

A batch is appended to its hour files, each file fsync'd (once per batch), and only then acknowledged, so the queue forgets an event only once it is on disk. A new file or date folder is made durable by syncing its folder, and so is a file found at start (in case the process died between creating it and syncing its folder). If a write fails, what the batch appended is cut off again and the batch is retried. If the process dies halfway through a batch, the end of the file may hold a torn line (or a torn gzip member); those events were not acknowledged, so they come again, and before appending to a file for the first time since starting the output cuts any torn tail off. Only a torn tail is ever cut: bytes after the last newline, or a last gzip member cut short; it is first copied, fsync'd, to `+"`<hour>.torn-<unix>.jsonl[.gz]`"+`, since damage at the very end of a file can look the same, so no byte is ever destroyed. A gzip file damaged anywhere else (a member failing its checksum, or with header flags the output never sets) holds acknowledged events, so it is moved aside whole as `+"`<hour>.damaged-<unix>.jsonl.gz`"+`, logged as an error with the damaged bytes, and counted in `+"`netcore_archive_files_damaged_total`"+`; the hour goes on in a new file, and a replay reads both. Plain files carry no checksum and are never moved aside. The input never reads a torn tail either. Delivery is at least once: an event in flight during a crash can be archived twice.

With `+"`gzip`"+`, each batch is its own gzip member; concatenated members are one valid gzip file (`+"`zcat`"+` reads it whole).

Events are expected to be JSON: one that spans lines is compacted onto one (JSON whitespace only, values unchanged); a message that is not JSON and spans lines is archived as a JSON string.

### Retention

With `+"`retention_days`"+` over 0, archive files of hours that ended more than that many days ago are removed at start and every 10 minutes, with date folders left empty. Only files named like archive hours are ever removed, and never while a batch is being written. An event received longer ago than the retention (a backlog older than it) is archived like any other and its hour file removed in the next round.

One process writes a given archive folder; two writing the same folder could interleave their lines.`).
		Fields(
			service.NewStringField(aoFieldDir).
				Description("The archive folder; created if missing.").
				Example("${NETCORE_DATA_DIR:./data}/archive"),
			service.NewStringField(aoFieldTimeMetadata).
				Description("Metadata holding the RFC 3339 time whose UTC hour an event is archived under; when it is missing or not a time, the time of writing is used.").
				Default(stage.MetaReceivedAt),
			service.NewBoolField(aoFieldGzip).
				Description("Write `.jsonl.gz` files, one gzip member per batch.").
				Default(false),
			service.NewIntField(aoFieldRetentionDays).
				Description("Remove the files of hours that ended more than this many days ago; 0 keeps everything.").
				Default(0),
			service.NewBatchPolicyField(aoFieldBatching).
				Description("How events are gathered into batches; each batch costs one fsync per hour file it touches. The default gathers up to 1024 events or 10ms.").
				Default(map[string]any{"count": 1024, "byte_size": 0, "period": "10ms", "check": "", "processors": []any{}}),
		).
		Example("Archive the last 30 days", "", `
output:
  netcore_archive:
    dir: ${NETCORE_DATA_DIR:./data}/archive
    gzip: true
    retention_days: 30
`)
}

func init() {
	service.MustRegisterBatchOutput("netcore_archive", outputSpec(),
		func(conf *service.ParsedConfig, res *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
			policy, err := conf.FieldBatchPolicy(aoFieldBatching)
			if err != nil {
				return nil, policy, 0, err
			}
			out, err := newOutputFromConfig(conf, res)
			// One batch at a time: batches append to the same files in turn.
			return out, policy, 1, err
		})
}

type outputConfig struct {
	dir     string
	timeKey string
	gzip    bool
	keep    time.Duration // 0: keep everything
}

type archiveOutput struct {
	conf     outputConfig
	log      *service.Logger
	archived *service.MetricCounter
	damaged  *service.MetricCounter
	now      func() time.Time
	syncFile func(*os.File) error // (*os.File).Sync; tests count and fail it
	checked  map[string]bool      // files whose tail was checked since the start
	// files is held by a batch while it writes and by the retention while
	// it removes, so that an hour file is never removed under a batch
	// writing to it (a late event of an hour just expired).
	files   sync.Mutex
	stop    chan struct{}
	stopped chan struct{}
}

func newOutputFromConfig(conf *service.ParsedConfig, res *service.Resources) (*archiveOutput, error) {
	var c outputConfig
	var err error
	if c.dir, err = conf.FieldString(aoFieldDir); err != nil {
		return nil, err
	}
	if c.timeKey, err = conf.FieldString(aoFieldTimeMetadata); err != nil {
		return nil, err
	}
	if c.gzip, err = conf.FieldBool(aoFieldGzip); err != nil {
		return nil, err
	}
	days, err := conf.FieldInt(aoFieldRetentionDays)
	if err != nil {
		return nil, err
	}
	if days < 0 {
		return nil, fmt.Errorf("retention_days is %d: use 0 to keep everything, or a number of days", days)
	}
	c.keep = time.Duration(days) * 24 * time.Hour
	archived, damaged := res.Metrics().NewCounter(metricArchived), res.Metrics().NewCounter(metricDamaged)
	// Exported from the start, for dashboards and alerts.
	archived.Incr(0)
	damaged.Incr(0)
	return &archiveOutput{conf: c, log: res.Logger(), archived: archived, damaged: damaged,
		now: time.Now, syncFile: (*os.File).Sync, checked: map[string]bool{}}, nil
}

func (a *archiveOutput) Connect(context.Context) error {
	// The folder's own name must survive a power cut too, or the hour files
	// fsync'd in it go with it (internal/durabledir).
	if err := durabledir.Make(a.conf.dir); err != nil {
		return fmt.Errorf("creating the archive folder (check the path and its permissions): %w", err)
	}
	if a.conf.keep == 0 || a.stop != nil {
		return nil
	}
	a.expire()
	a.stop, a.stopped = make(chan struct{}), make(chan struct{})
	go a.expireEvery(retentionEvery, a.stop, a.stopped)
	return nil
}

func (a *archiveOutput) expireEvery(every time.Duration, stop <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			a.expire()
		}
	}
}

// expire applies the retention. A failure is logged, not fatal: archiving
// goes on, and the next round tries again.
func (a *archiveOutput) expire() {
	a.files.Lock()
	n, err := removeExpired(a.conf.dir, a.conf.keep, a.now())
	a.files.Unlock()
	if n > 0 {
		a.log.Infof("Removed %d archive file(s) of hours that ended over %.0f day(s) ago", n, a.conf.keep.Hours()/24)
	}
	if err != nil {
		a.log.Errorf("Applying the archive retention: %v", err)
	}
}

func (a *archiveOutput) WriteBatch(_ context.Context, batch service.MessageBatch) error {
	paths, lines, err := a.group(batch)
	if err != nil {
		return err
	}
	a.files.Lock()
	defer a.files.Unlock()
	files := make([]*appending, 0, len(paths))
	defer func() {
		for _, f := range files {
			f.close()
		}
	}()
	for _, path := range paths {
		f, err := a.open(path)
		if err != nil {
			return a.rollback(files, err)
		}
		files = append(files, f)
		if err := f.write(lines[path]); err != nil {
			return a.rollback(files, err)
		}
	}
	for _, f := range files {
		if err := a.syncFile(f.file); err != nil {
			return a.rollback(files, fmt.Errorf("syncing %s (is the disk failing or full?): %w", f.file.Name(), err))
		}
	}
	a.archived.Incr(int64(len(batch)))
	return nil
}

// group sorts the events of a batch into their hour files, keeping their
// order within each file.
func (a *archiveOutput) group(batch service.MessageBatch) (paths []string, lines map[string][]byte, err error) {
	lines = map[string][]byte{}
	for _, msg := range batch {
		body, err := msg.AsBytes()
		if err != nil {
			return nil, nil, fmt.Errorf("reading an event: %w", err)
		}
		path := hourFile(a.conf.dir, a.hourOf(msg), a.conf.gzip)
		if _, seen := lines[path]; !seen {
			paths = append(paths, path)
		}
		lines[path] = appendLine(lines[path], body)
	}
	return paths, lines, nil
}

func (a *archiveOutput) hourOf(msg *service.Message) time.Time {
	if v, ok := msg.MetaGet(a.conf.timeKey); ok {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t
		}
	}
	return a.now()
}

// appendLine appends body as one line. Lines are the archive's framing, so
// a body spanning lines is put on one, changing no value.
func appendLine(buf, body []byte) []byte {
	if bytes.ContainsAny(body, "\r\n") {
		var compact bytes.Buffer
		if json.Compact(&compact, body) == nil {
			body = compact.Bytes()
		} else {
			body, _ = json.Marshal(string(body))
		}
	}
	buf = append(buf, body...)
	return append(buf, '\n')
}

func (a *archiveOutput) Close(ctx context.Context) error {
	if a.stop != nil {
		stopped := a.stopped
		close(a.stop)
		a.stop = nil
		// The retention may wait behind a batch stuck in a stalled fsync.
		select {
		case <-stopped:
		case <-ctx.Done():
			return fmt.Errorf("stopping the archive retention: %w", ctx.Err())
		}
	}
	return nil
}
