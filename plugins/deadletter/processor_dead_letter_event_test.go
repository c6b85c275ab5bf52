package deadletter

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/runstatus"
)

func newTestDeadLetterEvent() *deadLetterEvent {
	return &deadLetterEvent{log: service.MockResources().Logger()}
}

// replayLines runs each line through dead_letter_event, as a replay's file
// input hands them over (with the input's own metadata).
func replayLines(t *testing.T, lines []string) service.MessageBatch {
	t.Helper()
	var out service.MessageBatch
	proc := newTestDeadLetterEvent()
	for _, l := range lines {
		msg := service.NewMessage([]byte(l))
		msg.MetaSetMut("path", "data/dead-letter/x.jsonl")
		batch, err := proc.Process(context.Background(), msg)
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		out = append(out, batch...)
	}
	return out
}

func TestDeadLetterEventGivesBackTheBytesWritten(t *testing.T) {
	events := []string{
		`{"b":1,"a":"\u00e9","a":2,"s":"\ud800","n":1.0e+2,"big":12345678901234567890123}`,
		`{"city":"Pune&Nashik <x>","z":[1.50,-0E-0,{"y":null,"x":true}]}`,
		`not JSON: Pune&Nashik <x> é`,
		`"a JSON string"`,
		`{"spaced": [1, 2]}`,
		` {"a":1}` + "\n",
		`null`,
		``,
	}
	dir := t.TempDir()
	var batch service.MessageBatch
	for i, ev := range events {
		msg := service.NewMessage([]byte(ev))
		msg.MetaSetMut("netcore_event_id", strings.Repeat("x", i+1))
		msg.MetaSetMut("fallback_error", "refused")
		batch = append(batch, msg)
	}
	file, err := WriteFile(dir, batch, "netcore_", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(written), "\n"), "\n")
	if len(lines) != len(events) {
		t.Fatalf("%d lines for %d events:\n%s", len(lines), len(events), written)
	}
	if !strings.Contains(lines[0], `"event":`+events[0]+`}`) {
		t.Errorf("the JSON event is not kept as its own text: %s", lines[0])
	}
	// What could not be written under "event" as it is goes under
	// "event_text", so that "event" never holds a string in a new line: a
	// string there is an old line's message that was not JSON.
	for _, i := range []int{2, 3, 4, 5, 7} {
		if !strings.Contains(lines[i], `"event_text":`) || strings.Contains(lines[i], `"event":`) {
			t.Errorf("event %d (%q) is not kept as event_text: %s", i, events[i], lines[i])
		}
	}

	got := replayLines(t, lines)
	for i, msg := range got {
		body, _ := msg.AsBytes()
		want := events[i]
		if string(body) != want {
			t.Errorf("event %d replayed as\n%s\nwant\n%s", i, body, want)
		}
		if id, _ := msg.MetaGet("netcore_event_id"); id != strings.Repeat("x", i+1) {
			t.Errorf("event %d: metadata netcore_event_id %q, want the line's", i, id)
		}
		if _, ok := msg.MetaGet("path"); ok {
			t.Errorf("event %d keeps the input's metadata: the line's replace them", i)
		}
	}
}

// Files written before the event was read back byte for byte: the format
// is the same, so they replay as they are.
func TestDeadLetterEventReadsFilesOfEarlierVersions(t *testing.T) {
	lines := []string{
		`{"dead_lettered_at":"2025-01-02T03:04:05.123456789Z","error":"HTTP request returned unexpected response code (400): 400 Bad Request","metadata":{"netcore_event_id":"abc"},"event":{"b":1,"a":"\u00e9","n":1.0e+2}}`,
		`{"dead_lettered_at":"2025-01-02T03:04:05Z","error":"","event":"not json <&>"}`,
		`{"dead_lettered_at":"2025-01-02T03:04:05Z","error":"","event":null}`,
	}
	got := replayLines(t, lines)
	if b, _ := got[0].AsBytes(); string(b) != `{"b":1,"a":"\u00e9","n":1.0e+2}` {
		t.Errorf("event %s", b)
	}
	if id, _ := got[0].MetaGet("netcore_event_id"); id != "abc" {
		t.Errorf("metadata netcore_event_id %q, want abc", id)
	}
	if b, _ := got[1].AsBytes(); string(b) != "not json <&>" {
		t.Errorf("event %s", b)
	}
	if b, _ := got[2].AsBytes(); string(b) != "null" {
		t.Errorf("event %s", b)
	}
}

func TestDeadLetterEventRefusesWhatIsNotADeadLetter(t *testing.T) {
	for line, want := range map[string]string{
		`{"dead_lettered_at":"2025-01-02T03:04:05Z"`: "not a dead letter line",
		`[1,2]`: "not a dead letter line",
		`{"error":"x","metadata":{"netcore_a":"b"}}`:   `no "event"`,
		`{"metadata":{"netcore_a":1},"event":{"a":1}}`: "not a dead letter line",
		`{"event":{"a":1},"event_text":"x"}`:           `both "event" and "event_text"`,
		`{"event_text":{"a":1}}`:                       "not a dead letter line",
	} {
		_, err := newTestDeadLetterEvent().Process(context.Background(), service.NewMessage([]byte(line)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one saying %q", line, err, want)
		}
	}
}

// A line that is not a dead letter is named by its file and number, in the
// error and in the run's status, for a person to find it.
func TestDeadLetterEventNamesTheFileAndLineItCannotReplay(t *testing.T) {
	const good = `{"event":{"a":1}}`
	proc := newTestDeadLetterEvent()
	var errs []string
	for _, m := range []struct{ file, line string }{
		{"dl/a.jsonl", good}, {"dl/a.jsonl", good}, {"dl/a.jsonl", `{"event":{"a":`},
		{"dl/b.jsonl", `{"error":"x"}`}, {"dl/b.jsonl", good},
	} {
		msg := service.NewMessage([]byte(m.line))
		msg.MetaSetMut("path", m.file)
		if _, err := proc.Process(context.Background(), msg); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) != 2 || !strings.HasPrefix(errs[0], "line 3 of dl/a.jsonl: not a dead letter line") || !strings.HasPrefix(errs[1], `line 1 of dl/b.jsonl: not a dead letter line: it has no "event"`) {
		t.Fatalf("errors %q, want line 3 of dl/a.jsonl and line 1 of dl/b.jsonl", errs)
	}
	reports := strings.Join(runstatus.Reports(), "\n")
	for _, want := range []string{"line 3 of dl/a.jsonl is not replayed", "line 1 of dl/b.jsonl is not replayed"} {
		if !strings.Contains(reports, want) {
			t.Errorf("the run's status does not say %q:\n%s", want, reports)
		}
	}
}
