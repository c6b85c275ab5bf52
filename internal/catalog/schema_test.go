package catalog

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestSchemaTakesTheEventsLearnedAndRefusesAChangedType checks the export
// with a JSON Schema validator: every event it was learned from passes, and
// one with a field of another type does not.
func TestSchemaTakesTheEventsLearnedAndRefusesAChangedType(t *testing.T) {
	c := New(Options{})
	var events [][]byte
	for i := range 20 {
		ev := usual(i)
		if i%2 == 0 {
			ev = event(`{"msgid":"m","activity_id":1,"event_params":{"ts":1},"items":[],"extra":null}`)
		}
		events = append(events, ev)
	}
	c.Learn("app push", events, "r", t0)
	p, _ := c.View().Find("app push")
	doc, err := p.Schema()
	if err != nil {
		t.Fatal(err)
	}
	sch := compile(t, doc)
	for _, ev := range events {
		if err := sch.Validate(decode(t, ev)); err != nil {
			t.Errorf("an event learned is refused: %v\n%s", err, ev)
		}
	}
	changed := event(`{"msgid":"m","activity_id":"1","event_params":{"ts":1},"items":[]}`)
	err = sch.Validate(decode(t, changed))
	if err == nil || !strings.Contains(err.Error(), "activity_id") {
		t.Errorf("an event whose activity_id is a string: %v", err)
	}
	if !strings.Contains(string(doc), `"required": [`) || !strings.Contains(string(doc), SchemaDraft) {
		t.Errorf("schema without required fields or dialect:\n%s", doc)
	}
}

func compile(t *testing.T, doc []byte) *jsonschema.Schema {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	cmp := jsonschema.NewCompiler()
	if err := cmp.AddResource("panel.json", v); err != nil {
		t.Fatal(err)
	}
	sch, err := cmp.Compile("panel.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func decode(t *testing.T, ev []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(ev))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}
