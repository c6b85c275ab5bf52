package deadletter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// line is one dead letter, one JSON line of a dead letter file: written by
// WriteFile, read back by the dead_letter_event processor of a replay, so
// that both read and write the same members.
//
// The message is kept so that a replay sends the bytes that were sent the
// first time, under one of two members:
//
//   - event: a JSON message, other than a JSON string, with no white space
//     between its tokens (every event of the pipeline), written as its own
//     JSON text, never decoded: key order, duplicate keys, escapes such as
//     \u00e9 or a lone \ud800, and each number's text stay as they were;
//   - event_text: any other message, as a JSON string of its text (so a
//     JSON string message is kept as the string of its quoted text).
//
// Lines written before event_text existed kept every message that was not
// JSON, and every JSON string message, as a JSON string under event. A
// string under event therefore always means the text of such an old line:
// new lines never write one there.
type line struct {
	DeadLetteredAt time.Time         `json:"dead_lettered_at"`
	Error          string            `json:"error"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	Event          event             `json:"event,omitempty"`
	EventText      *string           `json:"event_text,omitempty"`
}

// keep puts body under the member from which a replay gets it back byte for
// byte.
func (l *line) keep(body []byte) {
	if keptAsItIs(body) {
		l.Event = body
		return
	}
	text := string(body)
	l.EventText = &text
}

// keptAsItIs says whether body goes under event unchanged: it is JSON, not
// a string (an old line's string there is text), and has no white space
// that the encoder would take out of it.
func keptAsItIs(body []byte) bool {
	if len(body) == 0 || body[0] == '"' {
		return false
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		return false // not JSON
	}
	return bytes.Equal(compact.Bytes(), body)
}

// body is the message the line keeps.
func (l *line) body() ([]byte, error) {
	switch {
	case l.Event != nil && l.EventText != nil:
		return nil, errors.New(`not a dead letter line: it has both "event" and "event_text", and a dead letter keeps one message`)
	case l.EventText != nil:
		return []byte(*l.EventText), nil
	case l.Event != nil:
		return l.Event, nil
	}
	return nil, errors.New(`not a dead letter line: it has no "event" (nor "event_text")`)
}

// event is a message kept under event: its JSON text.
type event []byte

// MarshalJSON hands the JSON text itself to the encoder (keep put only
// compact JSON here, which the encoder then writes as it is, with HTML
// escaping off as WriteFile sets it).
func (e event) MarshalJSON() ([]byte, error) {
	return e, nil
}

// UnmarshalJSON keeps the member's JSON text as it is in the line; a JSON
// string is an old line's message that was not JSON, and becomes its text
// again.
func (e *event) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("decoding the event, a JSON string: %w", err)
		}
		*e = event(s)
		return nil
	}
	*e = bytes.Clone(data) // data is the decoder's: not ours to keep
	return nil
}
