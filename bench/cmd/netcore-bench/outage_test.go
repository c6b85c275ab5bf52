package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestFindMetric(t *testing.T) {
	exposition := `# HELP netcore_queue_events_total not this one
netcore_queue_events_total 7
netcore_queue_events{label="",path="root.buffer"} 1234
netcore_queue_events 99
`
	got, err := findMetric(strings.NewReader(exposition), "netcore_queue_events")
	if err != nil || got != 1234 {
		t.Errorf("findMetric = %v, %v; want 1234", got, err)
	}
	if _, err := findMetric(strings.NewReader(exposition), "netcore_queue_bytes"); err == nil {
		t.Error("no error for a metric that is not there")
	}
}

func TestSinkDownAnswers503AndCountsNothing(t *testing.T) {
	s := newSink()
	srv := httptest.NewServer(s)
	defer srv.Close()
	s.down.Store(true)
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{"msgid":"a-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("down sink answered %d, want 503", resp.StatusCode)
	}
	if st := s.stats(); st.Requests != 0 || st.Events != 0 {
		t.Errorf("down sink counted %+v", st)
	}
}
