package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sampleEvent is the first event of a sample's first panel, compact, with
// its panel's name.
func sampleEvent(t *testing.T, name string) (panel string, event []byte) {
	t.Helper()
	var panels map[string][]json.RawMessage
	if err := json.Unmarshal(readFile(t, samplesDir+"/"+name+".json"), &panels); err != nil {
		t.Fatal(err)
	}
	for p, events := range panels {
		var compact bytes.Buffer
		if err := json.Compact(&compact, events[0]); err != nil {
			t.Fatal(err)
		}
		return p, compact.Bytes()
	}
	t.Fatalf("sample %s has no panel", name)
	return "", nil
}

// postForm posts body as a form and checks it is answered 200 with events.
func postForm(t *testing.T, p *process, body string, events int) {
	t.Helper()
	status, answer := post(t, newPost(t, p.webhook, "application/x-www-form-urlencoded", strings.NewReader(body)))
	if status != http.StatusOK || !strings.Contains(answer, fmt.Sprintf(`"events":%d`, events)) {
		t.Fatalf("posting %.120s: got %d %s, want 200 with %d events", body, status, answer, events)
	}
}

// withoutAddedFields is a delivered event as it was sent: the fields the
// explode adds taken out.
func withoutAddedFields(t *testing.T, body []byte) map[string]any {
	t.Helper()
	ev := decodeExact(t, body)
	for _, f := range addedFields {
		delete(ev, f)
	}
	return ev
}

// TestIdenticalEventsOfOnePostAreEachDelivered posts the sms_click sample's
// event three times in one post, as three real clicks without ts or msgid
// look: each is delivered, with an id of its own, the first copy's id
// still the hash of panel and event that ids stored before had. The same
// post sent again is a resend: all three are removed as repeats.
func TestIdenticalEventsOfOnePostAreEachDelivered(t *testing.T) {
	m := newMeiro(t)
	p := startProcess(t, options{env: m.env()})
	panel, event := sampleEvent(t, "sms_click")
	data := fmt.Sprintf(`{%q:[%s,%s,%s]}`, panel, event, event, event)
	body := url.Values{"data": {data}}.Encode()

	postForm(t, p, body, 3)
	waitFor(t, "events at Meiro Events", 10*time.Second, func() bool { return m.receivedCount() >= 1 })
	waitQuiet(t, p, m) // then a missing copy shows as a count, not a timeout
	got := m.received()
	if len(got) != 3 {
		t.Fatalf("Meiro Events received %d events of a post of 3 identical ones, want 3", len(got))
	}
	// The id events have had since the first release: the first 16 bytes
	// of sha256(panel, NUL, compact event), in hex. A resend across an
	// upgrade must still match it.
	sum := sha256.Sum256(append([]byte(panel+"\x00"), event...))
	firstID := hex.EncodeToString(sum[:16])
	ids := map[string]bool{}
	want := decodeExact(t, event)
	for _, b := range got {
		id, _ := decodeExact(t, b)["event_id"].(string)
		if len(id) != 32 || ids[id] {
			t.Errorf("event_id %q missing or the same as another copy's: %s", id, b)
		}
		ids[id] = true
		if ev := withoutAddedFields(t, b); !reflect.DeepEqual(ev, want) {
			t.Errorf("delivered %s, want the sample event %s", b, event)
		}
	}
	if !ids[firstID] {
		t.Errorf("no copy has the id the event had before (%s): got %v", firstID, ids)
	}

	postForm(t, p, body, 3) // Netcore sends the same post again
	waitFor(t, "the resent post's events counted as repeats", 10*time.Second, func() bool {
		return sumMetric(scrape(t, p), "netcore_events_deduplicated_total", "") == 3
	})
	waitQuiet(t, p, m)
	if n := m.receivedCount(); n != 3 {
		t.Errorf("after the post was sent again Meiro Events has %d events, want still 3", n)
	}
}

