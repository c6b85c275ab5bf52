package meiro

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpproxy"
)

func meiroHTTPSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Categories("Network").
		Summary("POSTs each message to one URL over kept-alive HTTP/1.1 connections: the HTTP client under meiro_events.").
		Description(`
The part of `+"`meiro_events`"+` that talks HTTP; use `+"`meiro_events`"+`, which
adds the dead letters and the hand-back to the queue. It does what Benthos's `+"`http_client`"+`
output does for a POST, and answers failures with the same wording (`+"`unexpected response code (503)`"+`),
on the fasthttp client: a request costs about half the CPU of Go's net/http client, which
is most of what delivering an event costs (BENCHMARKS.md, "Delivery on fasthttp").

A 2xx answer acknowledges the message. Any other answer, a timeout or a connection error
fails it, after `+"`retries`"+` quick retries: at once for a status in `+"`drop_on`"+`,
waiting `+"`retry_period`"+` otherwise, doubled up to `+"`max_retry_backoff`"+` for a status in
`+"`backoff_on`"+`. A batch (from `+"`batching`"+`) is sent message by message and fails at its
first failed message.

Proxies are taken from the environment as Go programs take them (`+"`HTTPS_PROXY`"+`,
`+"`HTTP_PROXY`"+`, `+"`NO_PROXY`"+`), HTTP and SOCKS5 both. HTTP/2 is not spoken. Redirects
are not followed: a 3xx fails the message, so that a POST is never turned into a GET;
set `+"`url`"+` to where it points. An answer's body is read up to 4 MiB; a longer one fails
the request.`).
		Fields(
			service.NewStringField("url").
				Description("Where to POST, `http://` or `https://`. Credentials belong in `headers`, never in the URL: it is part of every error."),
			service.NewInterpolatedStringMapField("headers").
				Description("Request headers, interpolated per message.").
				Default(map[string]any{}),
			service.NewStringField("tls_root_cas_file").
				Description("A PEM file of certificate authorities to trust for an https `url`, besides the system's. Empty trusts the system's only.").
				Default("").Advanced(),
			service.NewIntField("max_in_flight").
				Description("Requests in parallel, each on its own kept-alive connection.").
				Default(64),
			service.NewDurationField("timeout").
				Description("How long one request may take, from waiting for a connection to the end of the answer.").
				Default("10s"),
			service.NewIntField("retries").
				Description("Quick retries of a failed request before the message fails.").
				Default(0).Advanced(),
			service.NewDurationField("retry_period").
				Description("The wait before a quick retry.").
				Default("200ms").Advanced(),
			service.NewDurationField("max_retry_backoff").
				Description("The longest wait before a quick retry after a status in `backoff_on`.").
				Default("2s").Advanced(),
			service.NewIntListField("backoff_on").
				Description("Statuses retried with a wait that doubles each time.").
				Default([]any{429}).Advanced(),
			service.NewIntListField("drop_on").
				Description("Statuses that fail the message at once, without quick retries.").
				Default([]any{}).Advanced(),
			service.NewBatchPolicyField("batching"),
		).
		Example("A collect endpoint", "", `
output:
  meiro_http:
    url: https://meiro.example.com/collect/netcore
    headers:
      Content-Type: application/json
      Authorization: Bearer ${MEIRO_TOKEN}
    backoff_on: [ 429, 500, 502, 503, 504 ]
    drop_on: [ 400, 422 ]
`)
}

func init() {
	service.MustRegisterBatchOutput("meiro_http", meiroHTTPSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
			c, err := meiroHTTPConfigFromParsed(conf)
			if err != nil {
				return nil, service.BatchPolicy{}, 0, err
			}
			out, err := newMeiroHTTP(c)
			return out, c.batching, c.maxInFlight, err
		})
}

type meiroHTTPConfig struct {
	url                  string
	headers              map[string]*service.InterpolatedString
	rootCAsFile          string
	maxInFlight, retries int
	timeout, retryPeriod time.Duration
	maxRetryBackoff      time.Duration
	backoffOn, dropOn    []int
	batching             service.BatchPolicy
}

func meiroHTTPConfigFromParsed(conf *service.ParsedConfig) (c meiroHTTPConfig, err error) {
	if c.url, err = conf.FieldString("url"); err != nil {
		return c, err
	}
	if c.headers, err = conf.FieldInterpolatedStringMap("headers"); err != nil {
		return c, err
	}
	if c.rootCAsFile, err = conf.FieldString("tls_root_cas_file"); err != nil {
		return c, err
	}
	if c.maxInFlight, err = conf.FieldInt("max_in_flight"); err != nil {
		return c, err
	}
	if c.retries, err = conf.FieldInt("retries"); err != nil {
		return c, err
	}
	if c.timeout, err = conf.FieldDuration("timeout"); err != nil {
		return c, err
	}
	if c.retryPeriod, err = conf.FieldDuration("retry_period"); err != nil {
		return c, err
	}
	if c.maxRetryBackoff, err = conf.FieldDuration("max_retry_backoff"); err != nil {
		return c, err
	}
	if c.backoffOn, err = conf.FieldIntList("backoff_on"); err != nil {
		return c, err
	}
	if c.dropOn, err = conf.FieldIntList("drop_on"); err != nil {
		return c, err
	}
	if c.batching, err = conf.FieldBatchPolicy("batching"); err != nil {
		return c, err
	}
	if c.maxInFlight < 1 || c.timeout <= 0 || c.retries < 0 {
		return c, errors.New("max_in_flight and timeout must be positive, retries 0 or more")
	}
	return c, nil
}

