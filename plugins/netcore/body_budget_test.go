package netcore

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

func TestBodyBudgetRefusesPastItsLimitAndTakesBack(t *testing.T) {
	b := &bodyBudget{limit: 100}
	if !b.take(60) || b.take(41) {
		t.Fatal("the budget of 100 did not take 60 and then refuse 41")
	}
	b.give(60)
	if !b.take(100) {
		t.Fatal("what was given back could not be taken again")
	}
}

func TestBudgetedReaderStopsWhenTheBudgetIsSpent(t *testing.T) {
	b := &bodyBudget{limit: 3 * budgetStep}
	br := &budgetedReader{r: bytes.NewReader(make([]byte, 10*budgetStep)), budget: b}
	got, err := io.ReadAll(br)
	if !errors.Is(err, errBudgetSpent) {
		t.Fatalf("reading 10 steps within a budget of 3: err %v, want errBudgetSpent", err)
	}
	if len(got) > 3*budgetStep || br.held > b.limit {
		t.Fatalf("read %d bytes holding %d, past the budget of %d", len(got), br.held, b.limit)
	}
	b.give(br.held)
	if b.used != 0 {
		t.Fatalf("%d bytes still held after giving back", b.used)
	}
}

// Every answer gives back what its body took from the budget: a post
// stored, refused for its content, too large, compressed and broken, or not
// stored in time.
func TestBodyBudgetIsGivenBackOnEveryAnswer(t *testing.T) {
	conf, err := webhookInputSpec().ParseYAML("allowed_ips: [ 127.0.0.1 ]\nmax_body_bytes: 100000\nack_timeout: 100ms", nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := newWebhookInputFromConfig(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // the pipeline: acknowledges every post, late for one marked slow
		for {
			batch, ack, err := w.ReadBatch(ctx)
			if err != nil {
				return
			}
			if body, _ := batch[0].AsBytes(); bytes.Contains(body, []byte("slow")) {
				time.Sleep(200 * time.Millisecond)
			}
			_ = ack(ctx, nil)
		}
	}()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(make([]byte, 1<<20)) // inflates past max_body_bytes
	_ = zw.Close()
	cases := []struct {
		name, encoding string
		body           []byte
		chunked        bool
		want           int
	}{
		{"stored", "", []byte(`{"p":[{"a":1}]}`), false, http.StatusOK},
		{"stored, chunked", "", []byte(`{"p":[{"a":1}]}`), true, http.StatusOK},
		{"bad JSON", "", []byte(`{"p":[1]}`), false, http.StatusBadRequest},
		{"over the limit, chunked", "", bytes.Repeat([]byte("a"), 200000), true, http.StatusRequestEntityTooLarge},
		{"a gzip bomb", "gzip", gz.Bytes(), false, http.StatusRequestEntityTooLarge},
		{"broken gzip", "gzip", []byte("not gzip"), false, http.StatusBadRequest},
		{"not stored in time", "", []byte(`{"slow":[{"a":1}]}`), false, http.StatusServiceUnavailable},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodPost, "/netcore", bytes.NewReader(c.body))
		r.RemoteAddr = "127.0.0.1:5000"
		r.Header.Set("Content-Type", "application/json")
		if c.encoding != "" {
			r.Header.Set("Content-Encoding", c.encoding)
		}
		if c.chunked {
			r.ContentLength = -1
		}
		rec := httptest.NewRecorder()
		w.ServeHTTP(rec, r)
		if rec.Code != c.want {
			t.Errorf("%s: answered %d, want %d (%s)", c.name, rec.Code, c.want, rec.Body)
		}
		if used := w.bodies.used; used != 0 {
			t.Errorf("%s: %d bytes of the budget still taken after the answer", c.name, used)
		}
	}
}
