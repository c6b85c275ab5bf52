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
	"time"

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

// returnsWithin runs write and fails the test if it has not returned after
// limit (far above the timeouts under test: a lost deadline fails, not hangs).
func returnsWithin(t *testing.T, limit time.Duration, write func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- write() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("the write had not returned after %s", limit)
		return nil
	}
}

// Servers close idle kept-alive connections on their own schedule; the
// next events must not fail for it: not one bigger than a write (which then
// fails on the closed connection), nor one sent when a burst left several
// idle connections, all closed.
func TestMeiroHTTPSendsAgainOnAConnectionTheServerClosedWhileIdle(t *testing.T) {
	var requests, opened, closed atomic.Int32
	// The first four requests are answered only once all four have arrived,
	// so that they are in flight together, on four connections.
	allFour := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if requests.Add(1) == 4 {
			close(allFour)
		}
		select {
		case <-allFour:
		case <-time.After(10 * time.Second): // fails below, not hangs
		}
	}))
	srv.Config.IdleTimeout = 100 * time.Millisecond
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		switch state {
		case http.StateNew:
			opened.Add(1)
		case http.StateClosed:
			closed.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	out := newMeiroHTTPFor(t, "url: "+srv.URL)
	big := `{"s":"` + strings.Repeat("x", 64<<10) + `"}`
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- write(out, big) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if opened.Load() != 4 {
		t.Fatalf("%d connections for 4 events at once, want 4", opened.Load())
	}
	// The server closes the idle connections (its IdleTimeout).
	for deadline := time.Now().Add(10 * time.Second); closed.Load() < 4; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of the 4 idle connections closed after 10s", closed.Load())
		}
	}
	if err := write(out, big); err != nil {
		t.Fatalf("an event after the idle connections were closed: %v", err)
	}
	if requests.Load() != 5 || opened.Load() < 5 {
		t.Errorf("%d events at the server over %d connections; want 5, the last on a new one", requests.Load(), opened.Load())
	}
}

// A gateway's 503 that quotes a refusal from behind it is a 503: its body
// must not make meiro_events' check read a refusal (a dead letter).
func TestMeiroHTTPWordsOnlyItsOwnStatusAsAResponseCode(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "upstream: HTTP request returned unexpected response code (422): Unprocessable", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	err := write(newMeiroHTTPFor(t, "url: "+srv.URL), `{}`)
	if err == nil || !strings.Contains(err.Error(), "unexpected response code (503)") || strings.Contains(err.Error(), "(422)") {
		t.Fatalf("a 503 quoting a 422 gave %v; want the 503 alone as a response code", err)
	}
}

// An answer accepted with a body past the 4 MiB read is still delivered:
// failing it would send the event again and again.
func TestMeiroHTTPTakesA2xxWithALongBodyAsDelivered(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(make([]byte, maxAnswerBytes+1))
	}))
	defer srv.Close()
	if err := write(newMeiroHTTPFor(t, "url: "+srv.URL), `{}`); err != nil {
		t.Fatalf("a 200 with %d bytes: %v", maxAnswerBytes+1, err)
	}
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = w.Write(make([]byte, maxAnswerBytes+1))
	}))
	defer refusing.Close()
	if err := write(newMeiroHTTPFor(t, "url: "+refusing.URL), `{}`); err == nil || !strings.Contains(err.Error(), "unexpected response code (422)") {
		t.Fatalf("a 422 with %d bytes gave %v; want the refusal named, for the dead letters", maxAnswerBytes+1, err)
	}
}

// The path is sent as written: fasthttp would collapse "//" and decode "%2F".
func TestMeiroHTTPSendsThePathAsWritten(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got.Store(r.RequestURI) }))
	defer srv.Close()
	if err := write(newMeiroHTTPFor(t, "url: "+srv.URL+"/collect//a%2Fb?x=1"), `{}`); err != nil {
		t.Fatal(err)
	}
	if got.Load() != "/collect//a%2Fb?x=1" {
		t.Errorf("the server was asked for %q, want /collect//a%%2Fb?x=1", got.Load())
	}
}

