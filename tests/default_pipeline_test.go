package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// addedFields are what netcore_explode adds to each event.
var addedFields = []string{"panel_name", "event_time", "event_id"}

// expectedEvent is an event of a sample and what must arrive for it.
type expectedEvent struct {
	panel     string
	fields    map[string]any
	eventTime string // "" when the event has no ts
}

// sampleEvents reads NAME.json and lists its events, with event_time worked
// out here from ts in India Standard Time.
func sampleEvents(t *testing.T, name string) []expectedEvent {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(samplesDir, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var panels map[string][]json.RawMessage
	if err := json.Unmarshal(raw, &panels); err != nil {
		t.Fatal(err)
	}
	ist := time.FixedZone("IST", 5*3600+1800)
	var out []expectedEvent
	for panel, events := range panels {
		for _, ev := range events {
			e := expectedEvent{panel: panel, fields: decodeExact(t, ev)}
			if params, ok := e.fields["event_params"].(map[string]any); ok {
				if ts, ok := params["ts"].(json.Number); ok {
					when, err := time.ParseInLocation("060102150405", ts.String(), ist)
					if err != nil {
						t.Fatal(err)
					}
					e.eventTime = when.UTC().Format(time.RFC3339)
				}
			}
			out = append(out, e)
		}
	}
	return out
}

// postSamples posts every sample exactly as Netcore does (the form bodies),
// checks each is answered 200 with its event count, and returns the events.
func postSamples(t *testing.T, p *process) []expectedEvent {
	t.Helper()
	var all []expectedEvent
	for _, name := range []string{"app_identify", "custom_activity", "sms_click", "two_panels"} {
		form, err := os.ReadFile(filepath.Join(samplesDir, name+".form"))
		if err != nil {
			t.Fatal(err)
		}
		events := sampleEvents(t, name)
		status, answer := post(t, newPost(t, p.webhook, "application/x-www-form-urlencoded", bytes.NewReader(form)))
		if status != http.StatusOK || !strings.Contains(answer, fmt.Sprintf(`"events":%d`, len(events))) {
			t.Fatalf("%s: got %d %s, want 200 with %d events", name, status, answer, len(events))
		}
		all = append(all, events...)
	}
	return all
}

// fromOtherAddress is a client whose connections come from 127.0.0.2: still
// loopback, but another address than the tests' own, for the allowlist.
func fromOtherAddress() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")},
	}).DialContext}}
}

func TestDefaultPipelineDeliversEverySampleEventOnce(t *testing.T) {
	m := newMeiro(t)
	p := startProcess(t, options{env: m.env()})
	want := postSamples(t, p)
	// The 200 says "on disk"; delivery follows.
	waitFor(t, "every event at Meiro Events", 10*time.Second, func() bool { return len(m.received()) >= len(want) })
	waitQuiet(t, p, m)
	got := m.received()
	if len(got) != len(want) {
		t.Fatalf("Meiro Events received %d events, want %d", len(got), len(want))
	}

	seenIDs := map[string]bool{}
	for _, body := range got {
		ev := decodeExact(t, body)
		id, _ := ev["event_id"].(string)
		if len(id) != 32 || seenIDs[id] {
			t.Errorf("event_id %q missing or repeated in %s", id, body)
		}
		seenIDs[id] = true
		panel, eventTime := ev["panel_name"], ev["event_time"]
		for _, f := range addedFields {
			delete(ev, f)
		}
		matched := -1
		for i, w := range want {
			if w.panel == panel && reflect.DeepEqual(w.fields, ev) {
				matched = i
				break
			}
		}
		if matched < 0 {
			t.Errorf("Meiro Events got an event that was not sent, or changed: %s", body)
			continue
		}
		if w := want[matched]; w.eventTime != "" && w.eventTime != eventTime {
			t.Errorf("%s: event_time %v, want %s (ts read in IST)", body, eventTime, w.eventTime)
		}
		want = append(want[:matched], want[matched+1:]...)
	}
	for _, w := range want {
		t.Errorf("never delivered: panel %s event %v", w.panel, w.fields)
	}
}

func TestDefaultPipelineAnswersBadPostsWithClearErrors(t *testing.T) {
	m := newMeiro(t)
	p := startProcess(t, options{env: m.env()})
	form := func(data string) string { return url.Values{"data": {data}}.Encode() }

	tests := []struct {
		name, method, contentType, body string
		status                          int
		says                            string
	}{
		{"DELETE", http.MethodDelete, "", "", 405, "POST"},
		{"invalid JSON", http.MethodPost, "application/x-www-form-urlencoded", form(`{"p":[{"a":1}`), 400, "not valid JSON"},
		{"not an object", http.MethodPost, "application/x-www-form-urlencoded", form(`[{"a":1}]`), 400, "not an object"},
		{"panel not an array", http.MethodPost, "application/x-www-form-urlencoded", form(`{"p":{"a":1}}`), 400, "not an array"},
		{"event not an object", http.MethodPost, "application/x-www-form-urlencoded", form(`{"p":["a"]}`), 400, "event 0"},
		{"missing data", http.MethodPost, "application/x-www-form-urlencoded", "payload=1", 400, "no data field"},
		{"bad percent-encoding", http.MethodPost, "application/x-www-form-urlencoded", "data=%7B%ZZ", 400, "percent-encoding"},
		{"12 MB", http.MethodPost, "application/x-www-form-urlencoded", "data=" + strings.Repeat("a", 12<<20), 413, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, p.webhook, strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if status, answer := post(t, req); status != tt.status || !strings.Contains(answer, tt.says) {
				t.Errorf("got %d %s, want %d saying %q", status, answer, tt.status, tt.says)
			}
		})
	}
	if n := len(m.received()); n != 0 {
		t.Errorf("Meiro Events received %d events from rejected posts", n)
	}
	kept, err := os.ReadFile(filepath.Join(p.dataDir, "rejected", "posts.jsonl"))
	if err != nil {
		t.Fatalf("rejected posts are not kept: %v", err)
	}
	if n := strings.Count(string(kept), "\n"); n != 6 {
		t.Errorf("%d rejected bodies kept, want the 6 bad bodies that were read", n)
	}
}

