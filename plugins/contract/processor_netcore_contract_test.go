package contract

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/stage"
)

const pushSchema = `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
"properties":{"activity_id":{"type":"integer"}},"required":["activity_id"]}`

func newTestContract(t *testing.T, mode string, schemas map[string]string) (*contract, string) {
	t.Helper()
	dir, dead := t.TempDir(), t.TempDir()
	for name, doc := range schemas {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conf, err := contractSpec().ParseYAML(fmt.Sprintf("dir: %s\nmode: %s\ndead_letter_dir: %s\n", dir, mode, dead), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newContract(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	return c, dead
}

func eventOf(panel, body string) *service.Message {
	m := service.NewMessage([]byte(body))
	m.MetaSetMut(stage.MetaPanel, panel)
	return m
}

func process(t *testing.T, c *contract, msgs ...*service.Message) []string {
	t.Helper()
	out, err := c.ProcessBatch(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, b := range out {
		for _, m := range b {
			body, _ := m.AsBytes()
			bodies = append(bodies, string(body))
		}
	}
	return bodies
}

func TestDeliverModeDeliversEveryEvent(t *testing.T) {
	c, dead := newTestContract(t, modeDeliver, map[string]string{"app_push.json": pushSchema})
	got := process(t, c, eventOf("app_push", `{"activity_id":1}`), eventOf("app_push", `{"activity_id":"1"}`), eventOf("other", `{"x":1}`))
	if len(got) != 3 {
		t.Errorf("delivered %q, want all three", got)
	}
	if files, _ := filepath.Glob(filepath.Join(dead, "*")); len(files) != 0 {
		t.Errorf("dead letters written in deliver mode: %v", files)
	}
}

func TestEnforceModeKeepsAViolatingEventAsADeadLetter(t *testing.T) {
	c, dead := newTestContract(t, modeEnforce, map[string]string{"Push%20%2F%20Android.json": pushSchema})
	got := process(t, c, eventOf("Push / Android", `{"activity_id":1}`), eventOf("Push / Android", `{"activity_id":"1"}`))
	if len(got) != 1 || got[0] != `{"activity_id":1}` {
		t.Errorf("delivered %q, want the event that keeps the contract", got)
	}
	files, _ := filepath.Glob(filepath.Join(dead, "*"))
	if len(files) != 1 {
		t.Fatalf("dead letter files %v, want one", files)
	}
	b, _ := os.ReadFile(files[0])
	if !strings.Contains(string(b), "violates the contract Push%20%2F%20Android.json") || !strings.Contains(string(b), "/activity_id") {
		t.Errorf("the dead letter does not hold the schema's error:\n%s", b)
	}
}

func TestASchemaThatDoesNotCompileStopsTheStart(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.json"), []byte(`{"type":"nonsense"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	conf, err := contractSpec().ParseYAML("dir: "+dir+"\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newContract(conf, service.MockResources()); err == nil || !strings.Contains(err.Error(), "p.json") {
		t.Errorf("a schema that does not compile: %v, want an error naming it", err)
	}
}
