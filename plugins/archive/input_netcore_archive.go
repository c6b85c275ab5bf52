package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/runstatus"
	"github.com/netcore-connect/netcore-connect/internal/stage"
)

const (
	aiFieldDir  = "dir"
	aiFieldFrom = "from"
	aiFieldTo   = "to"

	// Metadata set on each replayed event, for logs and templating.
	fileKey = stage.MetaArchiveFile
	lineKey = stage.MetaArchiveLine

	// writtenWithin is how recently a file with a torn tail must have been
	// written for the tail to be taken for a write in progress. A batch is
	// written in milliseconds, and an hour file can be written long after
	// its hour ended (a backlog archived late), so only the file's own
	// modification time says whether it is being written.
	writtenWithin = time.Minute
)

func inputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Local").
		Summary("Replays the events archived by the `netcore_archive` output for a range of UTC hours, in order, one message per line exactly as archived, and ends when done.").
		Description(`
Reads the hour files `+"`<dir>/<UTC date>/<UTC hour>.jsonl`"+` and `+"`.jsonl.gz`"+` of every hour in [`+"`from`"+`, `+"`to`"+`): the hour starting at `+"`from`"+` is read, the hour starting at `+"`to`"+` is not. Hours are read in time order (a range may span days), each file from its start; within an hour, files the output moved aside as damaged (`+"`13.damaged-<unix>.jsonl.gz`"+`) come first, then plain, then gzip. A missing hour is skipped. Only the date folders the range touches are listed, so a range of centuries starts at once. Each line becomes one message whose content is the line exactly as archived (without its newline), with the metadata `+"`netcore_archive_file`"+` (the file, relative to `+"`dir`"+`) and `+"`netcore_archive_line`"+` (its line number, from 1). When every line is read and every message acknowledged, the input ends, so `+"`netcore-connect run`"+` exits.

Both times are RFC 3339 (`+"`2026-11-28T07:00:00Z`"+`, or with an offset) and must fall on a whole UTC hour, since the archive is kept per hour. A range with `+"`from`"+` equal to `+"`to`"+` replays nothing; `+"`to`"+` before `+"`from`"+` is an error.

A torn record at the end of a file is skipped: a write in progress when the file was written within the last minute; otherwise a crash's torn write or damage, which the input cannot tell apart, so it is reported as below. A torn tail the output cut off and kept aside (`+"`13.torn-<unix>.jsonl`"+`) holds no whole record: it is named in the log and nothing is sent from it (by the output's judgement its events were never acknowledged and were archived again).

### What cannot be read

Every part of the range that reads back whole is replayed. A gzip member that fails its checksum (damage after it was written) is skipped and the members after it are read; a file that cannot be opened or read (a folder where it should be, an I/O error) is skipped, and so is a file listed at the start and gone when its turn comes (removed by the retention), unless the output moved it aside as damaged meanwhile: then it is read there. Each is logged as an error when found, naming the file, the bytes and the events (at least) that are not replayed, and once the rest is delivered the input ends and `+"`netcore-connect run`"+` exits with status 3, listing them again. A run stopped before the end of its range (SIGTERM) also exits with status 3, saying how many events it delivered.

### Delivery guarantees

A message the output fails to deliver (nacked) is read again and retried until it is delivered, so the input ends only once everything in the range that could be read went out. Files are not changed or removed: a second replay of the same range sends the same events again.`).
		Fields(
			service.NewStringField(aiFieldDir).
				Description("The archive folder written by the `netcore_archive` output.").
				Example("${NETCORE_DATA_DIR:./data}/archive"),
			service.NewStringField(aiFieldFrom).
				Description("The first hour to replay, an RFC 3339 time on a whole hour (included).").
				Example("2026-11-28T07:00:00Z"),
			service.NewStringField(aiFieldTo).
				Description("The end of the range, an RFC 3339 time on a whole hour (excluded).").
				Example("2026-11-28T13:00:00Z"),
		).
		Example("Replay six hours", "", `
input:
  netcore_archive:
    dir: ${NETCORE_DATA_DIR:./data}/archive
    from: ${REPLAY_FROM}
    to: ${REPLAY_TO}
`)
}

func init() {
	service.MustRegisterInput("netcore_archive", inputSpec(),
		func(conf *service.ParsedConfig, res *service.Resources) (service.Input, error) {
			in, err := newInputFromConfig(conf, res)
			if err != nil {
				return nil, err
			}
			return service.AutoRetryNacks(in), nil
		})
}

