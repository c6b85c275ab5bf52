package natsjs

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/stage"
)

const (
	ijFieldDedupeWindow   = "dedupe_window"
	ijFieldDedupeMaxBytes = "dedupe_max_bytes"
	dedupeMaxBytesDefault = 64 << 20
)

func repeatFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewDurationField(ijFieldDedupeWindow).
			Description("An event that comes again within this time of its delivery (its `netcore_event_id`, or else its `Nats-Msg-Id`, delivered by this instance or another with the same `durable`) is acknowledged to the stream and not delivered again, and counted in `netcore_repeats_dropped_total`. A power cut of the whole cluster loses what the stream stored since its last sync, delivered or not; the ingest journals publish it again, and this keeps what was already delivered from being delivered twice. An id counts only once its event was accepted by the output (delivered or kept as a dead letter): a failed event's retries always go. The deliverers share ids on the core NATS subjects `_netcore.delivered.>`: their user must be allowed to publish and subscribe there, or the input does not connect and says so. A deliverer that starts again remembers nothing. `0s` turns it off.").
			Default("10m"),
		service.NewIntField(ijFieldDedupeMaxBytes).
			Description(fmt.Sprintf("Memory for the ids of `dedupe_window`, in bytes (%d bytes an id at most: the default holds %d ids). Past it the oldest ids are forgotten first, counted in `netcore_delivered_ids_evicted_total` and logged: repeats are then removed within a shorter time than `dedupe_window`. The ids other deliverers share wait to be remembered in at most %d MiB more; a deliverer too slow to take them in drops the rest (logged), which costs only repeats delivered again, never an event.", bytesPerDeliveredID, dedupeMaxBytesDefault/bytesPerDeliveredID, peerIDsPendingBytes>>20)).
			Default(dedupeMaxBytesDefault),
	}
}

// deliveredSubjectPrefix starts the core NATS subject on which the
// deliverers of one stream and durable share the ids they delivered. Not a
// JetStream subject: it must not fall within the stream's (which would
// store it), and a stream would lose its tail in the same power cut.
const deliveredSubjectPrefix = "_netcore.delivered."

// Sharing waits this long, or for this many bytes of ids, so that a busy
// deliverer publishes a few messages a second rather than one per event.
// Repeats come minutes after the delivery (after a cut and the restart of
// the cluster), so the wait costs nothing.
const (
	shareWait     = 100 * time.Millisecond
	shareMaxBytes = 1024 * len(idKey{})
	reportEvery   = 10 * time.Second
)

// peerIDsPendingBytes bounds the peers' ids received and not yet
// remembered, instead of nats.go's 64 MB a subscription: remembering an id
// takes well under a microsecond, so only a deliverer starved of CPU falls
// behind, and 4 MiB (262144 ids) is seconds of a busy cluster's
// deliveries. Past it nats.go drops messages: repeats, never events.
const peerIDsPendingBytes = 4 << 20

// allowSharing is what a deliverer whose user may not share ids is told.
const allowSharing = "allow publish and subscribe on " + deliveredSubjectPrefix + "> for this user, or set " + ijFieldDedupeWindow + ": 0s"

// repeatFilter drops events that were delivered within the window: it
// remembers each event the output accepted, shares its id with the other
// deliverers, and checks each event received against what it and they
// delivered. A nil filter (dedupe_window 0s) drops nothing.
type repeatFilter struct {
	ids     *deliveredIDs
	subject string
	log     *service.Logger
	dropped *service.MetricCounter
	evicted *service.MetricCounter

	mu          sync.Mutex
	nc          *nats.Conn
	sub         *nats.Subscription
	unshared    []byte // keys delivered here since the last share
	sharing     *time.Timer
	shareQueued bool // a share is started and has not yet taken unshared
	droppedN    int  // since the last report
	evictedN    int
	reportTimer *time.Timer
}

func newRepeatFilter(conf *service.ParsedConfig, res *service.Resources, stream, durable string) (*repeatFilter, error) {
	window, err := conf.FieldDuration(ijFieldDedupeWindow)
	if err != nil {
		return nil, err
	}
	maxBytes, err := conf.FieldInt(ijFieldDedupeMaxBytes)
	if err != nil {
		return nil, err
	}
	switch {
	case window < 0:
		return nil, fmt.Errorf("%s is %s: set a positive duration, or 0s to deliver every repeat", ijFieldDedupeWindow, window)
	case window == 0:
		return nil, nil
	case maxBytes < 1<<20:
		return nil, fmt.Errorf("%s is %d: set at least 1 MiB (1048576), or %s 0s to keep no ids", ijFieldDedupeMaxBytes, maxBytes, ijFieldDedupeWindow)
	}
	return &repeatFilter{
		ids:     newDeliveredIDs(window, maxBytes),
		subject: deliveredSubjectPrefix + stream + "." + durable,
		log:     res.Logger(),
		dropped: res.Metrics().NewCounter(stage.MetricRepeatsDropped),
		evicted: res.Metrics().NewCounter(stage.MetricDeliveredIDsEvicted),
	}, nil
}

// attach starts sharing on nc: the peers' ids come in, this instance's go
// out.
func (f *repeatFilter) attach(nc *nats.Conn) error {
	if f == nil {
		return nil
	}
	sub, err := nc.Subscribe(f.subject, f.fromPeer)
	if err == nil {
		err = sub.SetPendingLimits(-1, peerIDsPendingBytes)
	}
	if err == nil {
		err = refused(nc, f.subject)
	}
	if err != nil {
		if sub != nil {
			_ = sub.Unsubscribe()
		}
		err = fmt.Errorf("subscribing to %s for the ids other deliverers delivered: %w", f.subject, err)
		if errors.Is(err, nats.ErrPermissionViolation) {
			err = fmt.Errorf("%w; %s", err, allowSharing)
		}
		return err
	}
	f.mu.Lock()
	f.nc, f.sub = nc, sub
	f.mu.Unlock()
	return nil
}

