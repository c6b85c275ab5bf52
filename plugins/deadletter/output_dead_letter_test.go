package deadletter

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

func newTestDeadLetter(t *testing.T, dir string) *deadLetter {
	t.Helper()
	conf, err := deadLetterSpec().ParseYAML("dir: "+dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := newDeadLetterFromConfig(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDeadLetterWritesCompleteFilesWithTheExactEvent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dead-letter")
	d := newTestDeadLetter(t, dir)

	event := service.NewMessage([]byte(`{"id":12345678901234567890123,"price":45999.50,"city":"Pune&Nashik <x>"}`))
	event.MetaSetMut("fallback_error", "HTTP request returned unexpected response code (400): 400 Bad Request")
	event.MetaSetMut("netcore_event_id", "abc")
	event.MetaSetMut("http_status_code", "400")
	notJSON := service.NewMessage([]byte("not json"))
	for _, batch := range []service.MessageBatch{{event}, {notJSON}} {
		if err := d.WriteBatch(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}

	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 2 {
		t.Fatalf("files %v, want one complete .jsonl file per batch and nothing else", files)
	}
	var lines []map[string]json.RawMessage
	for _, f := range files {
		if !strings.HasSuffix(f, ".jsonl") {
			t.Errorf("%s is not a .jsonl file", f)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var l map[string]json.RawMessage
		if err := json.Unmarshal(b, &l); err != nil || !strings.HasSuffix(string(b), "\n") {
			t.Fatalf("%s is not one JSON line: %s", f, b)
		}
		lines = append(lines, l)
	}
	first := lines[0]
	if string(first["event"]) != `{"id":12345678901234567890123,"price":45999.50,"city":"Pune&Nashik <x>"}` {
		t.Errorf("event changed: %s", first["event"])
	}
	if !strings.Contains(string(first["error"]), "response code (400)") {
		t.Errorf("error %s, want the fallback error", first["error"])
	}
	if string(first["metadata"]) != `{"netcore_event_id":"abc"}` {
		t.Errorf("metadata %s, want only the netcore_ keys", first["metadata"])
	}
	if string(lines[1]["event_text"]) != `"not json"` || lines[1]["event"] != nil {
		t.Errorf("a body that is not JSON is kept as a string in event_text, got %s", lines[1])
	}
}
