package meiro

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/valyala/fasthttp"

	"github.com/netcore-connect/netcore-connect/internal/stage"
	"github.com/netcore-connect/netcore-connect/plugins/deadletter"
)

// The fields of meiro_http, as meiro_events' template sets them
// (output_meiro_events.yaml).
const (
	mhFieldURL             = "url"
	mhFieldHeaders         = "headers"
	mhFieldRootCAsFile     = "tls_root_cas_file"
	mhFieldMaxInFlight     = "max_in_flight"
	mhFieldTimeout         = "timeout"
	mhFieldRetries         = "retries"
	mhFieldRetryPeriod     = "retry_period"
	mhFieldMaxRetryBackoff = "max_retry_backoff"
	mhFieldBackoffOn       = "backoff_on"
	mhFieldDropOn          = "drop_on"
	mhFieldBatching        = "batching"
	mhFieldDeadLetterDir   = "dead_letter_dir"
	mhFieldMaxDeliveries   = "max_deliveries"
)

func meiroHTTPSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Categories("Network").
		Summary("POSTs each message to one URL over kept-alive HTTP/1.1 connections: the HTTP client under meiro_events.").
		Description(`
The output under `+"`meiro_events`"+`; use `+"`meiro_events`"+`, which sets it up for
Meiro Events. It does what Benthos's `+"`http_client`"+` output does for a POST, and words
failures as it does (`+"`unexpected response code (503)`"+`), on the fasthttp client: a
delivered event costs about 40% less CPU than through `+"`http_client`"+` and Go's net/http
client, which was most of what delivering an event cost (the drain scenario of
`+"`netcore-bench goals`"+`: 22–27 µs of CPU an event, against 35–45 µs).

With `+"`dead_letter_dir`"+` set, a message that Meiro Events refuses for good (400, 409, 410,
413, 415, 422: the event itself is wrong) is written there as a dead letter at once, without
quick retries, in the format of the `+"`dead_letter`"+` output (fsync'd, the error as its
reason), and acknowledged; so is, with `+"`max_deliveries`"+` above 0, a message that fails
once its `+"`nats_num_delivered`"+` metadata has reached it. The status is read from the
answer itself, never from the text of an error, so a body that quotes another status cannot
fake a refusal. Every other failure fails the message, to be tried again by the queue or
stream before this output.

A 2xx answer acknowledges the message. Any other answer, a timeout or a connection error
fails it, after `+"`retries`"+` quick retries: at once for a status in `+"`drop_on`"+`,
waiting `+"`retry_period`"+` otherwise, doubled up to `+"`max_retry_backoff`"+` for a status in
`+"`backoff_on`"+`. A request sent whole and not answered in time is worded
`+"`no answer within the timeout (10s), though the event may have arrived`"+`: the server may
still be working on the request, and may take the message all the same. Running out of time
before (connecting, through the proxy, in the TLS handshake, waiting for one of
`+"`max_in_flight`"+` connections, or writing to a server that does not read) is worded
`+"`not sent: ...`"+`, a connection error: the message did not arrive. A batch (from
`+"`batching`"+`) is sent message by message and fails at its first failed message. A
request whose kept-alive connection the server had closed (a failed write, or the
connection ending before a complete answer) is sent once more on a new one: at least once,
as every retry.

A proxy is taken from the environment as Go's net/http takes it (`+"`HTTPS_PROXY`"+`,
`+"`HTTP_PROXY`"+`, `+"`NO_PROXY`"+` or their lower-case names; loopback addresses go direct): an
`+"`http://`"+` proxy, through which requests are tunnelled with CONNECT (for `+"`http://`"+` URLs
too); any other kind of proxy is refused at start. HTTP/2 is not spoken. Redirects are not
followed: a 3xx fails the message, so that a POST is never turned into a GET; set `+"`url`"+`
to where it points. An answer's body is read up to 4 MiB (a 2xx with more still
acknowledges). Stopping waits for requests in flight, up to their `+"`timeout`"+`. A status line
of `+"`000`"+`, which only a broken server sends, is read as 200 by fasthttp.`).
		Fields(
			service.NewStringField(mhFieldURL).
				Description("Where to POST, `http://` or `https://`. Credentials belong in `headers`, never in the URL: it is part of every error."),
			service.NewInterpolatedStringMapField(mhFieldHeaders).
				Description("Request headers, interpolated per message.").
				Default(map[string]any{}),
			service.NewStringField(mhFieldRootCAsFile).
				Description("A PEM file of certificate authorities to trust for an https `url`, besides the system's. Empty trusts the system's only.").
				Default("").Advanced(),
			service.NewIntField(mhFieldMaxInFlight).
				Description("Requests in parallel, each on its own kept-alive connection.").
				Default(64),
			service.NewDurationField(mhFieldTimeout).
				Description("How long one request may take, from waiting for a connection to the end of the answer. A request that takes longer fails; once sent whole, the server may still take it.").
				Default("10s"),
			service.NewIntField(mhFieldRetries).
				Description("Quick retries of a failed request before the message fails.").
				Default(0).Advanced(),
			service.NewDurationField(mhFieldRetryPeriod).
				Description("The wait before a quick retry.").
				Default("200ms").Advanced(),
			service.NewDurationField(mhFieldMaxRetryBackoff).
				Description("The longest wait before a quick retry after a status in `backoff_on`.").
				Default("2s").Advanced(),
			service.NewIntListField(mhFieldBackoffOn).
				Description("Statuses retried with a wait that doubles each time.").
				Default([]any{429}).Advanced(),
			service.NewIntListField(mhFieldDropOn).
				Description("Statuses that fail the message at once, without quick retries.").
				Default([]any{}).Advanced(),
			service.NewBatchPolicyField(mhFieldBatching),
			service.NewStringField(mhFieldDeadLetterDir).
				Description("The folder where messages refused for good are kept as dead letters, and acknowledged. Empty fails them as any other failure.").
				Default(""),
			service.NewIntField(mhFieldMaxDeliveries).
				Description("With `dead_letter_dir` set, the deliveries (the `nats_num_delivered` metadata of the `nats_jetstream` input) after which a message that still fails becomes a dead letter. 0 never dead-letters for that reason.").
				Default(0).Advanced(),
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
			if err != nil {
				return nil, service.BatchPolicy{}, 0, err
			}
			out.log = mgr.Logger()
			if c.deadLetterDir != "" {
				out.deadLetters = deadletter.NewKeeper(c.deadLetterDir, stage.MetaPrefix, mgr)
			}
			return out, c.batching, c.maxInFlight, nil
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
	deadLetterDir        string
	maxDeliveries        int
}

