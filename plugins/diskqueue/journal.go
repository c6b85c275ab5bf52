package diskqueue

import (
	"fmt"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/journal"
	"github.com/netcore-connect/netcore-connect/internal/stage"
)

// A disk_queue with retain_after_ack is a journal of the process
// (internal/journal): the nats_jetstream output, once its connection is
// back after it lost every server, and POST /journal/republish on the
// process's HTTP server tell it to hand out again what it retains; the
// output losing its connection keeps it from deleting what it retains
// until the store acknowledges again (retain.go).

// joinJournals registers d with the process's journals, and serves their
// endpoint, when d retains; otherwise there is nothing to hand out again.
func (d *diskQueue) joinJournals(res *service.Resources) error {
	d.leave = func() {}
	if !d.q.retained.enabled() {
		return nil
	}
	if err := journal.ServeOn(res); err != nil {
		return err
	}
	d.leave = journal.Default.Register(d)
	return nil
}

// Republish hands out again every record retained (queue.republish), and
// logs what it did.
func (d *diskQueue) Republish(reason string) journal.Result {
	r, err := d.q.republish()
	res := journal.Result{Journals: 1, Records: r.records, Events: r.events, Pending: r.pending}
	if err != nil {
		d.log.Errorf("Journal %s could not read its retained records to publish them again (%s): %v; they stay retained, ask again (netcore-connect journal republish) or restart", d.q.conf.path, reason, err)
		res.Failed, res.Error = 1, fmt.Sprintf("journal %s: %v", d.q.conf.path, err)
		return res
	}
	d.log.Infof("Journal %s (%s): %d retained records, %d events, handed out again; %d posts with events out go again once those settle", d.q.conf.path, reason, r.records, r.events, r.pending)
	return res
}

// NoteOutage pauses the deletion of retained records until the retention
// after the output's next acknowledgement (queue.noteOutage).
func (d *diskQueue) NoteOutage() { d.q.noteOutage(time.Now()) }

// republishedCounter counts the events handed out again, exported at 0
// from the start.
func republishedCounter(res *service.Resources) func(events int) {
	c := res.Metrics().NewCounter(stage.MetricJournalRepublished)
	c.Incr(0)
	return func(events int) { c.Incr(int64(events)) }
}
