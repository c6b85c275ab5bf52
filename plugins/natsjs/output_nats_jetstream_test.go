package natsjs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redpanda-data/benthos/v4/public/service"
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
