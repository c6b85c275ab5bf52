package natsjs

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/netcore-connect/netcore-connect/internal/claim"
	"github.com/redpanda-data/benthos/v4/public/service"
)

// runServer starts a real NATS server with JetStream, in process, on a
// loopback port of its own.
func runServer(t *testing.T) string { return runServerWith(t, nil) }

// runServerWith is runServer with users, each with its permissions.
func runServerWith(t *testing.T, users []*server.User) string {
	return startServer(t, server.Options{Port: -1, StoreDir: t.TempDir(), Users: users}).ClientURL()
}

// startServer starts a real NATS server with JetStream on loopback, with
// opts for the port, store and the rest, and shuts it down after the test.
func startServer(t *testing.T, opts server.Options) *server.Server {
	t.Helper()
	opts.Host, opts.JetStream, opts.NoLog, opts.NoSigs = "127.0.0.1", true, true, true
	s, err := server.NewServer(&opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// connectedOutput is a nats_jetstream output from yaml, connected.
func connectedOutput(ctx context.Context, t *testing.T, yaml string) *jetStreamOutput {
	t.Helper()
	conf, err := outputSpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := newOutputFromConfig(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = out.Close(context.Background()) })
	return out
}

// connectedInput is a nats_jetstream input from yaml, connected.
func connectedInput(ctx context.Context, t *testing.T, yaml string) *jetStreamInput {
	t.Helper()
	conf, err := inputSpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := newInputFromConfig(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close(context.Background()) })
	return in
}

