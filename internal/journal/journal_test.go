package journal

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type fixed Result

func (f fixed) Republish(string) Result { return Result(f) }
func (fixed) NoteOutage()               {}

// outages counts the outages it was told of.
type outages struct {
	fixed
	n *int
}

func (o outages) NoteOutage() { *o.n++ }

// The endpoint adds up what every journal registered handed out, answers
// only POST, and says 404 where no journal is registered (the wrong
// instance).
func TestTheEndpointAddsUpTheJournals(t *testing.T) {
	h := &Hub{}
	srv := httptest.NewServer(Handler(h))
	defer srv.Close()
	post := func() *http.Response {
		t.Helper()
		resp, err := http.Post(srv.URL, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if resp := post(); resp.StatusCode != http.StatusNotFound {
		t.Errorf("no journal: %s, want 404", resp.Status)
	}
	leave := h.Register(fixed{Journals: 1, Records: 2, Events: 20, Pending: 1})
	h.Register(fixed{Journals: 1, Records: 3, Events: 30})
	resp := post()
	var got Result
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s, %v", resp.Status, err)
	}
	if want := (Result{Journals: 2, Records: 5, Events: 50, Pending: 1}); got != want {
		t.Errorf("answered %+v, want %+v", got, want)
	}
	leave()
	if got := h.Republish("test"); got.Journals != 1 {
		t.Errorf("%d journals after one left, want 1", got.Journals)
	}
	get, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	get.Body.Close()
	if get.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %s, want 405", get.Status)
	}
}

// A journal that could not read what it retains makes the endpoint answer
// 500, saying why and what to do, with what the others handed out: never a
// 200 for a tail that was not published again.
func TestTheEndpointAnswers500WhenAJournalFailed(t *testing.T) {
	h := &Hub{}
	srv := httptest.NewServer(Handler(h))
	defer srv.Close()
	h.Register(fixed{Journals: 1, Records: 2, Events: 20})
	h.Register(fixed{Journals: 1, Failed: 1, Error: "journal /data/q.db: disk I/O error"})
	resp, err := http.Post(srv.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("a journal failed: %s, want 500", resp.Status)
	}
	for _, want := range []string{"1 of 2 journals", "disk I/O error", "ask again", "20 events"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the answer %q does not say %q", body, want)
		}
	}
}

// Every journal registered hears of an outage, and none that left.
func TestAnOutageReachesEveryJournal(t *testing.T) {
	h := &Hub{}
	var a, b int
	h.Register(outages{fixed{Journals: 1}, &a})
	leave := h.Register(outages{fixed{Journals: 1}, &b})
	h.NoteOutage()
	leave()
	h.NoteOutage()
	if a != 2 || b != 1 {
		t.Errorf("the journals heard of %d and %d outages, want 2 and 1", a, b)
	}
}
