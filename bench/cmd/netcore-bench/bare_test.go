package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/netcore-connect/netcore-connect/bench/loadgen"
)

func TestBareServerCountsEvents(t *testing.T) {
	s := &bareServer{}
	srv := httptest.NewServer(s)
	defer srv.Close()

	res, err := loadgen.Run(context.Background(), loadgen.Config{
		URL: srv.URL, Concurrency: 2, EventsPerPost: 7, Duration: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Posts == 0 || len(res.Non200) > 0 || res.Errors > 0 {
		t.Fatalf("want only 200s, got %+v", res)
	}
	if got := s.events.Load(); got != int64(res.Events) {
		t.Errorf("the server counted %d events, the senders %d", got, res.Events)
	}

	resp, err := http.Post(srv.URL, "application/x-www-form-urlencoded", strings.NewReader("data=%7Bnot+json"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("invalid JSON answered %d, want 400", resp.StatusCode)
	}
}