func meiroHTTPConfigFromParsed(conf *service.ParsedConfig) (c meiroHTTPConfig, err error) {
	if c.url, err = conf.FieldString(mhFieldURL); err != nil {
		return c, err
	}
	if c.headers, err = conf.FieldInterpolatedStringMap(mhFieldHeaders); err != nil {
		return c, err
	}
	if c.rootCAsFile, err = conf.FieldString(mhFieldRootCAsFile); err != nil {
		return c, err
	}
	if c.maxInFlight, err = conf.FieldInt(mhFieldMaxInFlight); err != nil {
		return c, err
	}
	if c.retries, err = conf.FieldInt(mhFieldRetries); err != nil {
		return c, err
	}
	if c.timeout, err = conf.FieldDuration(mhFieldTimeout); err != nil {
		return c, err
	}
	if c.retryPeriod, err = conf.FieldDuration(mhFieldRetryPeriod); err != nil {
		return c, err
	}
	if c.maxRetryBackoff, err = conf.FieldDuration(mhFieldMaxRetryBackoff); err != nil {
		return c, err
	}
	if c.backoffOn, err = conf.FieldIntList(mhFieldBackoffOn); err != nil {
		return c, err
	}
	if c.dropOn, err = conf.FieldIntList(mhFieldDropOn); err != nil {
		return c, err
	}
	if c.batching, err = conf.FieldBatchPolicy(mhFieldBatching); err != nil {
		return c, err
	}
	if c.deadLetterDir, err = conf.FieldString(mhFieldDeadLetterDir); err != nil {
		return c, err
	}
	if c.maxDeliveries, err = conf.FieldInt(mhFieldMaxDeliveries); err != nil {
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
	conf        meiroHTTPConfig
	client      *fasthttp.HostClient
	deadLetters *deadletter.Keeper // nil without dead_letter_dir
	log         *service.Logger
}

func newMeiroHTTP(conf meiroHTTPConfig) (*meiroHTTP, error) {
	u, err := url.Parse(conf.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url %q: want http://host/path or https://host/path", conf.url)
	}
	isTLS := u.Scheme == "https"
	client := &fasthttp.HostClient{
		Addr:          addrWithPort(u),
		IsTLS:         isTLS,
		Name:          "netcore-connect",
		DialDualStack: true,
		MaxConns:      conf.maxInFlight,
		// A request waits for a connection rather than failing while all are
		// busy; its timeout bounds the wait.
		MaxConnWaitTimeout: conf.timeout,
		// Every read and write is bounded, the TLS handshake's too: without
		// these fasthttp runs the handshake in the first write, with no
		// deadline on reading the server's part, and a server that accepts
		// and never answers would hold the request for ever.
		ReadTimeout:  conf.timeout,
		WriteTimeout: conf.timeout,
		// Servers close idle connections after a few seconds (Node and
		// uvicorn 5 s, gunicorn 2 s), which fasthttp learns only when a
		// request fails on one: idle connections are dropped sooner, the
		// last used is taken first, and a request that found its connection
		// closed is sent once more on a new one.
		MaxIdleConnDuration: maxIdle,
		ConnPoolStrategy:    fasthttp.LIFO,
		// The path as written: fasthttp would collapse "//" and decode "%2F".
		DisablePathNormalizing: true,
		MaxResponseBodySize:    maxAnswerBytes,
	}
	client.RetryIfErr = resendOnClosedConnection(client)
	dial, err := proxyDial(u, conf.timeout)
	if err != nil {
		return nil, err
	}
	client.DialTimeout = tellingUnwritten(dial)
	if isTLS {
		if client.TLSConfig, err = tlsConfig(conf.rootCAsFile, u.Hostname()); err != nil {
			return nil, err
		}
	}
	return &meiroHTTP{conf: conf, client: client}, nil
}

func (o *meiroHTTP) Connect(context.Context) error {
	if o.deadLetters != nil {
		return o.deadLetters.Prepare()
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
		if attempt == o.conf.retries || slices.Contains(o.conf.dropOn, status) || o.deadLetters != nil && stage.RefusedForGood(err) {
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
// answer) and an error worded as http_client words it, a *stage.StatusError
// when there was an answer.
func (o *meiroHTTP) do(ctx context.Context, req *fasthttp.Request, resp *fasthttp.Response) (int, error) {
	deadline := time.Now().Add(o.conf.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	// Reset, the answer's remote address says whether this call had a
	// connection: DoDeadline returns at once, without resetting, when the
	// deadline has passed, and resp still holds the last attempt's.
	resp.Reset()
	err := o.client.DoDeadline(req, resp, deadline)
	status := resp.StatusCode()
	switch {
	case err != nil && !errors.Is(err, fasthttp.ErrBodyTooLarge):
		return 0, o.failure(err, resp.RemoteAddr() != nil)
	case status >= 200 && status <= 299:
		// Past the body read too: failing an accepted event would send it
		// again and again. (The status was read: that error comes after.)
		return status, nil
	}
	return status, &stage.StatusError{Status: status, Err: fmt.Errorf("%s: HTTP request returned unexpected response code (%d): %s, Error: %s",
		o.conf.url, status, fasthttp.StatusMessage(status), excerpt(resp.Body()))}
}

// failure words err, the failure of a request, for the operator and the
// queue. fasthttp reports running out of time as the same ErrTimeout
// whether it was waiting for a connection, writing the request or waiting
// for the answer, and a dial's as its own ErrDialTimeout or as net's,
// whichever deadline fires first; so what was sent is told by whether the
// request had a connection (connected: dial, proxy CONNECT and TLS
// handshake done) and was written whole (not an unwrittenError).
func (o *meiroHTTP) failure(err error, connected bool) error {
	var unwritten *unwrittenError
	switch {
	case errors.As(err, &unwritten):
		return fmt.Errorf("%s: not sent: the request could not be written whole within the timeout (%s), the server not reading it: %w", o.conf.url, o.conf.timeout, err)
	case !timedOut(err):
		return fmt.Errorf("%s: %w", o.conf.url, err)
	case !connected:
		return fmt.Errorf("%s: not sent: no connection within the timeout (%s): the dial, proxy or TLS handshake took longer, or all max_in_flight connections stayed busy: %w", o.conf.url, o.conf.timeout, err)
	}
	// A stage.TimeoutError, which the queue tells by stage.IsTimeout: a
	// request sent and unanswered may still be running at Meiro Events.
	return &stage.TimeoutError{Err: fmt.Errorf("%s: %s (%s), though the event may have arrived: %w", o.conf.url, stage.TimedOut, o.conf.timeout, err)}
}

// timedOut says whether err is running out of time.
func timedOut(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout() || errors.Is(err, fasthttp.ErrDialTimeout) || errors.Is(err, fasthttp.ErrTLSHandshakeTimeout)
}

// excerpt is the start of an answer's body, for an error, its parentheses
// made brackets: a gateway's 503 that quotes a refusal from behind it
// ("unexpected response code (422)") must not read as a refusal of its own
// to the operator reading the log (stages decide by the status itself,
// carried by stage.StatusError).
func excerpt(body []byte) string {
	const most = 256
	if len(body) > most {
		return noParentheses.Replace(string(body[:most])) + "…"
	}
	return noParentheses.Replace(string(body))
}

var noParentheses = strings.NewReplacer("(", "[", ")", "]")

func (o *meiroHTTP) Close(context.Context) error {
	o.client.CloseIdleConnections()
	return nil
}
