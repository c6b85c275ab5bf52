package netcore

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/testing/testkit"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"
)

// consumer stands for the rest of the pipeline: it records the events it is
// given and answers with whatever ack the test sets.
type consumer struct {
	mu     sync.Mutex
	events []*service.Message
	ack    func() error
}

func (c *consumer) consume(_ context.Context, b service.MessageBatch) error {
	c.mu.Lock()
	ack := c.ack
	c.mu.Unlock()
	var err error
	if ack != nil {
		err = ack()
	}
	if err == nil {
		c.mu.Lock()
		c.events = append(c.events, b...)
		c.mu.Unlock()
	}
	return err
}

func (c *consumer) setAck(fn func() error) {
	c.mu.Lock()
	c.ack = fn
	c.mu.Unlock()
}

func (c *consumer) received() []*service.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*service.Message(nil), c.events...)
}

func freeAddr(t *testing.T) string {
	return testkit.FreeAddr(t)
}

// startWebhook runs a real stream: the webhook input with its fields from
// extra, netcore_explode, and c as the output. It returns the post URL.
func startWebhook(t *testing.T, extra string, c *consumer, resources ...string) (string, *service.Stream) {
	t.Helper()
	addr := freeAddr(t)
	b := service.NewStreamBuilder()
	if err := b.SetLoggerYAML("level: NONE"); err != nil {
		t.Fatal(err)
	}
	for _, r := range resources {
		if err := b.AddResourcesYAML(r); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf("netcore_webhook:\n  address: %s\n", addr)
	for line := range strings.SplitSeq(strings.TrimSpace(extra), "\n") {
		if line != "" {
			conf += "  " + line + "\n"
		}
	}
	conf += "processors:\n  - netcore_explode: {}\n"
	if err := b.AddInputYAML(conf); err != nil {
		t.Fatalf("input config: %v\n%s", err, conf)
	}
	if err := b.AddBatchConsumerFunc(c.consume); err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = stream.Run(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = stream.Stop(ctx)
	})
	scheme := "http"
	if strings.Contains(extra, "enabled: true") {
		scheme = "https"
	}
	base := scheme + "://" + addr + "/netcore"
	waitListening(t, addr)
	return base, stream
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}

type reply struct {
	status     int
	body       string
	retryAfter string
	requestID  string
}

func do(t *testing.T, client *http.Client, req *http.Request) reply {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b), resp.Header.Get("Retry-After"), resp.Header.Get("X-Request-Id")}
}

func postForm(t *testing.T, target, data string) reply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(url.Values{"data": {data}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, nil, req)
}

func TestWebhookStoresAndExplodesAPost(t *testing.T) {
	c := &consumer{}
	target, _ := startWebhook(t, "", c)
	data, err := os.ReadFile("../../tests/testdata/samples/two_panels.json")
	if err != nil {
		t.Fatal(err)
	}
	r := postForm(t, target, string(data))
	if r.status != http.StatusOK || !strings.Contains(r.body, `"events":3`) || r.requestID == "" {
		t.Fatalf("got %d %s (request id %q), want 200 with 3 events", r.status, r.body, r.requestID)
	}
	events := c.received()
	if len(events) != 3 {
		t.Fatalf("pipeline got %d events, want 3", len(events))
	}
	for _, ev := range events {
		if meta(ev, "netcore_client_ip") != "127.0.0.1" || meta(ev, "netcore_request_id") != r.requestID {
			t.Errorf("metadata: client %q request %q", meta(ev, "netcore_client_ip"), meta(ev, "netcore_request_id"))
		}
		if _, err := time.Parse(time.RFC3339Nano, meta(ev, "netcore_received_at")); err != nil {
			t.Errorf("netcore_received_at: %v", err)
		}
	}
}

