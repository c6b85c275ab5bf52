package netcore

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
	"github.com/netcore-connect/netcore-connect/internal/testing/testkit"

	"github.com/redpanda-data/benthos/v4/public/service"
)

func newTestExplode(t *testing.T, yaml string) *explodeProcessor {
	t.Helper()
	conf, err := explodeProcessorSpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatalf("parsing config: %v", err)
	}
	p, err := newExplodeProcessorFromConfig(conf)
	if err != nil {
		t.Fatalf("creating processor: %v", err)
	}
	return p
}

func explode(t *testing.T, p *explodeProcessor, msg *service.Message) service.MessageBatch {
	t.Helper()
	batch, err := p.Process(context.Background(), msg)
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	return batch
}

func meta(m *service.Message, key string) string {
	v, _ := m.MetaGet(key)
	return v
}

func TestExplodeSplitsPanelsInOrder(t *testing.T) {
	p := newTestExplode(t, ``)
	data := `{"cart": [{"msgid":"1","event_params":{"ts":240302090000}}, {"msgid":"2"}],
	          "email": [{"msgid":"3"}], "empty": []}`
	batch := explode(t, p, service.NewMessage([]byte(data)))

	want := []struct{ panel, msgid, index string }{{"cart", `"1"`, "0"}, {"cart", `"2"`, "1"}, {"email", `"3"`, "0"}}
	if len(batch) != len(want) {
		t.Fatalf("got %d events, want %d", len(batch), len(want))
	}
	for i, w := range want {
		var ev map[string]json.RawMessage
		if err := json.Unmarshal([]byte(testkit.MessageBody(t, batch[i])), &ev); err != nil {
			t.Fatalf("event %d is not JSON: %v", i, err)
		}
		if string(ev["msgid"]) != w.msgid || string(ev["panel_name"]) != `"`+w.panel+`"` {
			t.Errorf("event %d: msgid %s panel %s, want %s %s", i, ev["msgid"], ev["panel_name"], w.msgid, w.panel)
		}
		if got := meta(batch[i], "netcore_panel"); got != w.panel {
			t.Errorf("event %d: netcore_panel %q, want %q", i, got, w.panel)
		}
		if got := meta(batch[i], "netcore_event_index"); got != w.index {
			t.Errorf("event %d: netcore_event_index %q, want %q", i, got, w.index)
		}
		if id := meta(batch[i], "netcore_event_id"); string(ev["event_id"]) != `"`+id+`"` || len(id) != 32 {
			t.Errorf("event %d: event_id %s does not match metadata %q", i, ev["event_id"], id)
		}
	}
}

func TestExplodeKeepsEventBytesExactly(t *testing.T) {
	p := newTestExplode(t, `event_time_field: ""
event_id_field: ""
panel_field: ""`)
	// Numbers that float64 would change, unicode, escapes and nesting.
	event := `{"id":12345678901234567890123,"price":45999.50,"tiny":1.000000000000000000001,"neg":-0.0e+10,` +
		`"name":"Pune&Nashik \u0041 \"q\" \\ ✓ नमस्ते","nested":{"a":[1,{"b":null}],"t":true}}`
	batch := explode(t, p, service.NewMessage([]byte(`{"p":[`+event+`]}`)))
	if got := testkit.MessageBody(t, batch[0]); got != event {
		t.Errorf("event changed:\n got %s\nwant %s", got, event)
	}
}

