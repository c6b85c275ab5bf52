package netcore

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
)

func TestBodyBudgetRefusesPastItsLimitAndTakesBack(t *testing.T) {
	b := &bodyBudget{limit: 100}
	if !b.take(60, true) || b.take(41, true) {
		t.Fatal("the budget of 100 did not take 60 and then refuse 41")
	}
	b.give(60)
	if !b.take(100, true) {
		t.Fatal("what was given back could not be taken again")
	}
}

// Big posts cannot take the eighth of the budget kept for small ones: with
// the rest taken by big posts, a small post is still admitted, a big one
// is not, and a small one growing big loses its claim to the share.
func TestBigPostsLeaveTheSmallPostsShare(t *testing.T) {
	b := &bodyBudget{limit: 64 * smallPostBytes}
	big := b.hold()
	if !big.take(b.limit-b.smallShare()) || big.take(1) {
		t.Fatalf("a big post took %d, want all but the small posts' share (%d)", big.held, b.limit-b.smallShare())
	}
	small := b.hold()
	if !small.take(smallPostBytes) {
		t.Fatal("a small post was refused while only big ones held the budget")
	}
	if small.take(1) {
		t.Fatal("a post past smallPostBytes took from the small posts' share")
	}
	if !small.settle(budgetStep) || b.used != b.limit-b.smallShare()+budgetStep {
		t.Fatalf("settling at %d: %d used, want %d", budgetStep, b.used, b.limit-b.smallShare()+budgetStep)
	}
	big.release()
	small.release()
	if b.used != 0 {
		t.Fatalf("%d bytes still held after both were released", b.used)
	}
}

// A form post holds, once decoded, its body and the data decoded from it
// besides what the queue will copy; a JSON post's data is its body.
func TestCostOfPostCountsTheDecodedCopy(t *testing.T) {
	jsonBody := []byte(`{"p":[{"a":1},{"b":2}]}`)
	formBody := []byte("data=" + url.QueryEscape(string(jsonBody)))
	fromJSON, err := netcorepost.DecodeBody("application/json", jsonBody)
	if err != nil {
		t.Fatal(err)
	}
	fromForm, err := netcorepost.DecodeBody("application/x-www-form-urlencoded", formBody)
	if err != nil {
		t.Fatal(err)
	}
	queued := 2 * (int64(len(jsonBody)) + 2*8 + recordBytes)
	if got, want := costOfPost(jsonBody, fromJSON), int64(len(jsonBody))+2*eventBytes+queued; got != want {
		t.Errorf("JSON post: cost %d, want %d (its body, 2 events and the queue's copies)", got, want)
	}
	if got, least := costOfPost(formBody, fromForm), int64(len(formBody)+len(jsonBody))+2*eventBytes+queued; got < least {
		t.Errorf("form post: cost %d, want at least %d (its body, the decoded data, 2 events and the queue's copies)", got, least)
	}
}

func TestBudgetedReaderStopsWhenTheBudgetIsSpent(t *testing.T) {
	b := &bodyBudget{limit: 3 * budgetStep}
	hold := b.hold()
	br := &budgetedReader{r: bytes.NewReader(make([]byte, 10*budgetStep)), hold: hold}
	got, err := io.ReadAll(br)
	if !errors.Is(err, errBudgetSpent) {
		t.Fatalf("reading 10 steps within a budget of 3: err %v, want errBudgetSpent", err)
	}
	if len(got) > 3*budgetStep || hold.held > b.limit {
		t.Fatalf("read %d bytes holding %d, past the budget of %d", len(got), hold.held, b.limit)
	}
	hold.release()
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
