package deadletter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// line is one dead letter, one JSON line of a dead letter file: written by
// WriteFile, read back by the dead_letter_event processor of a replay, so
// that both read and write the same members.
type line struct {
	DeadLetteredAt time.Time         `json:"dead_lettered_at"`
	Error          string            `json:"error"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	Event          event             `json:"event"`
}

// event is a dead letter's message, kept so that a replay sends the bytes
// that were sent the first time. A JSON message is written as its own JSON
// text, never decoded: key order, duplicate keys, escapes such as \u00e9 or
// a lone \ud800, and each number's text stay as they were (only white space
// between tokens is left out, as a line holds one event; the pipeline's
// events have none). Anything else is written as a JSON string.
type event []byte

// MarshalJSON hands the JSON text itself to the encoder, which then only
// takes out white space (with HTML escaping off, as WriteFile sets it).
func (e event) MarshalJSON() ([]byte, error) {
	if json.Valid(e) {
		return e, nil
	}
	// Not json.Marshal: it would escape <, > and &, and the files are read
	// by people too.
	var s bytes.Buffer
	enc := json.NewEncoder(&s)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(string(e)); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(s.Bytes(), []byte("\n")), nil
}

// UnmarshalJSON keeps the member's JSON text as it is in the line; a JSON
// string is a message that was not JSON, and becomes its text again.
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