func TestExplodeRemovesOnlyInsignificantSpace(t *testing.T) {
	p := newTestExplode(t, `event_time_field: ""
event_id_field: ""`)
	batch := explode(t, p, service.NewMessage([]byte("{\"p\" : [ {\n  \"a\" : \"x  y\" ,\n  \"b\" : [ 1 , 2 ]\n} ]}")))
	if got, want := testkit.MessageBody(t, batch[0]), `{"a":"x  y","b":[1,2],"panel_name":"p"}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestExplodeEventTime(t *testing.T) {
	received := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name, zone, params string
		want, source       string
	}{
		{"number in IST", "", `{"ts":230715184501}`, "2023-07-15T13:15:01Z", "ts"},
		{"string in IST", "", `{"ts":"240301101500"}`, "2024-03-01T04:45:00Z", "ts"},
		{"other zone", "UTC", `{"ts":240301101500}`, "2024-03-01T10:15:00Z", "ts"},
		{"zone with daylight saving", "Europe/Prague", `{"ts":240701120000}`, "2024-07-01T10:00:00Z", "ts"},
		{"missing ts", "", `{"identity":"x"}`, "2026-11-27T10:00:00Z", "received_at"},
		{"no event_params", "", ``, "2026-11-27T10:00:00Z", "received_at"},
		{"event_params not an object", "", `"x"`, "2026-11-27T10:00:00Z", "received_at"},
		{"too short", "", `{"ts":2403011015}`, "2026-11-27T10:00:00Z", "received_at"},
		{"decimal", "", `{"ts":240301101500.5}`, "2026-11-27T10:00:00Z", "received_at"},
		{"month 13", "", `{"ts":241301101500}`, "2026-11-27T10:00:00Z", "received_at"},
		{"null", "", `{"ts":null}`, "2026-11-27T10:00:00Z", "received_at"},
		{"negative", "", `{"ts":-40301101500}`, "2026-11-27T10:00:00Z", "received_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := ``
			if tt.zone != "" {
				conf = "timezone: " + tt.zone
			}
			p := newTestExplode(t, conf)
			event := `{"msgid":"1"}`
			if tt.params != "" {
				event = `{"msgid":"1","event_params":` + tt.params + `}`
			}
			msg := service.NewMessage([]byte(`{"p":[` + event + `]}`))
			msg.MetaSetMut("netcore_received_at", received.Format(time.RFC3339Nano))
			batch := explode(t, p, msg)
			var ev struct {
				EventTime string `json:"event_time"`
			}
			if err := json.Unmarshal([]byte(testkit.MessageBody(t, batch[0])), &ev); err != nil {
				t.Fatal(err)
			}
			if ev.EventTime != tt.want {
				t.Errorf("event_time %q, want %q", ev.EventTime, tt.want)
			}
			if got := meta(batch[0], "netcore_event_time_source"); got != tt.source {
				t.Errorf("netcore_event_time_source %q, want %q", got, tt.source)
			}
		})
	}
}

func TestExplodeNeverOverwritesOriginalFields(t *testing.T) {
	p := newTestExplode(t, ``)
	event := `{"panel_name":"mine","event_time":"then","event_id":7}`
	batch := explode(t, p, service.NewMessage([]byte(`{"p":[`+event+`]}`)))
	if got := testkit.MessageBody(t, batch[0]); got != event {
		t.Errorf("got %s, want the event untouched: %s", got, event)
	}
	if meta(batch[0], "netcore_event_id") == "" {
		t.Error("netcore_event_id metadata is still expected")
	}
}

func TestExplodeFieldNames(t *testing.T) {
	p := newTestExplode(t, `panel_field: journey
event_time_field: ""
event_id_field: "id \"x\""`)
	batch := explode(t, p, service.NewMessage([]byte(`{"p":[{}]}`)))
	var ev map[string]string
	if err := json.Unmarshal([]byte(testkit.MessageBody(t, batch[0])), &ev); err != nil {
		t.Fatalf("%s: %v", testkit.MessageBody(t, batch[0]), err)
	}
	if len(ev) != 2 || ev["journey"] != "p" || ev[`id "x"`] == "" {
		t.Errorf("got %v, want journey and the renamed id only", ev)
	}
}

func TestExplodeEventIDIsStable(t *testing.T) {
	p := newTestExplode(t, ``)
	ids := func(data string) []string {
		var out []string
		for _, m := range explode(t, p, service.NewMessage([]byte(data))) {
			out = append(out, meta(m, "netcore_event_id"))
		}
		return out
	}
	first := ids(`{"a":[{"x":1},{"x":2}],"b":[{"x":1}]}`)
	again := ids("{\"a\": [ {\"x\": 1}, {\"x\":2} ], \"b\":[{\"x\":1}]}")
	if strings.Join(first, ",") != strings.Join(again, ",") {
		t.Errorf("a re-sent post changed ids: %v then %v", first, again)
	}
	if first[0] == first[1] || first[0] == first[2] {
		t.Errorf("different events (or panels) share an id: %v", first)
	}
}

func TestExplodeReusesTheInputsDecodedPost(t *testing.T) {
	p := newTestExplode(t, ``)
	data := []byte(`{"p":[{"x":1}]}`)
	post, err := netcorepost.DecodeData(data)
	if err != nil {
		t.Fatal(err)
	}
	// A decoded post that disagrees with the body proves which one is read.
	post.Panels[0].Name = "from-context"
	msg := netcorepost.WithPost(service.NewMessage(data), post)
	if got := meta(explode(t, p, msg)[0], "netcore_panel"); got != "from-context" {
		t.Errorf("panel %q: the decoded post was not reused", got)
	}
	msg.SetBytes([]byte(`{"q":[{"x":1}]}`))
	if got := meta(explode(t, p, msg)[0], "netcore_panel"); got != "q" {
		t.Errorf("panel %q: a changed body must be decoded again", got)
	}
}

func TestExplodeRejectsWhatIsNotAPost(t *testing.T) {
	p := newTestExplode(t, ``)
	for _, body := range []string{`[1]`, `{"p":{}}`, `{"p":[1]}`, `{"p":[`} {
		if _, err := p.Process(context.Background(), service.NewMessage([]byte(body))); err == nil {
			t.Errorf("%s: no error", body)
		}
	}
}

func TestExplodeKeepsPostMetadata(t *testing.T) {
	p := newTestExplode(t, ``)
	msg := service.NewMessage([]byte(`{"p":[{},{}]}`))
	msg.MetaSetMut("netcore_request_id", "abc")
	for _, m := range explode(t, p, msg) {
		if meta(m, "netcore_request_id") != "abc" {
			t.Error("netcore_request_id lost")
		}
	}
}

func TestExplodeRejectsUnknownTimezone(t *testing.T) {
	conf, err := explodeProcessorSpec().ParseYAML(`timezone: Mars/Olympus`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newExplodeProcessorFromConfig(conf); err == nil || !strings.Contains(err.Error(), "Mars/Olympus") {
		t.Errorf("error %v, want one naming the zone", err)
	}
}
