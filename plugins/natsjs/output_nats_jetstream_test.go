package natsjs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redpanda-data/benthos/v4/public/service"

	// The engine's own components (the producer's input, the tracer).
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
)

// event is a message as the journal hands it on: the event id in its body
// and its metadata, and a body of at least size bytes.
func event(id string, size int) *service.Message {
	body := `{"id":"` + id + `","pad":"`
	body += strings.Repeat("x", max(0, size-len(body)-2)) + `"}`
	m := service.NewMessage([]byte(body))
	m.MetaSetMut("netcore_event_id", id)
	return m
}

// events is a batch of small events.
func events(ids ...string) service.MessageBatch {
	var b service.MessageBatch
	for _, id := range ids {
		b = append(b, event(id, 0))
	}
	return b
}

// storedIDs returns the Nats-Msg-Id of every message the stream holds, in
// order, and fails on a message whose body is not its id's event.
func storedIDs(ctx context.Context, t *testing.T, js jetstream.JetStream, stream string) []string {
	t.Helper()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		id := m.Header.Get(jetstream.MsgIDHeader)
		if !strings.HasPrefix(string(m.Data), `{"id":"`+id+`"`) {
			t.Errorf("message %d has Nats-Msg-Id %q and the body of another event: %.40s", seq, id, m.Data)
		}
		ids = append(ids, id)
	}
	return ids
}

// refusingOutput is a connected output to stream name on a server that
// refuses messages over 4 KiB, the stream refusing those over 1 KiB.
func refusingOutput(ctx context.Context, t *testing.T, name string) (*jetStreamOutput, string) {
	t.Helper()
	url := startServer(t, server.Options{Port: -1, StoreDir: t.TempDir(), MaxPayload: 4096}).ClientURL()
	out := connectedOutput(ctx, t, fmt.Sprintf("urls: [ %q ]\nstream: %s\nmax_bytes: 1000000", url, name))
	conf := out.conf.stream
	conf.MaxMsgSize = 1024
	s, err := out.js.UpdateStream(ctx, conf)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxMsgSize; got != 1024 {
		t.Fatalf("the stream takes messages up to %d bytes, want 1024", got)
	}
	return out, url
}

// failedIndexes writes batch and returns the indexes of the messages it
// reports failed, and its error; it fails unless the error is nil or a
// batch error, which tells the events apart.
func failedIndexes(ctx context.Context, t *testing.T, out *jetStreamOutput, batch service.MessageBatch) ([]int, error) {
	t.Helper()
	indexer := batch.Index()
	err := out.WriteBatch(ctx, batch)
	var berr *service.BatchError
	if err == nil {
		return nil, nil
	} else if !errors.As(err, &berr) {
		t.Fatalf("WriteBatch returned %v, want a batch error naming the events not stored", err)
	}
	var failed []int
	berr.WalkMessagesIndexedBy(indexer, func(i int, _ *service.Message, err error) bool {
		if err != nil {
			failed = append(failed, i)
		}
		return true
	})
	slices.Sort(failed)
	return failed, err
}

// A batch's events are stored as messages of their own, each with its own
// Nats-Msg-Id: the stream drops a repeat of one of them, not the others.
func TestABatchStoresEachEventWithItsOwnID(t *testing.T) {
	url := runServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := connectedOutput(ctx, t, fmt.Sprintf("urls: [ %q ]\nstream: IDS\nmax_bytes: 100000", url))
	for _, batch := range []service.MessageBatch{events("e1", "e2", "e3"), events("e2", "e4")} {
		if err := out.WriteBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if got := storedIDs(ctx, t, out.js, "IDS"); !slices.Equal(got, []string{"e1", "e2", "e3", "e4"}) {
		t.Errorf("the stream holds %v, want e1 to e4 once each", got)
	}
}

// An event the stream refuses (over its max_msg_size) or the server
// refuses (over its max_payload) fails alone: the batch's other events are
// stored, once each, and reported stored, so that they are not published
// again and a poison event does not fail every batch it lands in.
func TestAnEventTooBigFailsAloneInItsBatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _ := refusingOutput(ctx, t, "BIG")
	batch := service.MessageBatch{event("e1", 0), event("over-stream", 2000), event("e2", 0), event("over-server", 5000), event("e3", 0)}
	if failed, err := failedIndexes(ctx, t, out, batch); !slices.Equal(failed, []int{1, 3}) {
		t.Errorf("indexes %v reported failed, want [1 3], the events too big: %v", failed, err)
	}
	if got := storedIDs(ctx, t, out.js, "BIG"); !slices.Equal(got, []string{"e1", "e2", "e3"}) {
		t.Errorf("the stream holds %v, want e1, e2 and e3 once each", got)
	}
}