func TestOutputAndInputCarryEventsOnceWithTheirMetadata(t *testing.T) {
	url := runServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	out := connectedOutput(ctx, t, fmt.Sprintf("urls: [ %q ]\nstream: TEST\nmax_bytes: 100000", url))
	event := func(id string) *service.Message {
		m := service.NewMessage([]byte(`{"id":"` + id + `","n":12345678901234567890}`))
		m.MetaSetMut("netcore_event_id", id)
		m.MetaSetMut("netcore_panel", "cart")
		m.MetaSetMut("other", "not sent")
		return m
	}
	// e1 twice (a repeated post), then e2.
	for _, batch := range []service.MessageBatch{{event("e1"), event("e2")}, {event("e1")}} {
		if err := out.WriteBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}

	in := connectedInput(ctx, t, fmt.Sprintf("urls: [ %q ]\nstream: TEST\nbackoff: [ 50ms ]", url))
	read := func() (*service.Message, service.AckFunc) {
		t.Helper()
		rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
		defer rcancel()
		b, ack, err := in.ReadBatch(rctx)
		if err != nil {
			t.Fatalf("ReadBatch: %v", err)
		}
		return b[0], ack
	}
	first, ack := read()
	body, _ := first.AsBytes()
	if string(body) != `{"id":"e1","n":12345678901234567890}` {
		t.Errorf("body %s", body)
	}
	if v, _ := first.MetaGet("netcore_panel"); v != "cart" {
		t.Errorf("netcore_panel %q, want cart", v)
	}
	if _, ok := first.MetaGet("other"); ok {
		t.Error("metadata without the prefix was sent")
	}
	// A failed delivery comes back, counted.
	if err := ack(ctx, errors.New("meiro down")); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 2 {
		m, ack := read()
		id, _ := m.MetaGet("netcore_event_id")
		n, _ := m.MetaGet("nats_num_delivered")
		ids = append(ids, id+"#"+n)
		if err := ack(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(ids) != "[e2#1 e1#2]" && fmt.Sprint(ids) != "[e1#2 e2#1]" {
		t.Errorf("got %v, want e2 once and e1 again as its 2nd delivery", ids)
	}
	// Nothing more: the repeated e1 was stored once.
	rctx, rcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer rcancel()
	if b, _, err := in.ReadBatch(rctx); err == nil {
		t.Errorf("a repeat was delivered: %v", b)
	}
}

func TestAFullStreamRefusesUntilEventsAreDelivered(t *testing.T) {
	url := runServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := connectedOutput(ctx, t, fmt.Sprintf("urls: [ %q ]\nstream: SMALL\nmax_bytes: 2000\nmsg_id: ''", url))
	stored := 0
	var failed error
	for failed == nil && stored < 100 {
		if failed = out.WriteBatch(ctx, service.MessageBatch{service.NewMessage(make([]byte, 200))}); failed == nil {
			stored++
		}
	}
	if failed == nil {
		t.Fatal("a full stream kept accepting events")
	}

	in := connectedInput(ctx, t, fmt.Sprintf("urls: [ %q ]\nstream: SMALL", url))
	for range stored {
		_, ack, err := in.ReadBatch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := ack(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Delivered events leave the stream (work-queue retention): room again.
	if err := out.WriteBatch(ctx, service.MessageBatch{service.NewMessage(make([]byte, 200))}); err != nil {
		t.Errorf("after every event was delivered the stream still refuses: %v", err)
	}
}

// A post whose input already answered 503 (its claim abandoned) is not
// published; one whose claim is still waited for is, and its input can no
// longer give up on it.
func TestOutputPublishesNothingOfAnAbandonedPost(t *testing.T) {
	url := runServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := connectedOutput(ctx, t, fmt.Sprintf("urls: [ %q ]\nstream: CLAIMS\nmax_bytes: 100000", url))
	post := func(id string) (service.MessageBatch, *claim.Claim) {
		cctx, c := claim.New(context.Background())
		m := service.NewMessage([]byte(`{"id":"` + id + `"}`)).WithContext(cctx)
		m.MetaSetMut("netcore_event_id", id)
		return service.MessageBatch{m}, c
	}
	gaveUp, c := post("given-up")
	c.Abandon()
	if err := out.WriteBatch(ctx, gaveUp); err == nil {
		t.Error("a post whose claim was abandoned was published")
	}
	waited, c := post("waited")
	if err := out.WriteBatch(ctx, waited); err != nil {
		t.Fatal(err)
	}
	if c.Abandon() {
		t.Error("the claim of a published post could still be abandoned")
	}
	in := connectedInput(ctx, t, fmt.Sprintf("urls: [ %q ]\nstream: CLAIMS", url))
	rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
	defer rcancel()
	b, ack, err := in.ReadBatch(rctx)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := b[0].MetaGet("netcore_event_id"); id != "waited" {
		t.Errorf("the stream holds %q first, want only the post still waited for", id)
	}
	_ = ack(ctx, nil)
	rctx2, rcancel2 := context.WithTimeout(ctx, 500*time.Millisecond)
	defer rcancel2()
	if b, _, err := in.ReadBatch(rctx2); err == nil {
		t.Errorf("more was published: %v", b)
	}
}

// A consumer that disappears under a running input is created again and
// delivery goes on. A power cut of the whole cluster does this: a consumer
// created since the nodes' last sync is gone when they start again, and
// the input's pulls to it met only silence, for ever.
func TestInputCreatesItsConsumerAgainWhenItIsLost(t *testing.T) {
	url := runServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := connectedOutput(ctx, t, fmt.Sprintf("urls: [ %q ]\nstream: LOST\nmax_bytes: 100000", url))
	in := connectedInput(ctx, t, fmt.Sprintf("urls: [ %q ]\nstream: LOST\ndurable: lost", url))
	publish := func(id string) {
		t.Helper()
		m := service.NewMessage([]byte(`{"id":"` + id + `"}`))
		m.MetaSetMut("netcore_event_id", id)
		if err := out.WriteBatch(ctx, service.MessageBatch{m}); err != nil {
			t.Fatal(err)
		}
	}
	// read reads as Benthos does: a read that says not connected is
	// followed by Connect.
	read := func(within time.Duration) (string, error) {
		t.Helper()
		rctx, rcancel := context.WithTimeout(ctx, within)
		defer rcancel()
		for {
			b, ack, err := in.ReadBatch(rctx)
			if errors.Is(err, service.ErrNotConnected) {
				if err := in.Connect(rctx); err != nil {
					time.Sleep(100 * time.Millisecond)
				}
				continue
			}
			if err != nil {
				return "", err
			}
			_ = ack(rctx, nil)
			id, _ := b[0].MetaGet("netcore_event_id")
			return id, nil
		}
	}
	publish("before")
	if id, err := read(5 * time.Second); err != nil || id != "before" {
		t.Fatalf("read %q, %v; want the event published", id, err)
	}
	if err := out.js.DeleteConsumer(ctx, "LOST", "lost"); err != nil {
		t.Fatal(err)
	}
	publish("after")
	if id, err := read(20 * time.Second); err != nil || id != "after" {
		t.Fatalf("after its consumer was lost the input read %q, %v; want the event published since", id, err)
	}
}