func TestWebhookAnswers200OnlyAfterTheAck(t *testing.T) {
	c := &consumer{}
	release := make(chan struct{})
	c.setAck(func() error { <-release; return nil })
	target, _ := startWebhook(t, "ack_timeout: 5s", c)

	done := make(chan reply, 1)
	go func() { done <- postForm(t, target, `{"p":[{"a":1}]}`) }()
	select {
	case r := <-done:
		t.Fatalf("answered %d before the pipeline acknowledged", r.status)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if r := <-done; r.status != http.StatusOK {
		t.Fatalf("got %d %s after the ack, want 200", r.status, r.body)
	}
}

func TestWebhookAnswers503WhenNotStored(t *testing.T) {
	c := &consumer{}
	target, _ := startWebhook(t, "ack_timeout: 300ms\nretry_after: 7s", c)

	c.setAck(func() error { return errors.New("disk full") })
	r := postForm(t, target, `{"p":[{"a":1}]}`)
	if r.status != http.StatusServiceUnavailable || r.retryAfter != "7" || !strings.Contains(r.body, "disk full") {
		t.Errorf("nack: got %d %q Retry-After %q, want 503 naming the error with Retry-After 7", r.status, r.body, r.retryAfter)
	}

	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	c.setAck(func() error { <-block; return nil })
	r = postForm(t, target, `{"p":[{"a":1}]}`)
	if r.status != http.StatusServiceUnavailable || r.retryAfter == "" || !strings.Contains(r.body, "300ms") {
		t.Errorf("ack timeout: got %d %q, want 503 with Retry-After", r.status, r.body)
	}
}

func TestWebhookEmptyPostIsAcknowledged(t *testing.T) {
	c := &consumer{}
	target, _ := startWebhook(t, "", c)
	for _, data := range []string{`{"p":[]}`, `{}`} {
		if r := postForm(t, target, data); r.status != http.StatusOK || !strings.Contains(r.body, `"events":0`) {
			t.Errorf("%s: got %d %s, want 200 with 0 events", data, r.status, r.body)
		}
	}
}

func TestWebhookStatusCodes(t *testing.T) {
	c := &consumer{}
	dir := t.TempDir()
	rejected := filepath.Join(dir, "rejected.jsonl")
	target, _ := startWebhook(t, "max_body_bytes: 1000\nrejected_file: "+rejected, c)
	root := strings.TrimSuffix(target, "/netcore")

	req := func(method, target, contentType, body string) *http.Request {
		r, _ := http.NewRequest(method, target, strings.NewReader(body))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		return r
	}
	chunked := req(http.MethodPost, target, "application/json", "")
	chunked.Body = io.NopCloser(strings.NewReader(`{"p":[{"x":"` + strings.Repeat("a", 2000) + `"}]}`))
	chunked.ContentLength = -1

	tests := []struct {
		name   string
		req    *http.Request
		status int
		says   string
	}{
		{"form", req(http.MethodPost, target, "application/x-www-form-urlencoded", `data=%7B%22p%22%3A%5B%7B%7D%5D%7D`), 200, `"events":1`},
		{"json", req(http.MethodPost, target, "application/json", `{"p":[{}]}`), 200, `"events":1`},
		{"sniffed json", req(http.MethodPost, target, "", `{"p":[{}]}`), 200, `"events":1`},
		{"unencoded form", req(http.MethodPost, target, "application/x-www-form-urlencoded", `data={"p":[{"CITY":"Thane&Kalyan"}]}`), 200, `"events":1`},
		{"other path", req(http.MethodPost, root+"/other", "application/json", `{}`), 404, "/netcore"},
		{"DELETE", req(http.MethodDelete, target, "", ""), 405, "POST"},
		{"PUT", req(http.MethodPut, target, "application/json", `{}`), 405, "POST"},
		{"too large", req(http.MethodPost, target, "application/json", `{"p":[{"x":"`+strings.Repeat("a", 2000)+`"}]}`), 413, "1000"},
		{"too large, chunked", chunked, 413, "1000"},
		{"multipart", req(http.MethodPost, target, "multipart/form-data; boundary=x", `--x--`), 415, "content type"},
		{"invalid JSON", req(http.MethodPost, target, "application/json", `{"p":[{]}`), 400, "not valid JSON"},
		{"no data field", req(http.MethodPost, target, "application/x-www-form-urlencoded", `foo=bar`), 400, "no data field"},
		{"panel not an array", req(http.MethodPost, target, "application/json", `{"p":{}}`), 400, "is a JSON object, not an array"},
		{"event not an object", req(http.MethodPost, target, "application/json", `{"p":[{},3]}`), 400, `event 1`},
		{"invalid UTF-8", req(http.MethodPost, target, "application/json", "{\"p\":[{\"x\":\"\xff\"}]}"), 400, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, nil, tt.req)
			if r.status != tt.status || !strings.Contains(r.body, tt.says) {
				t.Errorf("got %d %s, want %d saying %q", r.status, r.body, tt.status, tt.says)
			}
		})
	}

	// Every rejected body is kept whole, with its reason.
	f, err := os.ReadFile(rejected)
	if err != nil {
		t.Fatalf("rejected posts file: %v", err)
	}
	var kept []rejectedPost
	for line := range strings.SplitSeq(strings.TrimSpace(string(f)), "\n") {
		var p rejectedPost
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		kept = append(kept, p)
	}
	byReason := map[int]int{}
	for _, p := range kept {
		byReason[p.Status]++
		if p.Status == 400 && p.Body == "" && p.BodyBase64 == nil {
			t.Errorf("rejected post %s kept without its body", p.RequestID)
		}
	}
	if byReason[400] != 5 || byReason[415] != 1 {
		t.Errorf("kept %v rejected posts by status, want 5 of 400 and 1 of 415", byReason)
	}
}

