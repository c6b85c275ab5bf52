// Package deadletter is the dead_letter output (output_dead_letter.go):
// events that the destination refused for good, written to disk durably for
// inspection and replay; and the dead_letter_event processor
// (processor_dead_letter_event.go) with which a replay turns each line back
// into the event's bytes. line.go is the line format both share; keeper.go
// the Keeper through which every output that gives up on events (this one,
// meiro_http, postgres) keeps them.
package deadletter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/plugkit"
	"github.com/netcore-connect/netcore-connect/internal/stage"
)

const (
	dlFieldDir            = "dir"
	dlFieldMetadataPrefix = "metadata_prefix"
)

func deadLetterSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Local").
		Summary("Writes events that were refused for good (dead letters) to JSON lines files, fsync'd before the event is acknowledged.").
		Description(`
Each batch becomes a new file `+"`<dir>/<UTC time>-<n>.jsonl`"+`, written under a temporary name, fsync'd and then renamed into place, so a file that can be seen is complete and never written again. That makes replaying safe while the pipeline runs: `+"`config/replay-dead-letters.yaml`"+` reads the files, turns each line back into its event (the `+"`dead_letter_event`"+` processor), sends the events again and deletes each file once all of its events are delivered.

Each line is a JSON object:

- `+"`dead_lettered_at`"+`: when it was written (RFC 3339, UTC);
- `+"`error`"+`: why it failed, from the `+"`fallback_error`"+` metadata that the `+"`fallback`"+` output sets;
- `+"`metadata`"+`: the message metadata whose keys start with `+"`metadata_prefix`"+`;
- `+"`event`"+`: the event itself when it is JSON (other than a JSON string) with no white space between its tokens, as every event of the pipeline is: its own JSON text, never decoded (key order, duplicate keys, escapes and numbers as sent);
- `+"`event_text`"+`: instead of `+"`event`"+`, any other message (not JSON, a JSON string, JSON with white space), as a JSON string of its text.

Either way a replay sends the message's bytes as they were. (Files written before `+"`event_text`"+` existed hold such messages as a string under `+"`event`"+`; they are read as before.)

Use it as the last tier of a `+"`fallback`"+` output, for the answers that retrying cannot fix.`).
		Fields(
			service.NewStringField(dlFieldDir).
				Description("The folder of dead letter files; created if missing.").
				Example("${NETCORE_DATA_DIR:./data}/dead-letter"),
			service.NewStringField(dlFieldMetadataPrefix).
				Description("Metadata keys with this prefix are kept in each line; empty keeps all.").
				Default(stage.MetaPrefix),
		).
		Example("Dead letters after Meiro Events", "", `
output:
  fallback:
    - http_client:
        url: ${MEIRO_EVENTS_URL}
        drop_on: [ 400, 422 ]
    - dead_letter:
        dir: ./data/dead-letter
`)
}

func init() {
	service.MustRegisterBatchOutput("dead_letter", deadLetterSpec(),
		func(conf *service.ParsedConfig, res *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
			out, err := newDeadLetterFromConfig(conf, res)
			return out, service.BatchPolicy{}, 1, err
		})
}

type deadLetter struct {
	keep *Keeper
}

func newDeadLetterFromConfig(conf *service.ParsedConfig, res *service.Resources) (*deadLetter, error) {
	dir, err := conf.FieldString(dlFieldDir)
	if err != nil {
		return nil, err
	}
	prefix, err := conf.FieldString(dlFieldMetadataPrefix)
	if err != nil {
		return nil, err
	}
	return &deadLetter{keep: NewKeeper(dir, prefix, res)}, nil
}

func (d *deadLetter) Connect(context.Context) error {
	return d.keep.Prepare()
}

func (d *deadLetter) WriteBatch(_ context.Context, batch service.MessageBatch) error {
	return d.keep.Keep(batch, "refused for good")
}

// fileSeq numbers the files written in one nanosecond apart.
var fileSeq atomic.Uint64

// WriteFile writes batch as one new dead letter file in dir, complete and
// fsync'd before it appears under its name, and returns its path. Each line
// keeps the message's metadata whose keys start with prefix, and the
// fallback_error metadata as the reason. `netcore-connect queue salvage`
// writes the events of a damaged queue file with it, for
// config/replay-dead-letters.yaml to send.
func WriteFile(dir string, batch service.MessageBatch, prefix string, now time.Time) (string, error) {
	var buf []byte
	for _, msg := range batch {
		body, err := msg.AsBytes()
		if err != nil {
			return "", err
		}
		l := line{DeadLetteredAt: now, Metadata: map[string]string{}}
		l.keep(body)
		l.Error, _ = msg.MetaGet(stage.MetaFallbackError)
		plugkit.WalkMetaWithPrefix(msg, prefix, func(k, v string) { l.Metadata[k] = v })
		// Not json.Marshal: it would escape <, > and & inside the event's
		// strings, and the event must stay as it was sent.
		var line bytes.Buffer
		enc := json.NewEncoder(&line)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(l); err != nil {
			return "", fmt.Errorf("encoding dead letter: %w", err)
		}
		buf = append(buf, line.Bytes()...)
	}
	name := fmt.Sprintf("%s-%06d.jsonl", now.Format("20060102T150405.000000000Z"), fileSeq.Add(1))
	if err := writeDurably(dir, name, buf); err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}

// writeDurably writes a whole file that appears under its name only once
// it is complete and on disk.
func writeDurably(dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, ".writing-*")
	if err != nil {
		return fmt.Errorf("creating dead letter file: %w", err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing dead letter file: %w", err)
	}
	// The rename is durable only once the folder is synced.
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing dead letter folder: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing dead letter folder: %w", err)
	}
	return nil
}

func (d *deadLetter) Close(context.Context) error { return nil }
