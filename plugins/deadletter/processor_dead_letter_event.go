package deadletter

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/runstatus"
)

// metaFilePath is the metadata in which the file input names the file a
// line comes from.
const metaFilePath = "path"

func deadLetterEventSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Parsing").
		Summary("Turns a dead letter line back into the event it holds, byte for byte, with its metadata: for replaying dead letters.").
		Description(`
Each message must be one line of a file written by the `+"`dead_letter`"+` output (or by `+"`netcore-connect queue salvage`"+`). It becomes that line's `+"`event`"+` exactly as it was kept: a JSON event is not decoded and written again, so its keys keep their order (duplicates too), its escapes such as `+"`\\u00e9`"+` or a lone `+"`\\ud800`"+` and its numbers' text reach the destination as they were sent the first time; a message kept as `+"`event_text`"+` (not JSON, a JSON string, JSON with white space) becomes that string's text, and so do the strings under `+"`event`"+` of files written before `+"`event_text`"+` existed. Its metadata become the line's `+"`metadata`"+`, replacing those of the input.

A line that is not a dead letter (cut short, edited by hand) fails the message with an error naming the file (the `+"`path`"+` metadata of the `+"`file`"+` input) and the line, logged as an error; and the run then ends with exit status 3, listing it, so that nobody takes the replay for a finished one. Such a message still holds the line: send the output through `+"`reject_errored`"+` and turn off the input's `+"`auto_replay_nacks`"+`, so that it is never sent and its file is not deleted. Lines are numbered as they come, in order where this processor runs under the input, as here.`).
		Example("Replay dead letters", "", `
input:
  file:
    paths: [ ./data/dead-letter/*.jsonl ]
    scanner:
      lines: {}
    delete_on_finish: true
    auto_replay_nacks: false
  processors:
    - dead_letter_event: {}
output:
  reject_errored:
    retry:
      output:
        http_client:
          url: http://127.0.0.1:8081/collect
`)
}

func init() {
	service.MustRegisterProcessor("dead_letter_event", deadLetterEventSpec(),
		func(_ *service.ParsedConfig, res *service.Resources) (service.Processor, error) {
			return &deadLetterEvent{log: res.Logger()}, nil
		})
}

type deadLetterEvent struct {
	log *service.Logger

	// The file being read and the lines of it seen so far, to say which
	// line is not a dead letter: the file input reads one file after
	// another, each line in order.
	mu   sync.Mutex
	file string
	seen int
}

func (d *deadLetterEvent) Process(_ context.Context, msg *service.Message) (service.MessageBatch, error) {
	where := d.place(msg)
	b, err := msg.AsBytes()
	if err != nil {
		return nil, err
	}
	l, body, err := parseLine(b)
	if err != nil {
		return nil, d.unreplayable(where, err)
	}
	var keys []string
	_ = msg.MetaWalk(func(k, _ string) error { keys = append(keys, k); return nil })
	for _, k := range keys {
		msg.MetaDelete(k)
	}
	for k, v := range l.Metadata {
		msg.MetaSetMut(k, v)
	}
	msg.SetBytes(body)
	return service.MessageBatch{msg}, nil
}

// parseLine reads a dead letter line and the message it keeps.
func parseLine(b []byte) (line, []byte, error) {
	var l line
	if err := json.Unmarshal(b, &l); err != nil {
		return l, nil, fmt.Errorf("not a dead letter line (a JSON object as the dead_letter output writes it): %w", err)
	}
	body, err := l.body()
	return l, body, err
}

// place says which line of which file msg is.
func (d *deadLetterEvent) place(msg *service.Message) string {
	file, _ := msg.MetaGet(metaFilePath)
	d.mu.Lock()
	defer d.mu.Unlock()
	if file != d.file {
		d.file, d.seen = file, 0
	}
	d.seen++
	if file == "" {
		return fmt.Sprintf("message %d (from no file)", d.seen)
	}
	return fmt.Sprintf("line %d of %s", d.seen, file)
}

// unreplayable reports a line that is not replayed: in the log now, and as
// the run ends (runstatus), as an operator must see it to act.
func (d *deadLetterEvent) unreplayable(where string, err error) error {
	what := fmt.Sprintf("%s is not replayed: %v. Fix or delete that line, then run the replay again (the file's other events are sent again, with the same event_id)", where, err)
	d.log.Errorf("Dead letter replay: %s", what)
	runstatus.Incomplete("dead letter replay: " + what)
	return fmt.Errorf("%s: %w", where, err)
}

func (*deadLetterEvent) Close(context.Context) error { return nil }