// refusedFrom is JetStream whose publishes fail from the at-th on, as
// when the connection closes in the middle of a batch.
type refusedFrom struct {
	jetstream.JetStream
	at, calls int
}

func (r *refusedFrom) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if r.calls++; r.calls > r.at {
		return nil, nats.ErrConnectionClosed
	}
	return r.JetStream.PublishMsgAsync(m, opts...)
}

// A publish refused for another reason than the event's size fails that
// event and every one after it, not yet published; those published before
// are waited for and reported stored.
func TestAPublishRefusedMidBatchFailsTheRestOfIt(t *testing.T) {
	url := runServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := connectedOutput(ctx, t, fmt.Sprintf("urls: [ %q ]\nstream: CUT\nmax_bytes: 100000", url))
	js := out.js
	out.js = &refusedFrom{JetStream: js, at: 2}
	if failed, err := failedIndexes(ctx, t, out, events("e1", "e2", "e3", "e4", "e5")); !slices.Equal(failed, []int{2, 3, 4}) {
		t.Errorf("indexes %v reported failed, want [2 3 4], from the refused publish on: %v", failed, err)
	}
	if got := storedIDs(ctx, t, js, "CUT"); !slices.Equal(got, []string{"e1", "e2"}) {
		t.Errorf("the stream holds %v, want e1 and e2, published before the refusal", got)
	}
}

// Through the engine, with the batching of config/scale-out/ingest.yaml:
// each event's input is told whether that event was stored, so that the
// journal publishes again only the event that failed.
func TestTheInputIsToldOfEachEventOfABatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	check, url := refusingOutput(ctx, t, "ENGINE")
	b := service.NewStreamBuilder()
	if err := b.SetLoggerYAML("level: none"); err != nil {
		t.Fatal(err)
	}
	produce, err := b.AddProducerFunc()
	if err != nil {
		t.Fatal(err)
	}
	// A batch goes out only once it holds all 5 events (the period is
	// longer than the test), so each result below is one of that batch.
	if err := b.AddOutputYAML(fmt.Sprintf(`
nats_jetstream:
  urls: [ %q ]
  stream: ENGINE
  max_in_flight: 1
  batching: { count: 5, period: 1m }
`, url)); err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = stream.Run(ctx) }()
	defer func() { _ = stream.StopWithin(10 * time.Second) }()

	sizes := map[string]int{"e1": 0, "e2": 0, "too-big": 2000, "e3": 0, "e4": 0}
	var mu sync.Mutex
	results := map[string]error{}
	var wg sync.WaitGroup
	for id, size := range sizes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := produce(ctx, event(id, size))
			mu.Lock()
			results[id] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	for id, err := range results {
		if id == "too-big" && err == nil {
			t.Error("the event the stream refused was reported stored")
		} else if id != "too-big" && err != nil {
			t.Errorf("%s, stored, was reported failed: %v", id, err)
		}
	}
	got := storedIDs(ctx, t, check.js, "ENGINE")
	slices.Sort(got)
	if !slices.Equal(got, []string{"e1", "e2", "e3", "e4"}) {
		t.Errorf("the stream holds %v, want e1 to e4 once each", got)
	}
}

// Batch processors are refused: one merging a batch's events would publish
// them under the first one's Nats-Msg-Id, and the stream would drop the
// others as repeats. Batching without them is taken.
func TestBatchProcessorsAreRefused(t *testing.T) {
	build := func(batching string) error {
		t.Helper()
		conf, err := outputSpec().ParseYAML("urls: [ nats://127.0.0.1:4222 ]\nbatching:\n"+batching, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _, _, err = newBatchOutput(conf, service.MockResources())
		return err
	}
	if err := build("  count: 64\n  period: 2ms\n"); err != nil {
		t.Fatalf("batching of the scale-out config refused: %v", err)
	}
	if err := build("  count: 64\n  processors: []\n"); err != nil {
		t.Errorf("an empty list of processors refused: %v", err)
	}
	err := build("  count: 64\n  processors:\n    - archive: { format: lines }\n")
	if err == nil || !strings.Contains(err.Error(), "batching.processors") {
		t.Errorf("batch processors taken (%v), want an error naming batching.processors", err)
	}
}
