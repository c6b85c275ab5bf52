package natsjs

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/redpanda-data/benthos/v4/public/service"
)

// monitoredServer starts a NATS server with JetStream at its default sync
// and its monitoring endpoint, and returns the client and monitoring URLs.
func monitoredServer(t *testing.T) (client, monitor string) {
	t.Helper()
	s := startServer(t, server.Options{Port: -1, HTTPHost: "127.0.0.1", HTTPPort: -1, StoreDir: t.TempDir()})
	return s.ClientURL(), "http://" + s.MonitorAddr().String()
}

func newOutput(t *testing.T, yaml string) error {
	t.Helper()
	conf, err := outputSpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = newOutputFromConfig(conf, service.MockResources())
	return err
}

// A journal that keeps events for less than a server's sync_interval (the
// default, 2 minutes, read from /varz) is refused at start; one that keeps
// them longer starts; a duplicate window shorter than the retention is
// refused; a monitoring URL that does not answer is not a reason to refuse.
func TestOutputRefusesAJournalShorterThanTheServersSync(t *testing.T) {
	client, monitor := monitoredServer(t)
	for _, tc := range []struct {
		retain, window, monitor string
		refused                 string // a part of the error; "" to start
	}{
		{"2m30s", "10m", monitor, ""},
		{"1m", "10m", monitor, "syncs to disk every 2m0s"},
		{"2m", "10m", monitor, "syncs to disk every 2m0s"}, // equal: no margin
		{"2m30s", "2m", monitor, "duplicate_window 2m0s is shorter"},
		{"2m30s", "10m", "http://127.0.0.1:1", ""},
		{"0s", "10m", monitor, ""},
	} {
		err := newOutput(t, fmt.Sprintf("urls: [ %q ]\njournal_retain: %s\nduplicate_window: %s\nmonitor_urls: [ %q ]", client, tc.retain, tc.window, tc.monitor))
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("retain %s, window %s, monitor %s: refused (%v), want a start", tc.retain, tc.window, tc.monitor, err)
		case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
			t.Errorf("retain %s, window %s: got %v, want an error saying %q", tc.retain, tc.window, err, tc.refused)
		}
	}
}
