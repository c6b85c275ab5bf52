package diskqueue

import (
	"strings"
	"testing"
)

// Ids are remembered to the second, so a window under a second is refused
// with what to set instead; 0s (off) and whole seconds are taken.
func TestDedupeWindowIsOffOrAtLeastASecond(t *testing.T) {
	for window, wantErr := range map[string]bool{"0s": false, "1s": false, "10m": false, "500ms": true, "999ms": true} {
		conf, err := diskQueueSpec().ParseYAML("path: ./q.db\ndedupe_window: "+window, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = queueConfigFromParsed(conf)
		if wantErr && (err == nil || !strings.Contains(err.Error(), "set at least 1s, or 0s")) {
			t.Errorf("dedupe_window %s: %v, want it refused with what to set", window, err)
		}
		if !wantErr && err != nil {
			t.Errorf("dedupe_window %s: %v, want it taken", window, err)
		}
	}
}
