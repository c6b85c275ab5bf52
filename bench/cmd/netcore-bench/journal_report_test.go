package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A journal run that acknowledged posts but did not get their events into
// the stream fails its goal instead of counting its acked rate, and the
// report shows why, with the journal's own figures.
func TestAJournalThatDidNotPublishFailsItsGoal(t *testing.T) {
	burst := record{System: "burst", Concurrency: 64, AckEventsPerSec: 70_000}
	published := journalRun{record: record{System: "journal", Concurrency: 64, AckEventsPerSec: 63_000, AckPostsPerSec: 6_300,
		CPUSecondsPer1kEvents: 0.018}, PublishedPerSec: 15_000, DrainPerSec: 45_000}
	stuck := published
	stuck.DrainPerSec = 0
	stuck.Err = "the stream held 0 of the 315,000 events answered 200 3m0s after the load"
	runs := []goalRun{{Run: 1, Burst: burst, Journal: published}, {Run: 2, Burst: burst, Journal: stuck}}
	var md strings.Builder
	writeGoalMarkdown(&md, goalReport{Runs: runs, Goals: judgeGoals(runs)})
	wantLines(t, md.String(),
		"the default pipeline | ≥ 0.8 | 0.45× | 0.90×, n/a | no, 1 of 2 runs |",
		"| 2 | journal | 64 | 63,000 |",
		"| 18 during the load (publishing mostly after it) |",
		"| 1 | 63,000 | 6,300 | 15,000 | 45,000 | 18 |",
		"| 2 | 63,000 | 6,300 | 15,000 | failed (see the notes) | 18 |",
		"- run 2, journal at 64 senders: error: the stream held 0 of the 315,000 events",
	)
}

// The drain ends when the stream holds every event answered 200, and is an
// error when it does not within the timeout.
func TestJournalDrainFailsWhenTheStreamLacksEvents(t *testing.T) {
	ns, err := startJetStream(filepath.Join(t.TempDir(), "js"))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	d := &driver{drainTimeout: 200 * time.Millisecond}
	if _, err := d.journalDrain(context.Background(), ns, 0, 0, time.Now()); err != nil {
		t.Errorf("nothing to wait for: %v", err)
	}
	_, err = d.journalDrain(context.Background(), ns, 0, 10, time.Now())
	if err == nil || !strings.Contains(err.Error(), "held 0 of the 10 events answered 200") {
		t.Errorf("got %v; want the events the stream lacked", err)
	}
}
