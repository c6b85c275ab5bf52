package netcore

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// FuzzDecodeAndExplode feeds arbitrary bodies to the request path. Whatever
// comes in: no panic; a refusal is a 400 or 415 with a message; an accepted
// post explodes into as many events as it holds, each a JSON object that
// still holds every top-level field it was sent with.
//
//	go test ./plugins/netcore/ -run '^$' -fuzz FuzzDecodeAndExplode -fuzztime 1m
func FuzzDecodeAndExplode(f *testing.F) {
	samples, _ := filepath.Glob("../../tests/testdata/samples/*")
	for _, s := range samples {
		if b, err := os.ReadFile(s); err == nil {
			f.Add("", b)
			f.Add("application/x-www-form-urlencoded", b)
		}
	}
	for _, s := range []string{
		`data={"p":[{"CITY":"Thane&Kalyan"}]}`, `data=%7B%7D`, `{"p":[]}`, `{"p":[{"a":"\u0000\ud800"}]}`,
		`data=%zz`, `[1]`, `{"p":{}}`, "{\"p\":[{\"x\":\"\xff\"}]}", `{"p":[{"event_params":{"ts":"240301101500"}}]}`,
	} {
		f.Add("", []byte(s))
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
		post, err := DecodeBody(contentType, body)
		if err != nil {
			var rej *RejectError
			if !errors.As(err, &rej) || (rej.Status != http.StatusBadRequest && rej.Status != http.StatusUnsupportedMediaType) || rej.Reason == "" {
				t.Fatalf("refusal %v is not a 400/415 with a reason", err)
			}
			return
		}
		batch, err := p.Process(context.Background(), withPost(service.NewMessage(post.Data), post))
		if err != nil {
			t.Fatalf("an accepted post failed to explode: %v", err)
		}
		if len(batch) != post.EventCount() {
			t.Fatalf("%d events out of a post of %d", len(batch), post.EventCount())
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
