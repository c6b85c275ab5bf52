package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSinkCountsEventsAndRepeats(t *testing.T) {
	s := newSink()
	srv := httptest.NewServer(s)
	defer srv.Close()

	for _, post := range []struct {
		body string
		want int
	}{
		{`{"msgid":"a-1","event_params":{"ts":240301101500}}`, http.StatusOK},
		{` [{"msgid":"a-2"},{"msgid":"a-3"}]`, http.StatusOK},
		{`{"msgid":"a-1"}`, http.StatusOK}, // a repeat
		{`{"no_id":true}`, http.StatusOK},
		{`[]`, http.StatusOK},
		{`{"msgid":"a-4"`, http.StatusBadRequest},
		{`"a string"`, http.StatusBadRequest},
		{``, http.StatusBadRequest},
	} {
		resp, err := http.Post(srv.URL, "application/json", strings.NewReader(post.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != post.want {
			t.Errorf("%q: answered %d, want %d", post.body, resp.StatusCode, post.want)
		}
	}
	st := s.stats()
	if st.Requests != 8 || st.Events != 5 || st.Distinct != 4 || st.Duplicates != 1 || st.Bad != 3 {
		t.Errorf("stats = %+v, want 8 requests, 5 events, 4 distinct, 1 repeat, 3 bad", st)
	}
	if st.First.IsZero() || st.Last.Before(st.First) {
		t.Errorf("first %v, last %v", st.First, st.Last)
	}
	s.reset()
	if st := s.stats(); st.Requests != 0 || st.Events != 0 || st.Distinct != 0 || !st.First.IsZero() {
		t.Errorf("after reset: %+v", st)
	}
}