// maxAnswerBytes bounds the body of an answer read into memory: Meiro Events
// answers with a few bytes.
const maxAnswerBytes = 4 << 20

type meiroHTTP struct {
	conf   meiroHTTPConfig
	client *fasthttp.HostClient
}

func newMeiroHTTP(conf meiroHTTPConfig) (*meiroHTTP, error) {
	u, err := url.Parse(conf.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url %q: want http://host/path or https://host/path", conf.url)
	}
	isTLS := u.Scheme == "https"
	client := &fasthttp.HostClient{
		Addr:     addrWithPort(u),
		IsTLS:    isTLS,
		Name:     "netcore-connect",
		MaxConns: conf.maxInFlight,
		// A request waits for a connection rather than failing while all are
		// busy; its timeout bounds the wait.
		MaxConnWaitTimeout:  conf.timeout,
		MaxResponseBodySize: maxAnswerBytes,
	}
	proxies := &fasthttpproxy.Dialer{DialDualStack: true, Timeout: conf.timeout, ConnectTimeout: conf.timeout}
	if client.Dial, err = proxies.GetDialFuncForTLS(true, isTLS); err != nil {
		return nil, fmt.Errorf("the proxy from the environment (HTTPS_PROXY, HTTP_PROXY): %w", err)
	}
	if isTLS {
		if client.TLSConfig, err = tlsConfig(conf.rootCAsFile, u.Hostname()); err != nil {
			return nil, err
		}
	}
	return &meiroHTTP{conf: conf, client: client}, nil
}

// addrWithPort is the host:port of u, with the scheme's port if it has none.
func addrWithPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return u.Host + ":443"
	}
	return u.Host + ":80"
}

// tlsConfig trusts the system's authorities and those in rootCAsFile.
func tlsConfig(rootCAsFile, serverName string) (*tls.Config, error) {
	conf := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if rootCAsFile == "" {
		return conf, nil
	}
	pem, err := os.ReadFile(rootCAsFile)
	if err != nil {
		return nil, fmt.Errorf("tls_root_cas_file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool() // none to be had here: trust the file's alone
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls_root_cas_file %s holds no PEM certificate", rootCAsFile)
	}
	conf.RootCAs = pool
	return conf, nil
}

func (o *meiroHTTP) Connect(context.Context) error { return nil }

// WriteBatch sends each message in turn and fails at the first that fails,
// as http_client does.
func (o *meiroHTTP) WriteBatch(ctx context.Context, batch service.MessageBatch) error {
	for _, msg := range batch {
		if err := o.send(ctx, msg); err != nil {
			return err
		}
	}
	return nil
}

// send POSTs msg, with the quick retries.
func (o *meiroHTTP) send(ctx context.Context, msg *service.Message) error {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	if err := o.request(req, msg); err != nil {
		return err
	}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	wait := o.conf.retryPeriod
	for attempt := 0; ; attempt++ {
		status, err := o.do(ctx, req, resp)
		if err == nil {
			return nil
		}
		if attempt == o.conf.retries || slices.Contains(o.conf.dropOn, status) {
			return err
		}
		if slices.Contains(o.conf.backoffOn, status) && attempt > 0 {
			wait = min(2*wait, o.conf.maxRetryBackoff)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (stopped while waiting to retry: %w)", err, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// request fills req with the POST of msg.
func (o *meiroHTTP) request(req *fasthttp.Request, msg *service.Message) error {
	body, err := msg.AsBytes()
	if err != nil {
		return err
	}
	req.SetRequestURI(o.conf.url)
	req.Header.SetMethod(fasthttp.MethodPost)
	for name, value := range o.conf.headers {
		v, err := value.TryString(msg)
		if err != nil {
			return fmt.Errorf("header %s: %w", name, err)
		}
		req.Header.Set(name, v)
	}
	req.SetBodyRaw(body)
	return nil
}

// do sends req once: nil for a 2xx answer, else the status (0 without an
// answer) and an error worded as http_client words it.
func (o *meiroHTTP) do(ctx context.Context, req *fasthttp.Request, resp *fasthttp.Response) (int, error) {
	deadline := time.Now().Add(o.conf.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := o.client.DoDeadline(req, resp, deadline); err != nil {
		return 0, fmt.Errorf("%s: %w", o.conf.url, err)
	}
	status := resp.StatusCode()
	if status >= 200 && status <= 299 {
		return status, nil
	}
	return status, fmt.Errorf("%s: HTTP request returned unexpected response code (%d): %s, Error: %s",
		o.conf.url, status, fasthttp.StatusMessage(status), excerpt(resp.Body()))
}

// excerpt is the start of an answer's body, for an error.
func excerpt(body []byte) string {
	const most = 256
	if len(body) > most {
		return string(body[:most]) + "…"
	}
	return string(body)
}

func (o *meiroHTTP) Close(context.Context) error {
	o.client.CloseIdleConnections()
	return nil
}
