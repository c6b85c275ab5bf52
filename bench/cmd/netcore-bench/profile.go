package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// profileLead is how long into a scenario a CPU profile starts, and how long
// before its load ends the profile stops: it leaves out the start-up and
// the end.
const profileLead = time.Second

// startProfile fetches a CPU profile of ours from its admin address (Benthos
// serves pprof there with http.debug_endpoints, which launch sets with
// -profile), starting profileLead from now and lasting until profileLead
// before the scenario's load of length ends (at least a second). It writes
// the profile beside the run's log, as NAME.pb.gz for NAME.log. It returns
// at once; wait blocks until the profile is written, and reports on
// standard error what failed. Without -profile it does nothing.
func (d *driver) startProfile(ctx context.Context, sys *launched, logFile string, load time.Duration) (wait func()) {
	if !d.profile {
		return func() {}
	}
	path := strings.TrimSuffix(logFile, filepath.Ext(logFile)) + ".pb.gz"
	// A profile of an earlier run under the same name would pass for this one's.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		reportProfile(path, fmt.Errorf("removing the earlier one: %w", err))
	}
	seconds := int((load - 2*profileLead).Seconds())
	if seconds < 1 {
		reportProfile(path, fmt.Errorf("not taken: a load of %v leaves under a second between its first and last second; set -duration to 3s or more", load))
		return func() {}
	}
	done := make(chan error, 1)
	go func() {
		select {
		case <-time.After(profileLead):
		case <-ctx.Done():
			done <- ctx.Err()
			return
		}
		done <- fetchProfile(ctx, sys.adminURL, seconds, path)
	}()
	return func() { reportProfile(path, <-done) }
}

// reportProfile says on standard error why the profile at path was not
// written; the figures of the run do not depend on it.
func reportProfile(path string, err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "profile %s: %v\n", filepath.Base(path), err)
	}
}

// fetchProfile writes a CPU profile of the given seconds, taken by the
// process whose admin server is at adminURL, to path.
func fetchProfile(ctx context.Context, adminURL string, seconds int, path string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(seconds)*time.Second+30*time.Second)
	defer cancel()
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", adminURL, seconds)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("asking for the profile at %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetching the profile (did the process under test stop early? its log says): %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("fetching the profile: %s answered %d (is http.debug_endpoints on?): %s",
			url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing the profile: %w", err)
	}
	_, err = io.Copy(f, resp.Body)
	if err = errors.Join(err, f.Close()); err != nil {
		os.Remove(path) // half a profile does not read
		return fmt.Errorf("writing the profile: %w", err)
	}
	return nil
}
