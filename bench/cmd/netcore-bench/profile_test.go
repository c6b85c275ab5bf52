package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// pprofServer stands in for Benthos's admin server with debug endpoints on:
// it answers a CPU profile request with the seconds asked for, as its body,
// and counts the requests.
func pprofServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		switch r.URL.Path {
		case "/debug/pprof/profile":
			_, _ = w.Write([]byte("profile of " + r.URL.Query().Get("seconds") + " s"))
		case "/cut-short":
			// Promises more than it sends, then hangs up: the copy fails.
			w.Header().Set("Content-Length", "1000")
			_, _ = w.Write([]byte("half a profile"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &asked
}

func TestStartProfileWritesBesideTheLog(t *testing.T) {
	srv, _ := pprofServer(t)
	dir := t.TempDir()
	stale := filepath.Join(dir, "burst-r2.pb.gz")
	if err := os.WriteFile(stale, []byte("an earlier run's"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &driver{profile: true}
	start := time.Now()
	wait := d.startProfile(t.Context(), &launched{adminURL: srv.URL}, filepath.Join(dir, "burst-r2.log"), 5*time.Second)
	wait()
	got, err := os.ReadFile(stale)
	if err != nil {
		t.Fatal(err)
	}
	// 5 s of load less a second at each end.
	if string(got) != "profile of 3 s" {
		t.Errorf("profile file holds %q, want the answer to a 3 s profile", got)
	}
	if waited := time.Since(start); waited < profileLead {
		t.Errorf("the profile started %v into the load, want after %v", waited, profileLead)
	}
}

func TestStartProfileOffAsksForNothing(t *testing.T) {
	srv, asked := pprofServer(t)
	dir := t.TempDir()
	d := &driver{}
	d.startProfile(t.Context(), &launched{adminURL: srv.URL}, filepath.Join(dir, "steady.log"), 3*time.Second)()
	if n := asked.Load(); n != 0 {
		t.Errorf("without -profile, %d profiles were asked for", n)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("without -profile, %d files were written", len(entries))
	}
}

func TestStartProfileSkipsALoadTooShort(t *testing.T) {
	srv, asked := pprofServer(t)
	dir := t.TempDir()
	d := &driver{profile: true}
	d.startProfile(t.Context(), &launched{adminURL: srv.URL}, filepath.Join(dir, "burst-r1.log"), 2*time.Second)()
	if n := asked.Load(); n != 0 {
		t.Errorf("a 2 s load was profiled (%d requests): the profile would outlast it", n)
	}
}

func TestFetchProfileSaysWhatFailed(t *testing.T) {
	srv, _ := pprofServer(t)
	path := filepath.Join(t.TempDir(), "x.pb.gz")
	err := fetchProfile(t.Context(), srv.URL+"/elsewhere", 1, path)
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "http.debug_endpoints") {
		t.Errorf("error %v, want the 404 and a hint at http.debug_endpoints", err)
	}
}

func TestFetchProfileLeavesNoHalfProfile(t *testing.T) {
	srv, _ := pprofServer(t)
	path := filepath.Join(t.TempDir(), "x.pb.gz")
	// fetchProfile asks adminURL + "/debug/pprof/profile?..."; a query
	// string on the base turns that path into a query of /cut-short.
	err := fetchProfile(t.Context(), srv.URL+"/cut-short?", 1, path)
	if err == nil {
		t.Fatal("a profile cut short was taken for whole")
	}
	if _, statErr := os.Stat(path); !os.IsNotExist(statErr) {
		t.Errorf("a profile cut short was left at %s (%v)", path, statErr)
	}
}
