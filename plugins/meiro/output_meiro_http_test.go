package meiro

import (
	"bufio"
	"context"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// newMeiroHTTPFor builds a meiro_http output from YAML, for calling directly.
func newMeiroHTTPFor(t *testing.T, yaml string) *meiroHTTP {
	t.Helper()
	conf, err := meiroHTTPSpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := meiroHTTPConfigFromParsed(conf)
	if err != nil {
		t.Fatal(err)
	}
	out, err := newMeiroHTTP(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = out.Close(context.Background()) })
	return out
}

// answering is a server that answers the statuses in turn, then 200, and
// counts the requests and keeps the last body and content type.
func answering(t *testing.T, statuses ...int) (*httptest.Server, *atomic.Int32, *atomic.Value) {
	var n atomic.Int32
	var last atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		last.Store(r.Header.Get("Content-Type") + " " + string(body))
		if i := int(n.Add(1)) - 1; i < len(statuses) {
			w.WriteHeader(statuses[i])
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &n, &last
}

func write(out *meiroHTTP, body string) error {
	return out.WriteBatch(context.Background(), service.MessageBatch{service.NewMessage([]byte(body))})
}

func TestMeiroHTTPRetriesUntilAnAnswerIs2xx(t *testing.T) {
	srv, n, last := answering(t, 503, 500)
	out := newMeiroHTTPFor(t, "url: "+srv.URL+"\nheaders: {Content-Type: application/json}\nretries: 3\nretry_period: 10ms\nbackoff_on: [503]")
	if err := write(out, `{"a":1}`); err != nil {
		t.Fatalf("a 503, a 500 and a 200 within 3 retries failed: %v", err)
	}
	if n.Load() != 3 || last.Load() != `application/json {"a":1}` {
		t.Errorf("%d requests, the last %q; want 3, the event as JSON", n.Load(), last.Load())
	}
}

func TestMeiroHTTPFailsAtOnceOnADropStatusWordedAsHTTPClient(t *testing.T) {
	srv, n, _ := answering(t, 422)
	out := newMeiroHTTPFor(t, "url: "+srv.URL+"\nretries: 3\nretry_period: 10ms\ndrop_on: [422]")
	err := write(out, `{}`)
	if err == nil || !strings.Contains(err.Error(), "unexpected response code (422)") {
		t.Fatalf("a 422 gave %v; want the wording the refusal check of meiro_events reads", err)
	}
	if n.Load() != 1 {
		t.Errorf("%d requests for a status in drop_on, want 1 (no retry)", n.Load())
	}
}

func TestMeiroHTTPFailsAfterItsRetries(t *testing.T) {
	srv, n, _ := answering(t, 503, 503, 503, 503)
	out := newMeiroHTTPFor(t, "url: "+srv.URL+"\nretries: 2\nretry_period: 5ms")
	if err := write(out, `{}`); err == nil || !strings.Contains(err.Error(), "unexpected response code (503)") {
		t.Fatalf("three 503s gave %v, want a failure", err)
	}
	if n.Load() != 3 {
		t.Errorf("%d requests, want 3: the first and 2 retries", n.Load())
	}
}

func TestMeiroHTTPGivesUpOnASlowAnswerAtItsTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	out := newMeiroHTTPFor(t, "url: "+srv.URL+"\ntimeout: 100ms")
	if err := write(out, `{}`); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("an answer that never came gave %v, want a timeout", err)
	}
}

// A batch is sent message by message and stops at the first failure, as
// http_client does: what follows it is not sent.
func TestMeiroHTTPStopsABatchAtItsFirstFailure(t *testing.T) {
	srv, n, _ := answering(t, 200, 503)
	out := newMeiroHTTPFor(t, "url: "+srv.URL)
	batch := service.MessageBatch{service.NewMessage([]byte(`1`)), service.NewMessage([]byte(`2`)), service.NewMessage([]byte(`3`))}
	if err := out.WriteBatch(context.Background(), batch); err == nil {
		t.Fatal("a batch whose second message failed was acknowledged")
	}
	if n.Load() != 2 {
		t.Errorf("%d requests, want 2", n.Load())
	}
}

func TestMeiroHTTPTrustsTheAuthoritiesOfItsRootCAsFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	if err := write(newMeiroHTTPFor(t, "url: "+srv.URL), `{}`); err == nil {
		t.Fatal("a server whose authority is not trusted was accepted")
	}
	cas := filepath.Join(t.TempDir(), "ca.pem")
	block := &pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}
	if err := os.WriteFile(cas, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := write(newMeiroHTTPFor(t, "url: "+srv.URL+"\ntls_root_cas_file: "+cas), `{}`); err != nil {
		t.Fatalf("with its authority in tls_root_cas_file: %v", err)
	}
}

// Behind a proxy named in HTTP_PROXY, requests go through it (a CONNECT
// tunnel). Go skips proxies for loopback addresses, so the URL names a host
// that only the proxy knows: it dials the sink instead.
func TestMeiroHTTPGoesThroughTheProxyOfTheEnvironment(t *testing.T) {
	sink, n, _ := answering(t)
	var tunnels atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect || r.Host != "meiro.example:80" {
			http.Error(w, "want CONNECT meiro.example:80, got "+r.Method+" "+r.Host, http.StatusBadRequest)
			return
		}
		upstream, err := net.Dial("tcp", strings.TrimPrefix(sink.URL, "http://"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		tunnels.Add(1)
		w.WriteHeader(http.StatusOK)
		conn, buf, _ := w.(http.Hijacker).Hijack()
		go func() { _, _ = io.Copy(upstream, bufio.NewReader(buf)); upstream.Close() }()
		_, _ = io.Copy(conn, upstream)
		conn.Close()
	}))
	defer proxy.Close()
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("NO_PROXY", "")
	out := newMeiroHTTPFor(t, "url: http://meiro.example/collect\ntimeout: 5s")
	if err := write(out, `{}`); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	if tunnels.Load() != 1 || n.Load() != 1 {
		t.Errorf("%d tunnels, %d requests at the sink; want 1 and 1", tunnels.Load(), n.Load())
	}
}

// A redirect fails the message (as an operator's wrong URL does) rather
// than being followed: Go's client would resend a 302'd POST as a GET.
func TestMeiroHTTPDoesNotFollowRedirects(t *testing.T) {
	srv, n, _ := answering(t, http.StatusFound)
	out := newMeiroHTTPFor(t, "url: "+srv.URL)
	if err := write(out, `{}`); err == nil || !strings.Contains(err.Error(), "unexpected response code (302)") {
		t.Fatalf("a 302 gave %v, want a failure naming it", err)
	}
	if n.Load() != 1 {
		t.Errorf("%d requests, want 1", n.Load())
	}
}