// refused says why the server refused the subscription to subject, if it
// did: it says so only in an asynchronous error, which a round trip after
// the subscription brings back first.
func refused(nc *nats.Conn, subject string) error {
	if err := nc.FlushTimeout(10 * time.Second); err != nil {
		return err
	}
	if err := nc.LastError(); errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), subject) {
		return err
	}
	return nil
}

// detach shares what is left and stops, before nc is closed.
func (f *repeatFilter) detach() {
	if f == nil {
		return
	}
	f.share()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sub != nil {
		_ = f.sub.Unsubscribe()
	}
	f.nc, f.sub = nil, nil
}

// keyOf is the key of m's event id, if the filter is on and m has one.
func (f *repeatFilter) keyOf(m jetstream.Msg) (idKey, bool) {
	if f == nil {
		return idKey{}, false
	}
	h := m.Headers()
	id := h.Get(stage.MetaEventID)
	if id == "" {
		id = h.Get(jetstream.MsgIDHeader)
	}
	if id == "" {
		return idKey{}, false
	}
	return keyOfID(id), true
}

// dropRepeat acknowledges m to the stream and says true if its event was
// delivered within the window. An ack that is lost brings it back after
// ack_wait, to be dropped again.
func (f *repeatFilter) dropRepeat(m jetstream.Msg, k idKey) bool {
	if !f.ids.has(k, time.Now()) {
		return false
	}
	if err := m.Ack(); err != nil {
		f.log.Debugf("Acknowledging a repeat: %v", err)
	}
	f.dropped.Incr(1)
	f.mu.Lock()
	f.droppedN++
	f.scheduleReportLocked()
	f.mu.Unlock()
	return true
}

// delivered remembers k, whose event the output accepted, and shares it.
func (f *repeatFilter) delivered(k idKey) {
	f.remember(f.ids.add(time.Now(), k))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unshared = append(f.unshared, k[:]...)
	switch {
	case len(f.unshared) >= shareMaxBytes:
		// One share at a time takes all: a goroutine for each event
		// delivered until it runs would take none.
		if !f.shareQueued {
			f.shareQueued = true
			go f.share()
		}
	case f.sharing == nil:
		f.sharing = time.AfterFunc(shareWait, f.share)
	}
}

// share publishes the ids delivered here since the last time. A publish
// that fails (no connection for long) costs only repeats at peers; one
// that fails because the input closed meanwhile is no news.
func (f *repeatFilter) share() {
	f.mu.Lock()
	data, nc := f.unshared, f.nc
	f.unshared, f.shareQueued = nil, false
	if f.sharing != nil {
		f.sharing.Stop()
		f.sharing = nil
	}
	f.mu.Unlock()
	if len(data) == 0 || nc == nil {
		return
	}
	if err := nc.Publish(f.subject, data); err != nil && !f.detached() {
		f.log.Warnf("Sharing %d delivered ids with the other deliverers: %v; they may deliver those events again if the stream stores them again", len(data)/len(idKey{}), err)
	}
}

func (f *repeatFilter) detached() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nc == nil
}

// fromPeer remembers the ids another deliverer (or this one) delivered.
func (f *repeatFilter) fromPeer(msg *nats.Msg) {
	size := len(idKey{})
	if len(msg.Data)%size != 0 {
		f.log.Warnf("Ignoring a message of %d bytes on %s: not delivered ids (16 bytes each); is another program publishing there?", len(msg.Data), f.subject)
		return
	}
	keys := make([]idKey, 0, len(msg.Data)/size)
	for off := 0; off < len(msg.Data); off += size {
		keys = append(keys, idKey(msg.Data[off:off+size]))
	}
	f.remember(f.ids.add(time.Now(), keys...))
}

// remember counts ids forgotten before their window.
func (f *repeatFilter) remember(evicted int) {
	if evicted == 0 {
		return
	}
	f.evicted.Incr(int64(evicted))
	f.mu.Lock()
	f.evictedN += evicted
	f.scheduleReportLocked()
	f.mu.Unlock()
}

func (f *repeatFilter) scheduleReportLocked() {
	if f.reportTimer == nil {
		f.reportTimer = time.AfterFunc(reportEvery, f.report)
	}
}

// report logs what was dropped and forgotten early since the last report:
// once per reportEvery at most, and always after the last.
func (f *repeatFilter) report() {
	f.mu.Lock()
	dropped, evicted := f.droppedN, f.evictedN
	f.droppedN, f.evictedN, f.reportTimer = 0, 0, nil
	f.mu.Unlock()
	if dropped > 0 {
		f.log.Infof("Dropped %d repeats of events delivered within %s (acknowledged to the stream, not delivered again)", dropped, f.ids.window)
	}
	if evicted > 0 {
		n, oldest := f.ids.held()
		f.log.Warnf("Forgot %d delivered ids before %s was up, to stay within %s: the %d held go back %s, repeats of events delivered before that are delivered again; raise it for the full window",
			evicted, ijFieldDedupeWindow, ijFieldDedupeMaxBytes, n, time.Since(oldest).Round(time.Second))
	}
}
