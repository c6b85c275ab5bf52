package deadletter

import (
	"fmt"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/durabledir"
	"github.com/netcore-connect/netcore-connect/internal/fate"
	"github.com/netcore-connect/netcore-connect/internal/stage"
)

// Keeper is the one way an output keeps events as dead letters: the
// dead_letter output, meiro_http (events Meiro Events refused for good) and
// the postgres output (events that can never be rows) all keep them through
// it, so that each is written durably in the same format, counted in
// netcore_events_dead_lettered_total, logged and told to the inspector
// alike.
type Keeper struct {
	dir, prefix string
	log         *service.Logger
	count       *service.MetricCounter
}

// NewKeeper keeps dead letters in files in dir, each line with the metadata
// whose keys start with prefix.
func NewKeeper(dir, prefix string, res *service.Resources) *Keeper {
	count := res.Metrics().NewCounter(stage.MetricEventsDeadLettered)
	count.Incr(0) // exported from the start, for dashboards and alerts
	return &Keeper{dir: dir, prefix: prefix, log: res.Logger(), count: count}
}

// Prepare makes the folder, durably: each file's rename is synced in it, but
// the folder's own name must be on disk too, or a power cut takes every
// dead letter with it. An output calls it from Connect.
func (k *Keeper) Prepare() error {
	if err := durabledir.Make(k.dir); err != nil {
		return fmt.Errorf("creating the dead letter folder %s: %w", k.dir, err)
	}
	return nil
}

// Keep writes batch as a new dead letter file (WriteFile), counts and logs
// it, saying why ("refused for good"), and tells the inspector, when it is
// on, which events became dead letters, where and why. Each message's
// reason is its fallback_error metadata (see WithReason).
func (k *Keeper) Keep(batch service.MessageBatch, why string) error {
	now := time.Now().UTC()
	file, err := WriteFile(k.dir, batch, k.prefix, now)
	if err != nil {
		return err
	}
	reportFates(batch, file, now)
	k.count.Incr(int64(len(batch)))
	k.log.Warnf("%d event(s) %s, kept as dead letters in %s", len(batch), why, file)
	return nil
}

// WithReason is a copy of msg that holds reason as the cause a dead letter
// line keeps (its error field), in the fallback_error metadata where
// Benthos's fallback output puts it for the dead_letter output, and the
// status of the answer reason carries (a stage.StatusError), as data for the
// inspector.
func WithReason(msg *service.Message, reason error) *service.Message {
	c := msg.Copy()
	c.MetaSetMut(stage.MetaFallbackError, reason.Error())
	if status := stage.StatusOf(reason); status != 0 {
		c.MetaSetMut(stage.MetaDeadLetterStatus, status)
	}
	return c
}

// reportFates tells the inspector (through the fate book of the
// destination the disk queue that handed each event out delivers to, when
// it is on) which events became dead letters, where, and why.
func reportFates(batch service.MessageBatch, file string, at time.Time) {
	if !fate.Default.Enabled() {
		return
	}
	for _, msg := range batch {
		if id, ok := msg.MetaGet(stage.MetaEventID); ok {
			reason, _ := msg.MetaGet(stage.MetaFallbackError)
			status, _ := msg.MetaGetMut(stage.MetaDeadLetterStatus)
			s, _ := status.(int)
			if book := fate.Default.Of(msg.Context()); book != nil {
				book.DeadLettered(id, file, reason, s, at)
			}
		}
	}
}
