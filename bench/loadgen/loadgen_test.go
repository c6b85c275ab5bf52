package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a Netcore receiver that decodes every post and remembers
// every event id, answering 503 to every fifth post.
type recorder struct {
	mu        sync.Mutex
	posts     int
	ok        int
	okEvents  int
	ids       map[string]bool
	badBodies int
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form, err := url.ParseQuery(string(body))
	var panels map[string][]struct {
		MsgID       string `json:"msgid"`
		EventParams struct {
			TS       int64  `json:"ts"`
			Identity string `json:"identity"`
		} `json:"event_params"`
	}
	if err == nil {
		err = json.Unmarshal([]byte(form.Get("data")), &panels)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.posts++
	if err != nil || len(panels["product_search"]) == 0 || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		rec.badBodies++
		http.Error(w, "bad post", http.StatusBadRequest)
		return
	}
	if rec.posts%5 == 0 {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	rec.ok++
	for _, ev := range panels["product_search"] {
		if ev.EventParams.Identity != ev.MsgID+"@example.com" || ev.EventParams.TS != 240301101500 {
			rec.badBodies++
		}
		rec.ids[ev.MsgID] = true
		rec.okEvents++
	}
}

func TestRunCountsWhatTheServerSaw(t *testing.T) {
	rec := &recorder{ids: map[string]bool{}}
	srv := httptest.NewServer(rec)
	defer srv.Close()

	res, err := Run(context.Background(), Config{
		URL: srv.URL, Concurrency: 4, EventsPerPost: 10, Duration: 300 * time.Millisecond, Prefix: "t&1",
	})
	if err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.badBodies != 0 {
		t.Errorf("%d malformed posts or events", rec.badBodies)
	}
	if res.Posts == 0 || res.Posts != rec.ok {
		t.Errorf("Posts = %d, the server answered 200 to %d", res.Posts, rec.ok)
	}
	if res.Events != rec.okEvents || res.Events != 10*res.Posts {
		t.Errorf("Events = %d, the server saw %d in %d posts", res.Events, rec.okEvents, res.Posts)
	}
	if len(rec.ids) != rec.okEvents {
		t.Errorf("%d distinct ids among %d events: ids repeat", len(rec.ids), rec.okEvents)
	}
	if got, want := res.Non200[http.StatusServiceUnavailable], rec.posts-rec.ok; got != want || len(res.Non200) != 1 {
		t.Errorf("Non200 = %v, want %d answers 503", res.Non200, want)
	}
	if res.Errors != 0 {
		t.Errorf("Errors = %d (%s)", res.Errors, res.FirstError)
	}
	if res.P50 <= 0 || res.P99 < res.P50 || res.EventsPerSec() <= 0 || res.PostsPerSec() <= 0 {
		t.Errorf("implausible timing: %+v", res)
	}
}

func TestRunPostsEventsAloneAsJSON(t *testing.T) {
	var mu sync.Mutex
	ids := map[string]bool{}
	bad := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			MsgID string `json:"msgid"`
		}
		body, _ := io.ReadAll(r.Body)
		err := json.Unmarshal(body, &ev)
		mu.Lock()
		defer mu.Unlock()
		if err != nil || ev.MsgID == "" || r.Header.Get("Content-Type") != "application/json" {
			bad++
			http.Error(w, "not an event", http.StatusBadRequest)
			return
		}
		ids[ev.MsgID] = true
	}))
	defer srv.Close()

	res, err := Run(context.Background(), Config{
		URL: srv.URL, Concurrency: 2, EventsAlone: true, Duration: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if bad != 0 || res.Posts == 0 {
		t.Fatalf("%d requests were not a JSON event; %d answered 200", bad, res.Posts)
	}
	if res.Events != res.Posts || len(ids) != res.Posts {
		t.Errorf("Events = %d for %d requests, %d distinct ids: want one event a request", res.Events, res.Posts, len(ids))
	}
}

func TestRunCountsConnectionErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // nothing listens there any more

	res, err := Run(context.Background(), Config{URL: addr, Concurrency: 2, EventsPerPost: 1, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Posts != 0 || res.Errors == 0 || res.FirstError == "" {
		t.Errorf("want only errors, got %+v", res)
	}
	// Each failure pauses its sender, so two senders make a handful, not thousands.
	if res.Errors > 2*int(100*time.Millisecond/errorPause)+2 {
		t.Errorf("%d errors in 100ms: the senders spin", res.Errors)
	}
}

func TestBodySize(t *testing.T) {
	b := newBodyBuilder("product_search", "abc", 1, false)
	form, err := url.ParseQuery(string(b.build(1234567, 1)))
	if err != nil {
		t.Fatal(err)
	}
	var panels map[string][]json.RawMessage
	if err := json.Unmarshal([]byte(form.Get("data")), &panels); err != nil {
		t.Fatal(err)
	}
	if n := len(panels["product_search"][0]); n < 300 || n > 500 {
		t.Errorf("an event is %d bytes, want a realistic 300-500", n)
	}
}

func TestEventsWritesUniqueEventsALine(t *testing.T) {
	var out strings.Builder
	if err := Events(&out, "pre", 10, 3); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), out.String())
	}
	for i, line := range lines {
		var ev struct {
			MsgID string `json:"msgid"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %d is not a JSON event: %v", i, err)
		}
		if want := fmt.Sprintf("pre-%d", 10+i); ev.MsgID != want {
			t.Errorf("line %d: msgid %q, want %q", i, ev.MsgID, want)
		}
	}
}
