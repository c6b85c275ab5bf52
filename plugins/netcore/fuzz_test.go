package netcore

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
)

// FuzzDecodeAndExplode feeds arbitrary bodies to the request path. Whatever
// comes in: no panic; a refusal is a 400 or 415 with a message; an accepted
// post explodes into as many events as it holds, each a JSON object that
// still holds every top-level field it was sent with, and with an id of its
// own (identical events of a post included).
//
//	go test ./plugins/netcore/ -run '^$' -fuzz FuzzDecodeAndExplode -fuzztime 1m
//
// Its seed corpus, in testdata/fuzz/FuzzDecodeAndExplode/, holds the samples
// of tests/testdata/samples (as form and as sniffed bodies) and the edge
// cases that once broke a decoder: go test runs every seed each time, and
// the test fails if they are missing rather than fuzz from nothing.
func FuzzDecodeAndExplode(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecodeAndExplode", "*"))
	if err != nil || len(seeds) < 20 {
		f.Fatalf("the seed corpus testdata/fuzz/FuzzDecodeAndExplode has %d files (%v), want the 29 seeds: was it moved?", len(seeds), err)
	}
	conf, err := explodeProcessorSpec().ParseYAML(``, nil)
	if err != nil {
		f.Fatal(err)
	}
	p, err := newExplodeProcessorFromConfig(conf)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		post, err := netcorepost.DecodeBody(contentType, body)
		if err != nil {
			var rej *netcorepost.RejectError
			if !errors.As(err, &rej) || (rej.Status != http.StatusBadRequest && rej.Status != http.StatusUnsupportedMediaType) || rej.Reason == "" {
				t.Fatalf("refusal %v is not a 400/415 with a reason", err)
			}
			return
		}
		batch, err := p.Process(context.Background(), netcorepost.WithPost(service.NewMessage(post.Data), post))
		if err != nil {
			t.Fatalf("an accepted post failed to explode: %v", err)
		}
		if len(batch) != post.EventCount() {
			t.Fatalf("%d events out of a post of %d", len(batch), post.EventCount())
		}
		ids := map[string]int{}
		for i, m := range batch {
			id := meta(m, "netcore_event_id")
			if j, ok := ids[id]; ok {
				t.Fatalf("events %d and %d of the post share id %q", j, i, id)
			}
			ids[id] = i
		}
		i := 0
		for _, panel := range post.Panels {
			for _, raw := range panel.Events {
				var sent, got map[string]json.RawMessage
				if err := json.Unmarshal(raw, &sent); err != nil {
					t.Fatalf("an accepted event is not an object: %s", raw)
				}
				out, _ := batch[i].AsBytes()
				if err := json.Unmarshal(out, &got); err != nil {
					t.Fatalf("exploded event is not a JSON object: %s (%v)", out, err)
				}
				for k := range sent {
					if _, ok := got[k]; !ok {
						t.Fatalf("field %q lost: sent %s, got %s", k, raw, out)
					}
				}
				i++
			}
		}
	})
}
