package journal

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

type fixed Result

func (f fixed) Republish(string) Result { return Result(f) }

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
