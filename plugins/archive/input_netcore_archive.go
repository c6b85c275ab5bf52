package archive

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/stage"
)

const (
	aiFieldDir  = "dir"
	aiFieldFrom = "from"
	aiFieldTo   = "to"

	// Metadata set on each replayed event, for logs and templating.
	fileKey = stage.MetaArchiveFile
	lineKey = stage.MetaArchiveLine
)

func inputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Local").
		Summary("Replays the events archived by the `netcore_archive` output for a range of UTC hours, in order, one message per line exactly as archived, and ends when done.").
		Description(`
Reads the hour files `+"`<dir>/<UTC date>/<UTC hour>.jsonl`"+` and `+"`.jsonl.gz`"+` of every hour in [`+"`from`"+`, `+"`to`"+`): the hour starting at `+"`from`"+` is read, the hour starting at `+"`to`"+` is not. Hours are read in time order (a range may span days), each file from its start, plain before gzip when an hour has both; a missing hour is skipped. Each line becomes one message whose content is the line exactly as archived (without its newline), with the metadata `+"`netcore_archive_file`"+` (the file, relative to `+"`dir`"+`) and `+"`netcore_archive_line`"+` (its line number, from 1). When every line is read and every message acknowledged, the input ends, so `+"`netcore-connect run`"+` exits.

Both times are RFC 3339 (`+"`2026-11-28T07:00:00Z`"+`, or with an offset) and must fall on a whole UTC hour, since the archive is kept per hour. A range with `+"`from`"+` equal to `+"`to`"+` replays nothing; `+"`to`"+` before `+"`from`"+` is an error.

A torn record at the end of a file, left by a crash while it was being written, is skipped: its events were never acknowledged and were archived again whole.

### Delivery guarantees

A message the output fails to deliver (nacked) is read again and retried until it is delivered, so the input ends only once everything in the range went out. Files are not changed or removed: a second replay of the same range sends the same events again.`).
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
	files    []string // the hour files left to read, in order
	cur      *lineReader
	read     int // lines read so far, for the summary
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
	return &archiveInput{dir: dir, from: from, to: to, log: res.Logger()}, nil
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

// Connect lists the files of the range. It is called again after a
// failure, so the list is made once.
func (a *archiveInput) Connect(context.Context) error {
	if a.files != nil || a.read > 0 {
		return nil
	}
	a.files = []string{}
	for h := a.from; h.Before(a.to); h = h.Add(time.Hour) {
		for _, path := range hourFiles(a.dir, h) {
			_, err := os.Stat(path)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("checking the archive file %s: %w", path, err)
			}
			a.files = append(a.files, path)
		}
	}
	a.log.Infof("Replaying %d archive file(s) of the hours from %s to %s (excluded)", len(a.files), a.from.Format(time.RFC3339), a.to.Format(time.RFC3339))
	return nil
}

func (a *archiveInput) Read(context.Context) (*service.Message, service.AckFunc, error) {
	for {
		if a.cur == nil {
			if len(a.files) == 0 {
				a.log.Infof("Read all %d event(s) of the range; the run ends once they are delivered", a.read)
				return nil, nil, service.ErrEndOfInput
			}
			cur, err := openLines(a.files[0])
			if errors.Is(err, fs.ErrNotExist) {
				// Removed since the start, by the retention: nothing to send.
				a.log.Warnf("Skipping %s: it was removed during the replay", a.files[0])
				a.files = a.files[1:]
				continue
			}
			if err != nil {
				return nil, nil, err
			}
			a.cur, a.files = cur, a.files[1:]
		}
		line, err := a.cur.next()
		if errors.Is(err, io.EOF) {
			a.cur.close()
			a.cur = nil
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if len(line) == 0 {
			continue
		}
		a.read++
		msg := service.NewMessage(line)
		rel, _ := filepath.Rel(a.dir, a.cur.path)
		msg.MetaSetMut(fileKey, filepath.ToSlash(rel))
		msg.MetaSetMut(lineKey, strconv.Itoa(a.cur.line))
		return msg, func(context.Context, error) error { return nil }, nil
	}
}

func (a *archiveInput) Close(context.Context) error {
	if a.cur != nil {
		a.cur.close()
		a.cur = nil
	}
	return nil
}

// lineReader reads the whole lines of one hour file.
type lineReader struct {
	path string
	file *os.File
	r    *bufio.Reader
	line int
}

// openLines opens an hour file for reading up to the end of its last whole
// record, leaving out a torn tail.
func openLines(path string) (*lineReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening the archive file %s: %w", path, err)
	}
	gzipped := filepath.Ext(path) == ".gz"
	whole, err := wholeLength(f, gzipped)
	if err != nil {
		f.Close()
		return nil, err
	}
	var src io.Reader = io.NewSectionReader(f, 0, whole)
	if gzipped && whole > 0 {
		zr, err := gzip.NewReader(src)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("reading the gzip archive file %s: %w", path, err)
		}
		src = zr
	}
	return &lineReader{path: path, file: f, r: bufio.NewReaderSize(src, 64<<10)}, nil
}

// next returns the next line without its newline, or io.EOF.
func (l *lineReader) next() ([]byte, error) {
	line, err := l.r.ReadBytes('\n')
	if len(line) > 0 && line[len(line)-1] == '\n' {
		l.line++
		return line[:len(line)-1], nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		// Only whole records are read, so the data ends on a newline.
		return nil, io.EOF
	}
	return nil, fmt.Errorf("reading the archive file %s: %w", l.path, err)
}

func (l *lineReader) close() { l.file.Close() }