func TestDefaultPipelineAllowlist(t *testing.T) {
	m := newMeiro(t)
	// The test posts from 127.0.0.1; only 127.0.0.2 is allowed.
	env := m.env()
	env["NETCORE_ALLOWED_IPS"] = "127.0.0.2/32"
	p := startProcess(t, options{env: env})
	for _, xff := range []string{"", "127.0.0.2"} {
		req := newPost(t, p.webhook, "application/json", strings.NewReader(`{"p":[{"a":1}]}`))
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		if status, answer := post(t, req); status != http.StatusForbidden {
			t.Errorf("X-Forwarded-For %q: got %d %s, want 403", xff, status, answer)
		}
	}
	if n := len(m.received()); n != 0 {
		t.Errorf("Meiro Events received %d events from a refused sender", n)
	}
}

func TestDefaultPipelineNeedsMeiroEventsURL(t *testing.T) {
	cmd := exec.Command(binary, "run")
	cmd.Env = append(os.Environ(), "MEIRO_EVENTS_URL=")
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "MEIRO_EVENTS_URL") {
		t.Errorf("exit %v, output %s: want a failed start naming MEIRO_EVENTS_URL", err, out)
	}
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(binary, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), builtVersion) {
		t.Errorf("--version: %v %s, want %s", err, out, builtVersion)
	}
}

func TestValidateConfigPrintsEventsAndSummaries(t *testing.T) {
	p := startProcess(t, options{config: filepath.Join(repoRoot(t), "config", "netcore-validate.yaml")})
	data, err := os.ReadFile(filepath.Join(samplesDir, "two_panels.json"))
	if err != nil {
		t.Fatal(err)
	}
	body := url.Values{"data": {string(data)}}.Encode()
	if status, answer := post(t, newPost(t, p.webhook, "application/x-www-form-urlencoded", strings.NewReader(body))); status != http.StatusOK {
		t.Fatalf("got %d %s", status, answer)
	}
	waitFor(t, "three events on stdout", 5*time.Second, func() bool { return strings.Count(p.stdout.String(), "\n") >= 3 })
	for _, line := range strings.Split(strings.TrimSpace(p.stdout.String()), "\n") {
		ev := decodeExact(t, []byte(line))
		if ev["panel_name"] == nil || ev["event_id"] == nil || ev["msgid"] == nil {
			t.Errorf("stdout line is not a whole event: %s", line)
		}
	}
	// The summary is logged just after the answer is sent.
	waitFor(t, "the post's summary line", 5*time.Second, func() bool { return strings.Contains(p.stderr.String(), "status=200") })
	logs := p.stderr.String()
	for _, want := range []string{"client_ip=127.0.0.1", `panels="cart_abandon:2,email_open:1"`, "events=3", "status=200", "bytes="} {
		if !strings.Contains(logs, want) {
			t.Errorf("the post's summary line lacks %s:\n%s", want, logs)
		}
	}
}

func TestBatchedDeliverySendsArraysOfExactEvents(t *testing.T) {
	m := newMeiro(t)
	env := m.env()
	env["MEIRO_BATCH_SIZE"] = "5"
	p := startProcess(t, options{env: env})
	body, markers := markedBody("batched", 12)
	if status, err := postJSON(p.webhook, body); err != nil || status != http.StatusOK {
		t.Fatalf("post: %v %d", err, status)
	}
	count := func() (events int, arrays int) {
		for _, b := range m.received() {
			var batch []json.RawMessage
			if err := json.Unmarshal(b, &batch); err != nil {
				t.Fatalf("batched mode sent something that is not an array: %s", b)
			}
			events += len(batch)
			arrays++
		}
		return events, arrays
	}
	waitFor(t, "12 events in arrays", 10*time.Second, func() bool { n, _ := count(); return n >= len(markers) })
	events, arrays := count()
	if events != len(markers) || arrays < 3 {
		t.Errorf("%d events in %d requests, want %d in at least 3 (at most 5 each)", events, arrays, len(markers))
	}
	for _, b := range m.received() {
		if !strings.Contains(string(b), `"big":12345678901234567890`) {
			t.Errorf("numbers changed in %s", b)
		}
	}
}
