package deadletter

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/redpanda-data/benthos/v4/public/service"
)

func deadLetterEventSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Parsing").
		Summary("Turns a dead letter line back into the event it holds, byte for byte, with its metadata: for replaying dead letters.").
		Description(`
Each message must be one line of a file written by the `+"`dead_letter`"+` output (or by `+"`netcore-connect queue salvage`"+`). It becomes that line's `+"`event`"+` exactly as it was kept: a JSON event is not decoded and written again, so its keys keep their order (duplicates too), its escapes such as `+"`\\u00e9`"+` or a lone `+"`\\ud800`"+` and its numbers' text reach the destination as they were sent the first time; a message kept as `+"`event_text`"+` (not JSON, a JSON string, JSON with white space) becomes that string's text, and so do the strings under `+"`event`"+` of files written before `+"`event_text`"+` existed. Its metadata become the line's `+"`metadata`"+`, replacing those of the input.

A line that is not a dead letter fails the message with an error saying why.`).
		Example("Replay dead letters", "", `
input:
  file:
    paths: [ ./data/dead-letter/*.jsonl ]
    scanner:
      lines: {}
    delete_on_finish: true
  processors:
    - dead_letter_event: {}
`)
}

func init() {
	service.MustRegisterProcessor("dead_letter_event", deadLetterEventSpec(),
		func(*service.ParsedConfig, *service.Resources) (service.Processor, error) {
			return deadLetterEvent{}, nil
		})
}

type deadLetterEvent struct{}

func (deadLetterEvent) Process(_ context.Context, msg *service.Message) (service.MessageBatch, error) {
	b, err := msg.AsBytes()
	if err != nil {
		return nil, err
	}
	var l line
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("not a dead letter line (a JSON object as the dead_letter output writes it): %w", err)
	}
	body, err := l.body()
	if err != nil {
		return nil, err
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

func (deadLetterEvent) Close(context.Context) error { return nil }