// TestUnencodedFormValuesArriveByteForByte posts data fields a sender
// forgot to percent-encode (a raw '{' starts them): every byte of the JSON
// arrives as written, '+' and '%' included, with or without a raw '&'
// elsewhere, and with other fields after it. Properly encoded posts are
// decoded as forms: '+' is a space, %2B a plus.
func TestUnencodedFormValuesArriveByteForByte(t *testing.T) {
	m := newMeiro(t)
	p := startProcess(t, options{env: m.env()})
	const contact = `"mobile":"+919800000001","email":"a+b@example.com","note":"50%25 off%20today %2B more"`
	tests := []struct {
		marker, body, want string
	}{
		{"raw", `data={"sms_clicks":[{"marker":"raw",` + contact + `}]}`, `{"marker":"raw",` + contact + `}`},
		{"raw-amp", `data={"sms_clicks":[{"marker":"raw-amp",` + contact + `,"city":"Thane&Kalyan"}]}`,
			`{"marker":"raw-amp",` + contact + `,"city":"Thane&Kalyan"}`},
		{"raw-then-field", `data={"sms_clicks":[{"marker":"raw-then-field",` + contact + `}]}&source=journey`,
			`{"marker":"raw-then-field",` + contact + `}`},
		{"raw-newline", "data={\"sms_clicks\":[{\"marker\":\"raw-newline\"," + contact + "}]}\n",
			`{"marker":"raw-newline",` + contact + `}`},
		{"encoded", url.Values{"data": {`{"sms_clicks":[{"marker":"encoded",` + contact + `}]}`}}.Encode(),
			`{"marker":"encoded",` + contact + `}`},
		{"encoded-plus-is-space", "data=" + strings.NewReplacer("{", "%7B", "}", "%7D", `"`, "%22", ":", "%3A", ",", "%2C").
			Replace(`{"sms_clicks":[{"marker":"encoded-plus-is-space","note":"a+b%2Bc"}]}`),
			`{"marker":"encoded-plus-is-space","note":"a b+c"}`},
	}
	for _, tt := range tests {
		postForm(t, p, tt.body, 1)
	}
	waitFor(t, "every event at Meiro Events", 10*time.Second, func() bool { return m.receivedCount() >= len(tests) })
	waitQuiet(t, p, m)
	got := map[string]map[string]any{}
	for _, b := range m.received() {
		ev := withoutAddedFields(t, b)
		got[fmt.Sprint(ev["marker"])] = ev
	}
	for _, tt := range tests {
		if ev := got[tt.marker]; !reflect.DeepEqual(ev, decodeExact(t, []byte(tt.want))) {
			t.Errorf("%s: posted %s\ndelivered %v\nwant      %s", tt.marker, tt.body, ev, tt.want)
		}
	}
}

// TestRepeatsTurnedOffDeliverEveryPost is the switch of docs/delivery.md for senders
// whose events carry no time or id: with dedupe_window 0s the same click
// posted twice is delivered twice, with the same event_id.
func TestRepeatsTurnedOffDeliverEveryPost(t *testing.T) {
	m := newMeiro(t)
	p := startProcess(t, options{env: m.env(), set: []string{"buffer.disk_queue.dedupe_window=0s"}})
	form := string(readFile(t, samplesDir+"/sms_click.form"))
	postForm(t, p, form, 1)
	postForm(t, p, form, 1)
	waitFor(t, "events at Meiro Events", 10*time.Second, func() bool { return m.receivedCount() >= 1 })
	waitQuiet(t, p, m)
	got := m.received()
	if len(got) != 2 {
		t.Fatalf("Meiro Events received %d events of two posts of one click, want 2", len(got))
	}
	if a, b := decodeExact(t, got[0])["event_id"], decodeExact(t, got[1])["event_id"]; a != b {
		t.Errorf("the same click twice has ids %v and %v, want the same", a, b)
	}
}