func TestWebhookAllowlist(t *testing.T) {
	c := &consumer{}
	// 127.0.0.2 stands for Netcore; 127.0.0.1 is the test itself (the peer).
	target, _ := startWebhook(t, "allowed_ips: [ \"127.0.0.2, ::1\" ]", c)
	withXFF := func(xff string) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(`{"p":[{}]}`))
		r.Header.Set("Content-Type", "application/json")
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		return r
	}
	if r := do(t, nil, withXFF("")); r.status != http.StatusForbidden || !strings.Contains(r.body, "127.0.0.1") {
		t.Errorf("peer outside the allowlist: got %d %s, want 403 naming it", r.status, r.body)
	}
	if r := do(t, nil, withXFF("127.0.0.2")); r.status != http.StatusForbidden {
		t.Errorf("forged X-Forwarded-For from an untrusted peer: got %d, want 403", r.status)
	}
	if len(c.received()) != 0 {
		t.Error("a refused post reached the pipeline")
	}
}

func TestWebhookTrustedProxy(t *testing.T) {
	c := &consumer{}
	target, _ := startWebhook(t, "allowed_ips: [ 203.0.113.7 ]\ntrusted_proxies: [ 127.0.0.0/8 ]", c)
	post := func(xff string) int {
		r, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(`{"p":[{}]}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Forwarded-For", xff)
		return do(t, nil, r).status
	}
	if got := post("203.0.113.7"); got != http.StatusOK {
		t.Errorf("Netcore behind the proxy: got %d, want 200", got)
	}
	if got := post("203.0.113.7, 198.51.100.1"); got != http.StatusForbidden {
		t.Errorf("an allowed address prepended by a client: got %d, want 403", got)
	}
	if events := c.received(); len(events) != 1 || meta(events[0], "netcore_client_ip") != "203.0.113.7" {
		t.Errorf("want one event with netcore_client_ip 203.0.113.7, got %d", len(events))
	}
}

func TestWebhookRateLimit(t *testing.T) {
	c := &consumer{}
	target, _ := startWebhook(t, "rate_limit: netcore", c,
		"rate_limit_resources:\n  - label: netcore\n    local:\n      count: 1\n      interval: 1m\n")
	if r := postForm(t, target, `{"p":[{}]}`); r.status != http.StatusOK {
		t.Fatalf("first post: got %d, want 200", r.status)
	}
	r := postForm(t, target, `{"p":[{}]}`)
	if r.status != http.StatusTooManyRequests || r.retryAfter == "" || r.retryAfter == "0" {
		t.Errorf("second post: got %d Retry-After %q, want 429 with Retry-After", r.status, r.retryAfter)
	}
}

func TestWebhookTLS(t *testing.T) {
	dir := t.TempDir()
	cert := testkit.SelfSignedCert(t, dir)
	certFile, keyFile, pool := cert.CertFile, cert.KeyFile, cert.Pool
	c := &consumer{}
	target, _ := startWebhook(t, fmt.Sprintf("tls:\n    enabled: true\n    cert_file: %s\n    key_file: %s", certFile, keyFile), c)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(`{"p":[{}]}`))
	req.Header.Set("Content-Type", "application/json")
	if r := do(t, client, req); r.status != http.StatusOK {
		t.Errorf("over TLS: got %d %s, want 200", r.status, r.body)
	}
}

func TestWebhookRefusesToStartWithABadCertificate(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf, err := webhookInputSpec().ParseYAML(fmt.Sprintf("address: %s\ntls: { enabled: true, cert_file: %s, key_file: %s }", freeAddr(t), bad, bad), nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := newWebhookInputFromConfig(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close(context.Background())
	if err := in.Connect(context.Background()); err == nil || !strings.Contains(err.Error(), "TLS certificate") {
		t.Errorf("Connect: %v, want an error about the certificate", err)
	}
}

func TestWebhookConfigErrors(t *testing.T) {
	tests := map[string]string{
		"allowed_ips: []":                    "nobody could post",
		"allowed_ips: [ not-an-ip ]":         "not-an-ip",
		"trusted_proxies: [ 10.0.0.0/99 ]":   "10.0.0.0/99",
		"path: netcore":                      "must start with /",
		"tls: { enabled: true }":             "cert_file",
		"max_body_bytes: 0":                  "max_body_bytes",
		"inspect: { mask_fields: [] }":       "inspect.mask_fields: no field named",
		"inspect: { mask_fields: [ a..b ] }": "empty name between dots",
		// 5 times 10 MiB, 14.4 MB for 100,000 events, and the small posts' eighth.
		"max_body_bytes_in_flight: 70000000": "kept for small posts",
	}
	for conf, want := range tests {
		parsed, err := webhookInputSpec().ParseYAML(conf, nil)
		if err != nil {
			t.Fatalf("%s: %v", conf, err)
		}
		if _, err := webhookConfigFromParsed(parsed); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one saying %q", conf, err, want)
		}
	}
}
