package natsjs

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/redpanda-data/benthos/v4/public/service"
)

// repeatsOutput publishes events with no Nats-Msg-Id, so that the stream
// stores an event again, as it does after a power cut lost it with its id.
func repeatsOutput(ctx context.Context, t *testing.T, url, stream string) func(ids ...string) {
	t.Helper()
	out := connectedOutput(ctx, t, fmt.Sprintf("urls: [ %q ]\nstream: %s\nmax_bytes: 1000000\nmsg_id: ''", url, stream))
	return func(ids ...string) {
		t.Helper()
		for _, id := range ids {
			m := service.NewMessage([]byte(`{"id":"` + id + `"}`))
			m.MetaSetMut("netcore_event_id", id)
			if err := out.WriteBatch(ctx, service.MessageBatch{m}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// readOne reads one event within a time, or returns its error.
func readOne(ctx context.Context, in *jetStreamInput, within time.Duration) (id string, ack service.AckFunc, err error) {
	rctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	b, ack, err := in.ReadBatch(rctx)
	if err != nil {
		return "", nil, err
	}
	id, _ = b[0].MetaGet("netcore_event_id")
	n, _ := b[0].MetaGet("nats_num_delivered")
	return id + "#" + n, ack, nil
}

// settled fails unless the consumer comes to have nothing waiting or
// unacknowledged within 10 s. A dropped repeat is acknowledged without
// waiting for the server (input_repeats.go), so a single look right after
// may still count it unacknowledged.
func settled(ctx context.Context, t *testing.T, in *jetStreamInput) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := in.cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s the consumer has %d events waiting and %d unacknowledged, want none", info.NumPending, info.NumAckPending)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A failed delivery's retries go (an id counts only once delivered); a
// repeat of a delivered event is acknowledged and not delivered again.
func TestARepeatOfADeliveredEventIsDroppedAndAFailedOnesRetryIsNot(t *testing.T) {
	url := runServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	publish := repeatsOutput(ctx, t, url, "REPEATS")
	in := connectedInput(ctx, t, fmt.Sprintf("urls: [ %q ]\nstream: REPEATS\nbackoff: [ 50ms ]\ndedupe_window: 1m", url))

	publish("e1")
	id, ack, err := readOne(ctx, in, 3*time.Second)
	if err != nil || id != "e1#1" {
		t.Fatalf("read %q, %v; want e1", id, err)
	}
	if err := ack(ctx, errors.New("meiro down")); err != nil {
		t.Fatal(err)
	}
	id, ack, err = readOne(ctx, in, 3*time.Second)
	if err != nil || id != "e1#2" {
		t.Fatalf("after a failed delivery read %q, %v; want e1's retry", id, err)
	}
	if err := ack(ctx, nil); err != nil {
		t.Fatal(err)
	}

	publish("e1", "e2")
	id, ack, err = readOne(ctx, in, 3*time.Second)
	if err != nil || id != "e2#1" {
		t.Fatalf("read %q, %v; want e2, the repeated e1 dropped", id, err)
	}
	_ = ack(ctx, nil)
	if id, _, err := readOne(ctx, in, 500*time.Millisecond); err == nil {
		t.Errorf("%s was delivered again", id)
	}
	settled(ctx, t, in)
}

// An event one deliverer delivered is dropped by another: they share the
// ids they delivered.
func TestAnEventDeliveredByOneDelivererIsDroppedByAnother(t *testing.T) {
	url := runServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	publish := repeatsOutput(ctx, t, url, "SHARED")
	conf := fmt.Sprintf("urls: [ %q ]\nstream: SHARED\ndurable: shared\ndedupe_window: 1m", url)
	deliverers := []*jetStreamInput{connectedInput(ctx, t, conf), connectedInput(ctx, t, conf)}

	publish("e1")
	// Whichever gets it delivers it.
	got := make(chan int, 2)
	rctx, rcancel := context.WithCancel(ctx)
	for i, in := range deliverers {
		go func() {
			if _, ack, err := readOne(rctx, in, 5*time.Second); err == nil {
				_ = ack(ctx, nil)
				got <- i
			}
		}()
	}
	var first int
	select {
	case first = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("neither deliverer got the event")
	}
	rcancel()
	other := deliverers[1-first]
	deadline := time.Now().Add(5 * time.Second)
	for !other.repeats.ids.has(keyOfID("e1"), time.Now()) {
		if time.Now().After(deadline) {
			t.Fatal("the other deliverer never learnt of the delivery")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Only the other is left to receive the repeat.
	_ = deliverers[first].Close(ctx)

	publish("e1", "e2")
	id, ack, err := readOne(ctx, other, 5*time.Second)
	if err != nil || id != "e2#1" {
		t.Fatalf("read %q, %v; want e2, the repeated e1 dropped", id, err)
	}
	_ = ack(ctx, nil)
	settled(ctx, t, other)
}

// Events wait for a slow output in the pipeline, not fetched on their
// ack_wait clock: none is delivered again while it waits.
func TestASlowOutputGetsNoRedeliveries(t *testing.T) {
	url := runServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const events, inFlight, sendTime = 60, 4, 200 * time.Millisecond
	publish := repeatsOutput(ctx, t, url, "SLOW")
	var ids []string
	for i := range events {
		ids = append(ids, fmt.Sprint("e", i))
	}
	publish(ids...)
	// An output of 4 requests in flight, each taking 200 ms: 3 s for all,
	// with events fetched 2 s before they time out.
	in := connectedInput(ctx, t, fmt.Sprintf("urls: [ %q ]\nstream: SLOW\nack_wait: 2s\nprefetch: %d\ndedupe_window: 0s", url, inFlight))
	type read struct {
		id  string
		ack service.AckFunc
	}
	reads := make(chan read)
	for range inFlight {
		go func() {
			for r := range reads {
				time.Sleep(sendTime)
				_ = r.ack(ctx, nil)
			}
		}()
	}
	// Every event, then whatever comes again, until the stream is quiet.
	var redelivered []string
	for n := 0; ; n++ {
		id, ack, err := readOne(ctx, in, 3*time.Second)
		if err != nil {
			if n < events {
				t.Fatalf("after %d events: %v", n, err)
			}
			break
		}
		if !strings.HasSuffix(id, "#1") {
			redelivered = append(redelivered, id)
		}
		reads <- read{id, ack}
	}
	close(reads)
	if len(redelivered) > 0 {
		t.Errorf("%d of %d events were delivered again while they waited for the output: %v", len(redelivered), events, redelivered)
	}
}

// A deliverer whose user may not use the subjects ids are shared on does
// not run on sharing nothing in silence: it fails to connect, saying what
// to allow; one whose user may takes the peers' ids within its own bound,
// not nats.go's 64 MB.
func TestADelivererThatMayNotShareIdsSaysWhatToAllow(t *testing.T) {
	deny := &server.SubjectPermission{Deny: []string{deliveredSubjectPrefix + ">"}}
	url := runServerWith(t, []*server.User{
		{Username: "denied", Password: "secret", Permissions: &server.Permissions{Publish: deny, Subscribe: deny}},
		{Username: "allowed", Password: "secret"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	as := func(user string) string {
		return fmt.Sprintf("urls: [ %q ]\nstream: DENIED\ndedupe_window: 1m", strings.Replace(url, "nats://", "nats://"+user+":secret@", 1))
	}
	conf, err := inputSpec().ParseYAML(as("denied"), nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := newInputFromConfig(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	err = in.Connect(ctx)
	_ = in.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), allowSharing) {
		t.Errorf("a deliverer that may not share ids connected with %v, want an error saying: %s", err, allowSharing)
	}

	allowed := connectedInput(ctx, t, as("allowed"))
	if _, bytes, err := allowed.repeats.sub.PendingLimits(); err != nil || bytes != peerIDsPendingBytes {
		t.Errorf("the peers' ids may wait in %d bytes (%v), want %d", bytes, err, peerIDsPendingBytes)
	}
}

// Once a share's worth of ids waits, one share is started and takes all:
// not a goroutine for each event delivered until it runs. On one thread
// the test's loop runs on, those goroutines would pile up.
func TestABurstOfDeliveriesStartsOneShareAtATime(t *testing.T) {
	conf, err := inputSpec().ParseYAML("urls: [ nats://127.0.0.1:4222 ]\ndedupe_window: 1m", nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := newRepeatFilter(conf, service.MockResources(), "S", "d")
	if err != nil {
		t.Fatal(err)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	base, peak := runtime.NumGoroutine(), 0
	for i := range 8 * 1024 {
		f.delivered(keyOfID(fmt.Sprint("e", i)))
		peak = max(peak, runtime.NumGoroutine()-base)
	}
	if peak > 10 {
		t.Errorf("%d goroutines started by a burst of deliveries, want a share at a time", peak)
	}
}
