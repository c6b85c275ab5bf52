package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pprofServer stands in for Benthos's admin server with debug endpoints on:
// it answers a CPU profile request with the seconds asked for, as its body.
func pprofServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debug/pprof/profile" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("profile of " + r.URL.Query().Get("seconds") + " s"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestStartProfileWritesBesideTheLog(t *testing.T) {
	srv := pprofServer(t)
	dir := t.TempDir()
	d := &driver{profile: true}
	start := time.Now()
	wait := d.startProfile(t.Context(), &launched{adminURL: srv.URL}, filepath.Join(dir, "burst-r2.log"), 5*time.Second)
	wait()
	got, err := os.ReadFile(filepath.Join(dir, "burst-r2.pb.gz"))
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

func TestStartProfileOffDoesNothing(t *testing.T) {
	dir := t.TempDir()
	d := &driver{}
	d.startProfile(t.Context(), &launched{adminURL: "http://127.0.0.1:1"}, filepath.Join(dir, "steady.log"), time.Minute)()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("without -profile, %d files were written", len(entries))
	}
}

func TestFetchProfileSaysWhatFailed(t *testing.T) {
	srv := pprofServer(t)
	path := filepath.Join(t.TempDir(), "x.pb.gz")
	err := fetchProfile(t.Context(), srv.URL+"/elsewhere", 1, path)
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "http.debug_endpoints") {
		t.Errorf("error %v, want the 404 and a hint at http.debug_endpoints", err)
	}
	if _, statErr := os.Stat(path); !os.IsNotExist(statErr) {
		t.Errorf("a failed fetch left a file: %v", statErr)
	}
}