// Stopping during a quick retry's wait ends the wait.
func TestMeiroHTTPStopsWaitingToRetryWhenStopped(t *testing.T) {
	srv, _, _ := answering(t, 503, 503)
	out := newMeiroHTTPFor(t, "url: "+srv.URL+"\nretries: 1\nretry_period: 1h")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	err := returnsWithin(t, 5*time.Second, func() error {
		return out.WriteBatch(ctx, service.MessageBatch{service.NewMessage([]byte(`{}`))})
	})
	if err == nil || !strings.Contains(err.Error(), "stopped while waiting to retry") {
		t.Fatalf("stopped during an hour's wait: %v", err)
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
	if err := write(newMeiroHTTPFor(t, "url: "+srv.URL+"\ntls_root_cas_file: "+rootCAsFile(t, srv)), `{}`); err != nil {
		t.Fatalf("with its authority in tls_root_cas_file: %v", err)
	}
}

// rootCAsFile is a PEM file of the authority of srv, a TLS server.
func rootCAsFile(t *testing.T, srv *httptest.Server) string {
	cas := filepath.Join(t.TempDir(), "ca.pem")
	block := &pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}
	if err := os.WriteFile(cas, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return cas
}

// startProxy is an HTTP proxy that tunnels CONNECT requests for
// meiro.example:80 to target, and counts the tunnels.
func startProxy(t *testing.T, target string) (*httptest.Server, *atomic.Int32) {
	var tunnels atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect || r.Host != "meiro.example:80" {
			http.Error(w, "want CONNECT meiro.example:80, got "+r.Method+" "+r.Host, http.StatusBadRequest)
			return
		}
		upstream, err := net.Dial("tcp", target)
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
	t.Cleanup(proxy.Close)
	return proxy, &tunnels
}

// setProxies sets the proxy variables, both spellings of each (the
// lower-case ones win in Go, and a CI machine may set them).
func setProxies(t *testing.T, httpProxy, httpsProxy string) {
	for name, value := range map[string]string{"HTTP_PROXY": httpProxy, "HTTPS_PROXY": httpsProxy, "NO_PROXY": ""} {
		t.Setenv(name, value)
		t.Setenv(strings.ToLower(name), value)
	}
	t.Setenv("REQUEST_METHOD", "") // set, Go takes the process for CGI and ignores HTTP_PROXY
}

// Behind a proxy named in HTTP_PROXY, requests go through it (a CONNECT
// tunnel). Loopback addresses go direct, as with Go's own client, so the
// URL names a host only the proxy knows: it dials the sink instead.
func TestMeiroHTTPGoesThroughTheProxyOfTheEnvironment(t *testing.T) {
	sink, n, _ := answering(t)
	proxy, tunnels := startProxy(t, strings.TrimPrefix(sink.URL, "http://"))
	// The proxy as often written: a trailing slash (fasthttp alone would
	// dial "host:port/").
	setProxies(t, proxy.URL+"/", "")
	out := newMeiroHTTPFor(t, "url: http://meiro.example/collect\ntimeout: 5s")
	if err := write(out, `{}`); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	if tunnels.Load() != 1 || n.Load() != 1 {
		t.Errorf("%d tunnels, %d requests at the sink; want 1 and 1", tunnels.Load(), n.Load())
	}
}

// Loopback addresses and NO_PROXY hosts are reached directly, as Go's
// net/http reaches them, whatever HTTP_PROXY says.
func TestMeiroHTTPReachesLoopbackAndNoProxyHostsDirectly(t *testing.T) {
	sink, n, _ := answering(t)
	proxy, tunnels := startProxy(t, strings.TrimPrefix(sink.URL, "http://"))
	setProxies(t, proxy.URL, "")
	if err := write(newMeiroHTTPFor(t, "url: "+sink.URL), `{}`); err != nil {
		t.Fatalf("to a loopback address: %v", err)
	}
	if tunnels.Load() != 0 || n.Load() != 1 {
		t.Errorf("%d tunnels, %d requests at the sink; want 0 and 1", tunnels.Load(), n.Load())
	}
}

// A proxy other than http:// is refused at start, with what to do, rather
// than failing every delivery (https://) or hanging on one that never
// answers (socks5://, whose handshake has no deadline in its library).
func TestMeiroHTTPRefusesProxiesOtherThanHTTP(t *testing.T) {
	for _, proxy := range []string{"https://user:secret@proxy.example:3128", "socks5://user:secret@proxy.example:1080"} {
		setProxies(t, "", proxy)
		conf, err := meiroHTTPSpec().ParseYAML("url: https://meiro.example/collect", nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := meiroHTTPConfigFromParsed(conf)
		if err != nil {
			t.Fatal(err)
		}
		_, err = newMeiroHTTP(c)
		if err == nil || !strings.Contains(err.Error(), "only http:// proxies") || strings.Contains(err.Error(), "secret") {
			t.Errorf("the proxy %s gave %v; want a refusal that says what to set, without the password", proxy, err)
		}
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
