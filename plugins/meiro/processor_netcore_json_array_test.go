package meiro

import (
	"context"
	"testing"

	"github.com/netcore-connect/netcore-connect/internal/testing/testkit"

	"github.com/redpanda-data/benthos/v4/public/service"
)

func TestJSONArrayJoinsEventsUnchanged(t *testing.T) {
	p := jsonArrayProcessor{batching: true}
	batch := service.MessageBatch{
		service.NewMessage([]byte(`{"z":1,"a":12345678901234567890123}`)),
		service.NewMessage([]byte(`{"price":45999.50}`)),
	}
	batch[0].MetaSetMut("netcore_panel", "p")
	out, err := p.ProcessBatch(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || len(out[0]) != 1 {
		t.Fatalf("got %d batches, want one message", len(out))
	}
	if got := testkit.MessageBody(t, out[0][0]); got != `[{"z":1,"a":12345678901234567890123},{"price":45999.50}]` {
		t.Errorf("got %s", got)
	}
	if meta(out[0][0], "netcore_panel") != "p" {
		t.Error("metadata of the first message lost")
	}

	single, err := p.ProcessBatch(context.Background(), service.MessageBatch{service.NewMessage([]byte(`{"a":1}`))})
	if err != nil || testkit.MessageBody(t, single[0][0]) != `[{"a":1}]` {
		t.Errorf("when batching, a batch of one is an array too: %v %v", single, err)
	}
	alone, err := jsonArrayProcessor{}.ProcessBatch(context.Background(), service.MessageBatch{service.NewMessage([]byte(`{"a":1}`))})
	if err != nil || testkit.MessageBody(t, alone[0][0]) != `{"a":1}` {
		t.Errorf("without batching a message stays an object: %v %v", alone, err)
	}

	bad := service.MessageBatch{service.NewMessage([]byte(`{"a":1}`)), service.NewMessage([]byte(`nope`))}
	if _, err := p.ProcessBatch(context.Background(), bad); err == nil {
		t.Error("a message that is not JSON must fail the batch")
	}
}

func meta(m *service.Message, key string) string {
	v, _ := m.MetaGet(key)
	return v
}