type archiveInput struct {
	dir      string
	from, to time.Time
	log      *service.Logger
	listed   bool
	files    []string        // the hour files left to read, in order
	seen     map[string]bool // every file listed or found moved aside
	cur      *lineReader
	read     atomic.Int64 // lines read so far
	sent     atomic.Int64 // lines delivered (acknowledged) so far
	ended    atomic.Bool  // every file was read
	unread   int          // parts that could not be read, for the summary
	// finished tells runstatus the range was delivered whole: until then
	// the run counts as stopped early, however the process ends.
	finished func()
}

func newInputFromConfig(conf *service.ParsedConfig, res *service.Resources) (*archiveInput, error) {
	dir, err := conf.FieldString(aiFieldDir)
	if err != nil {
		return nil, err
	}
	from, err := hourField(conf, aiFieldFrom)
	if err != nil {
		return nil, err
	}
	to, err := hourField(conf, aiFieldTo)
	if err != nil {
		return nil, err
	}
	if to.Before(from) {
		return nil, fmt.Errorf("the range ends (to: %s) before it starts (from: %s): swap them", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	a := &archiveInput{dir: dir, from: from, to: to, log: res.Logger(), seen: map[string]bool{}}
	// Pending from now on, not from Connect: a SIGTERM before Benthos
	// connects the input ends a run that delivered nothing.
	a.finished = runstatus.Pending(func() string {
		return fmt.Sprintf("archive replay stopped before the end of the range [%s, %s): %d event(s) delivered; run it again to send the range whole",
			a.from.Format(time.RFC3339), a.to.Format(time.RFC3339), a.sent.Load())
	})
	return a, nil
}

// hourField reads an RFC 3339 time that must fall on a whole UTC hour.
func hourField(conf *service.ParsedConfig, name string) (time.Time, error) {
	s, err := conf.FieldString(name)
	if err != nil {
		return time.Time{}, err
	}
	if s == "" {
		return time.Time{}, fmt.Errorf("%s is empty: give an RFC 3339 time on a whole hour such as 2026-11-28T07:00:00Z (config/replay-archive.yaml reads REPLAY_FROM and REPLAY_TO)", name)
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not an RFC 3339 time such as 2026-11-28T07:00:00Z: %w", name, s, err)
	}
	t = t.UTC()
	if !t.Truncate(time.Hour).Equal(t) {
		return time.Time{}, fmt.Errorf("%s %s is not on a whole UTC hour: the archive is kept per hour, so use %s or %s",
			name, s, t.Truncate(time.Hour).Format(time.RFC3339), t.Truncate(time.Hour).Add(time.Hour).Format(time.RFC3339))
	}
	return t, nil
}

// Connect lists the files of the range, once: Benthos calls it again after
// a failure. It never fails: what cannot be listed is reported with the
// rest of what cannot be read, and the run goes on with what can.
func (a *archiveInput) Connect(context.Context) error {
	if a.listed {
		return nil
	}
	a.listed = true
	files, unlisted, err := rangeFiles(a.dir, a.from, a.to)
	if err != nil {
		unlisted = append(unlisted, err)
	}
	for _, err := range unlisted {
		a.cannotRead(fmt.Sprintf("%v: the events of the hours there are not replayed", err))
	}
	a.files = files
	for _, f := range files {
		a.seen[f] = true
	}
	a.log.Infof("Replaying %d archive file(s) of the hours from %s to %s (excluded)", len(a.files), a.from.Format(time.RFC3339), a.to.Format(time.RFC3339))
	return nil
}

func (a *archiveInput) Read(context.Context) (*service.Message, service.AckFunc, error) {
	for {
		if a.cur == nil {
			if len(a.files) == 0 {
				return nil, nil, a.end()
			}
			path := a.files[0]
			a.files = a.files[1:]
			if a.cur = a.open(path); a.cur == nil {
				continue
			}
		}
		line, err := a.cur.next()
		if errors.Is(err, io.EOF) {
			a.cur.close()
			a.cur = nil
			continue
		}
		if err != nil {
			a.cannotRead(fmt.Sprintf("%s: reading stopped after line %d (%v): the rest of the file is not replayed", a.rel(a.cur.path), a.cur.line, err))
			a.cur.close()
			a.cur = nil
			continue
		}
		if len(line) == 0 {
			continue
		}
		a.read.Add(1)
		msg := service.NewMessage(line)
		msg.MetaSetMut(fileKey, a.rel(a.cur.path))
		msg.MetaSetMut(lineKey, strconv.Itoa(a.cur.line))
		return msg, func(_ context.Context, err error) error {
			if err == nil {
				a.sent.Add(1)
				a.finishIfDelivered()
			}
			return nil
		}, nil
	}
}

// open opens an hour file for reading its whole records, reporting any
// damage in it; nil when nothing of it can be read.
func (a *archiveInput) open(path string) *lineReader {
	if keptAside(filepath.Base(path)) == tornInfix {
		a.skipTorn(path)
		return nil
	}
	l, err := openLines(path)
	if errors.Is(err, fs.ErrNotExist) {
		a.gone(path)
		return nil
	}
	if err != nil {
		a.cannotRead(fmt.Sprintf("%s cannot be read (%v): none of its events are replayed", a.rel(path), err))
		return nil
	}
	for _, d := range l.damaged {
		a.cannotRead(fmt.Sprintf("%s: from byte %d to byte %d it cannot be read (%v): at least %d event(s) there are not replayed, the rest of the file is",
			a.rel(path), d.start, d.end, d.cause, d.lines))
	}
	switch {
	case l.torn == l.size:
	case time.Since(l.modified) > writtenWithin:
		// No write in progress: a crash's torn batch, or damage to
		// acknowledged events; which, the replay cannot tell.
		a.cannotRead(fmt.Sprintf("%s: the last %d bytes do not read back whole and the file was last written at %s: a write cut short by a crash (never acknowledged; the archive keeps them aside as %s<unix> when it starts) or damage to archived events; they are not replayed",
			a.rel(path), l.size-l.torn, l.modified.UTC().Format(time.RFC3339), tornInfix[1:]))
	default:
		a.log.Infof("Skipping the last %d bytes of %s: a write in progress", l.size-l.torn, a.rel(path))
	}
	return l
}

// gone handles a file listed at the start and missing when its turn comes.
// A receiver started meanwhile may have moved it aside as damaged: its
// events are read there. Otherwise (the retention, or a hand, removed it)
// they are not replayed, and that is reported.
func (a *archiveInput) gone(path string) {
	dir, name := filepath.Split(path)
	hh, ext, _ := strings.Cut(name, ".")
	moved, _ := filepath.Glob(filepath.Join(dir, hh+damagedInfix+"*."+ext))
	moved = slices.DeleteFunc(moved, func(f string) bool { return a.seen[f] })
	if len(moved) == 0 {
		a.cannotRead(fmt.Sprintf("%s was in the range when the replay started and is gone (removed by the retention or by hand): none of its events are replayed", a.rel(path)))
		return
	}
	for _, f := range moved {
		a.seen[f] = true
	}
	a.log.Infof("%s was moved aside since the replay started: reading %d file(s) it was moved to", a.rel(path), len(moved))
	a.files = append(moved, a.files...)
}

// skipTorn names a torn tail the archive kept aside. It holds no whole
// record, so there is nothing to send; by the archive's judgement its events
// were never acknowledged and were archived again.
func (a *archiveInput) skipTorn(path string) {
	size := "its"
	if info, err := os.Stat(path); err == nil {
		size = strconv.FormatInt(info.Size(), 10)
	}
	a.log.Warnf("Not replaying %s: %s bytes cut off the end of its hour file as a torn write when the archive started again (never acknowledged, archived again); kept for inspection", a.rel(path), size)
}

// cannotRead reports a part of the range that is not replayed: logged now,
// and listed again as the process exits non-zero (runstatus).
func (a *archiveInput) cannotRead(what string) {
	a.log.Errorf("Archive replay: %s", what)
	runstatus.Incomplete("archive replay: " + what)
	a.unread++
}

// end is called once every file was read.
func (a *archiveInput) end() error {
	if !a.ended.Load() {
		if a.unread > 0 {
			a.log.Errorf("Read %d event(s) of the range; %d part(s) of it could not be read (above): the run exits with status 3 once the events read are delivered", a.read.Load(), a.unread)
		} else {
			a.log.Infof("Read all %d event(s) of the range; the run ends once they are delivered", a.read.Load())
		}
		a.ended.Store(true)
		a.finishIfDelivered()
	}
	return service.ErrEndOfInput
}

// finishIfDelivered tells runstatus the range is done once every file was
// read and every event read was delivered.
func (a *archiveInput) finishIfDelivered() {
	if a.ended.Load() && a.sent.Load() == a.read.Load() {
		a.finished()
	}
}

func (a *archiveInput) rel(path string) string {
	rel, err := filepath.Rel(a.dir, path)
	if err != nil {
		return path
	}
	return filepath.ToSlash(rel)
}

// Close logs a run stopped before its range was delivered; runstatus
// reports it as the process exits.
func (a *archiveInput) Close(context.Context) error {
	if a.cur != nil {
		a.cur.close()
		a.cur = nil
	}
	if !a.ended.Load() || a.sent.Load() < a.read.Load() {
		a.log.Errorf("The archive replay is stopped before the end of the range: %d of the %d event(s) read so far were delivered", a.sent.Load(), a.read.Load())
	}
	return nil
}
