package netcore

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestInspectorKeepsTheLatestAndMasksPersonalFields(t *testing.T) {
	in := newInspector(3, true, nil, nil)
	for i := range 5 {
		post, err := DecodeData([]byte(fmt.Sprintf(`{"p%d":[{"event_params":{"identity":"a@example.com","ts":240301101500,"big":12345678901234567890},"att_params":{"MOBILE":"919800000001"}}]}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		in.add(inspectedPost{RequestID: fmt.Sprint("req", i), Status: 200, Panels: post.Panels})
	}
	latest := in.latest()
	if len(latest) != 3 || latest[0].RequestID != "req4" || latest[2].RequestID != "req2" {
		t.Fatalf("kept %v, want req4, req3, req2", latest)
	}
	get := func(path string) string {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.RemoteAddr = "127.0.0.1:5000"
		in.ServeHTTP(rec, r)
		return rec.Body.String()
	}
	page := get("/posts/req4")
	for _, leaked := range []string{"a@example.com", "919800000001"} {
		if strings.Contains(page, leaked) {
			t.Errorf("%s shown unmasked", leaked)
		}
	}
	if !strings.Contains(page, "12345678901234567890") || !strings.Contains(page, "•••") {
		t.Errorf("want the event, numbers exact, personal fields masked:\n%s", page)
	}
	if got := get("/posts/req0"); !strings.Contains(got, "no such post") {
		t.Errorf("a post pushed out is still shown: %s", got)
	}

	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "203.0.113.9:5000"
	in.ServeHTTP(rec, r)
	if rec.Code != http.StatusForbidden {
		t.Errorf("a client neither loopback nor allowlisted got %d, want 403", rec.Code)
	}
}
