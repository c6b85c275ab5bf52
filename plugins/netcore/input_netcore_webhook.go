package netcore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/catalog"
	"github.com/netcore-connect/netcore-connect/internal/inspector"
	"github.com/netcore-connect/netcore-connect/internal/quarantine"
	"github.com/netcore-connect/netcore-connect/internal/stage"
)

const (
	wiFieldAddress              = "address"
	wiFieldPath                 = "path"
	wiFieldAllowedIPs           = "allowed_ips"
	wiFieldTrustedProxies       = "trusted_proxies"
	wiFieldToken                = "token"
	wiFieldTokenHeader          = "token_header"
	wiFieldMaxBodyBytes         = "max_body_bytes"
	wiFieldReadHeaderTimeout    = "read_header_timeout"
	wiFieldReadTimeout          = "read_timeout"
	wiFieldWriteTimeout         = "write_timeout"
	wiFieldIdleTimeout          = "idle_timeout"
	wiFieldAckTimeout           = "ack_timeout"
	wiFieldRetryAfter           = "retry_after"
	wiFieldRateLimit            = "rate_limit"
	wiFieldTLS                  = "tls"
	wiFieldTLSEnabled           = "enabled"
	wiFieldTLSCertFile          = "cert_file"
	wiFieldTLSKeyFile           = "key_file"
	wiFieldRejectedFile         = "rejected_file"
	wiFieldRejectedMaxBytes     = "rejected_max_bytes"
	wiFieldLogPosts             = "log_posts"
	wiFieldMaxEventsPerPost     = "max_events_per_post"
	wiFieldMaxInFlight          = "max_in_flight"
	wiFieldMaxBodyBytesInFlight = "max_body_bytes_in_flight"
	wiFieldInspect              = "inspect"
	wiFieldInspectAddress       = "address"
	wiFieldInspectPosts         = "posts"
	wiFieldInspectMask          = "mask_personal"
	wiFieldInspectMaskFields    = "mask_fields"
)

func webhookInputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Network").
		Summary("Receives Netcore CE journey webhooks over HTTP and answers each post only once the pipeline has taken responsibility for its events.").
		Description(`
Netcore posts batches as `+"`application/x-www-form-urlencoded`"+` with one field, `+"`data`"+`, whose value is JSON of the form `+"`{\"<panel_name>\": [event, ...], ...}`"+`. A raw JSON body (`+"`application/json`"+`) is taken too, and a body without a content type is sniffed. A body with `+"`Content-Encoding: gzip`"+` or `+"`deflate`"+` is decompressed first, at most `+"`max_body_bytes`"+` of it; any other encoding is answered 415 naming it. A data field that starts with a raw `+"`{`"+` (or `+"`[`"+`) was not form-encoded (an encoder writes `+"`%7B`"+`): it is taken as the JSON it is, byte for byte, up to where that JSON ends (its `+"`+`"+`, `+"`%XX`"+` and `+"`&`"+` kept as sent), followed only by `+"`&`"+` and other fields; any other value is form-decoded.

Each request is checked in this order: client address (the socket peer, or, when the peer is one of `+"`trusted_proxies`"+`, the first address in `+"`X-Forwarded-For`"+` read from the right that is not a trusted proxy) against `+"`allowed_ips`"+`; the `+"`token`"+`, when set (not for HEAD and GET); path; method; rate limit; size; content type; then the body is decoded and validated once. Each accepted post becomes one message whose body is the JSON of the data field; the `+"`netcore_explode`"+` processor splits it into events without decoding it again.

== Answers

- 200: the pipeline acknowledged the post (with a disk buffer: every event is on disk). The body is JSON with the number of events and the request id.
- 200 for the URL check senders make when a URL is saved: a HEAD or GET (a line of text saying this is a Netcore webhook receiver), and an empty post (no body unless declared JSON, `+"`data=`"+` with nothing, an empty array or object), which stores nothing and is counted in `+"`netcore_empty_posts_total`"+`. Only to clients in `+"`allowed_ips`"+`.
- 401: `+"`token`"+` is set and the post carries none, or a wrong one; answered before the body is read.
- 400: the body is not a Netcore post; the message says exactly what is wrong (invalid percent-encoding, invalid JSON or UTF-8, a top level that is not an object, a panel that is not an array, an event that is not an object, no data field).
- 403: the client address is not in `+"`allowed_ips`"+`. 408: the body did not arrive whole within `+"`read_timeout`"+`. 404: another path. 405: another method than POST, GET or HEAD. 413: a body over `+"`max_body_bytes`"+`, or a post of more than `+"`max_events_per_post`"+` events. 415: a content type that is neither a form nor JSON.
- 429 with `+"`Retry-After`"+`: the `+"`rate_limit`"+` resource refused the post.
- 503 with `+"`Retry-After`"+`: the pipeline did not store the post (it failed, was full, did not answer within `+"`ack_timeout`"+`), `+"`max_in_flight`"+` posts are already being stored, or the receiver is shutting down.

Every answer carries an `+"`X-Request-Id`"+` header, also found in the logs and in the message metadata.

== Delivery guarantees

A 200 is sent only after the pipeline acknowledged the post, never before. With no buffer, that is when the output accepted every event; with a disk buffer, when every event is stored. After a 503 for an ack timeout the post may still be delivered later, so a sender that retries can cause repeats: use a buffer that removes them.

Rejected posts (400, 413, 415) are logged with a short excerpt and, when `+"`rejected_file`"+` is set, kept whole in that file as JSON lines, so nothing a sender posts vanishes without a trace.

== Metadata

Each message carries `+"`netcore_client_ip`"+`, `+"`netcore_request_id`"+` and `+"`netcore_received_at`"+` (RFC 3339, UTC).`).
		Fields(
			service.NewStringField(wiFieldAddress).
				Description("The address to listen on, `host:port`.").
				Default("0.0.0.0:8080"),
			service.NewStringField(wiFieldPath).
				Description("The path Netcore posts to. Other paths are answered 404.").
				Default("/netcore"),
			service.NewStringListField(wiFieldAllowedIPs).
				Description("IP addresses and CIDR prefixes, IPv4 or IPv6, allowed to post; any other client gets 403. An entry may hold several separated by commas, so that one environment variable can fill the list. IPv4-mapped IPv6 clients are matched as IPv4. The default admits loopback only; to admit every address, list `0.0.0.0/0` and `::/0`.").
				Example([]string{"127.0.0.1/8", "::1"}).
				Example([]string{"${NETCORE_ALLOWED_IPS}"}).
				Default([]string{"127.0.0.0/8", "::1"}),
			service.NewStringListField(wiFieldTrustedProxies).
				Description("CIDR prefixes of the reverse proxies or load balancers in front of this receiver. Only when the socket peer is one of them is `X-Forwarded-For` read to find the client; from any other peer it is ignored, so it cannot be forged. Comma-separated entries are split as for `allowed_ips`.").
				Example([]string{"10.0.0.0/8"}).
				Default([]string{}),
			service.NewStringField(wiFieldToken).
				Description("A shared secret every post must carry, in the `token_header` header or as the `token` query parameter of the URL Netcore is given (prefer the header: query strings end up in proxy and CDN access logs); a post without it, or with another, is answered 401 before its body is read. Two tokens separated by a comma are both taken, to change it without downtime. Each at least 16 characters of letters, digits, `-`, `.`, `_` and `~`. It is never logged or shown (URLs are logged with it replaced). Empty: no token, the allowlist alone keeps others out.").
				Example("${NETCORE_WEBHOOK_TOKEN:}").
				Secret().
				Default(""),
			service.NewStringField(wiFieldTokenHeader).
				Description("The header that carries the `token`.").
				Advanced().
				Default(defaultTokenHeader),
			service.NewIntField(wiFieldMaxBodyBytes).
				Description("The largest body accepted, in bytes; a larger one is answered 413 without being read.").
				Default(10<<20),
			service.NewIntField(wiFieldMaxEventsPerPost).
				Description("The most events one post may hold; a post with more is answered 413. It bounds the memory one post can take (a body of tiny events explodes into many messages).").
				Default(100_000),
			service.NewIntField(wiFieldMaxInFlight).
				Description("The most posts being read, checked and stored at once; beyond it a post is answered 503 with `Retry-After` at once, so that a flood cannot exhaust memory.").
				Advanced().
				Default(1024),
			service.NewIntField(wiFieldMaxBodyBytesInFlight).
				Description("The most bytes that posts being read and stored hold at once, across all connections, from the first byte read to the answer: the body, the data decoded from it (a form's is a copy), the queue's record of its events and the copy written to disk, about 3.5 times a form post's body. A body of known length takes four times its length before a byte is read, and what its post holds once it is decoded; past the budget a post is answered 503 with `Retry-After`. The last eighth is kept for posts holding at most 1 MiB (bodies of some 250 KB), so that big posts never shut small ones out. Must leave room for the largest post besides that eighth (five times `max_body_bytes`, for a compressed post, plus 144 bytes for each of `max_events_per_post`). Raise `GOMEMLIMIT` with it.").
				Advanced().
				Default(256<<20),
			service.NewDurationField(wiFieldReadHeaderTimeout).
				Description("How long a client may take to send its headers. Cuts connections that trickle headers in (slowloris).").
				Advanced().
				Default("5s"),
			service.NewDurationField(wiFieldReadTimeout).
				Description("How long a client may take to send a whole request, body included.").
				Advanced().
				Default("20s"),
			service.NewDurationField(wiFieldWriteTimeout).
				Description("How long after its headers a request may take until its answer is written. Keep it above `read_timeout` plus `ack_timeout`.").
				Advanced().
				Default("35s"),
			service.NewDurationField(wiFieldIdleTimeout).
				Description("How long an idle keep-alive connection stays open.").
				Advanced().
				Default("30s"),
			service.NewDurationField(wiFieldAckTimeout).
				Description("How long to wait for the pipeline to acknowledge a post before answering 503. The answer is exact with a `disk_queue` buffer or a `nats_jetstream` output after the input: a post they began to store by then is waited for (a write and an fsync; for a stalled disk at most 30 s more, and never past `write_timeout`) and answered by its result, and one they had not begun is never stored, so Netcore is not told to resend what is stored.").
				Default("10s"),
			service.NewDurationField(wiFieldRetryAfter).
				Description("The `Retry-After` sent with 503 answers.").
				Advanced().
				Default("5s"),
			service.NewStringField(wiFieldRateLimit).
				Description("An optional `rate_limit` resource consulted once per post; a refused post is answered 429 with `Retry-After`.").
				Optional(),
			service.NewObjectField(wiFieldTLS,
				service.NewBoolField(wiFieldTLSEnabled).Description("Serve HTTPS instead of HTTP.").Default(false),
				service.NewStringField(wiFieldTLSCertFile).Description("PEM certificate (chain) file.").Default(""),
				service.NewStringField(wiFieldTLSKeyFile).Description("PEM private key file.").Default(""),
			).Description("Serve HTTPS. Netcore can post to an https URL; terminate TLS here when no proxy does it.").
				Advanced(),
			service.NewStringField(wiFieldRejectedFile).
				Description("A file where rejected posts (400, 413, 415) are appended whole as JSON lines, with the reason, client and request id. Empty keeps them in the logs only, as excerpts.").
				Example("${NETCORE_DATA_DIR:./data}/rejected/posts.jsonl").
				Default(""),
			service.NewIntField(wiFieldRejectedMaxBytes).
				Description("The size at which the rejected-posts file is rotated to `NAME.1`; at most twice this is kept.").
				Advanced().
				Default(100<<20),
			service.NewObjectField(wiFieldInspect,
				service.NewStringField(wiFieldInspectAddress).
					Description("Where the inspector listens, `host:port`; empty turns it off. Only loopback clients and those in `allowed_ips` may open it.").
					Default(""),
				service.NewIntField(wiFieldInspectPosts).
					Description("How many of the latest posts it keeps (in memory; events of posts over 256 KiB are not kept).").
					Default(100),
				service.NewBoolField(wiFieldInspectMask).
					Description("Mask personal fields (`mask_fields`) when showing events, and in the refusals and errors shown with them, which may quote the event (Meiro Events answering 400 with the event in its body).").
					Default(true),
				service.NewStringListField(wiFieldInspectMaskFields).
					Description("The fields masked: names, matched at any depth and in any case (`identity` in `event_params`, or in a list of them), or dotted paths (`custom_params.user_email`); a field holding an object is masked whole. An entry may list several, separated by commas. In a refusal, the value an event had in a masked field (4 bytes or more) is masked wherever it appears, and so is the value of every masked field found in JSON quoted there.").
					Example([]string{"identity", "email", "att_params", "custom_params.user_email"}).
					Default(inspector.DefaultMaskFields),
			).Description("A small read-only web page listing the latest posts received (time, client, status, panels, event counts), each openable to show its events: for checking what Netcore sends."),
			service.NewBoolField(wiFieldLogPosts).
				Description("Log one line per accepted post (request id, client, panels, event counts, bytes, status). Rejected posts are always logged.").
				Default(true),
		).
		Fields(quarantineFields()...).
		Field(catalogField()).
		Example("Receive from Netcore behind a load balancer", "", `
input:
  netcore_webhook:
    address: 0.0.0.0:8080
    path: /netcore
    allowed_ips: [ "${NETCORE_ALLOWED_IPS}" ]
    trusted_proxies: [ 10.0.0.0/8 ]
    rejected_file: ./data/rejected/posts.jsonl
  processors:
    - netcore_explode: {}
`)
}

func init() {
	service.MustRegisterBatchInput("netcore_webhook", webhookInputSpec(),
		func(conf *service.ParsedConfig, res *service.Resources) (service.BatchInput, error) {
			return newWebhookInputFromConfig(conf, res)
		})
}

// webhookInput serves Netcore's posts and hands each accepted one to the
// pipeline through posts, where ReadBatch picks it up.
type webhookInput struct {
	conf     webhookConfig
	res      *service.Resources
	log      *service.Logger
	rejected *rejectedFile

	posts    chan handoff
	inFlight chan struct{} // a slot per post being handled
	bodies   bodyBudget    // bytes of bodies held by requests

	panels     labelSet // panel label of mReceived
	refusals   *refusalLines
	mPosts     *service.MetricCounter // by status
	mReceived  *service.MetricCounter // events of stored posts, by panel
	mPostBytes *service.MetricTimer   // body sizes, recorded as a timing
	mAck       *service.MetricTimer   // receipt to answer, for posts handed to the pipeline
	mEmpty     *service.MetricCounter // posts of no events, not stored

	quarantine        *quarantine.Store // nil: none opened
	quarantineServing sync.WaitGroup    // the goroutine serving its requests
	strangers         chan struct{}     // a slot per stranger's post being handled
	clients           labelSet          // client label of mQuarantined
	mQuarantined      *service.MetricCounter
	mQuarantineBytes  *service.MetricGauge
	stopping          chan struct{}
	stopOnce          sync.Once

	inspector *inspector.Inspector // nil when off
	learner   *catalog.Learner     // nil: no catalog

	mu      sync.Mutex
	servers []*http.Server // the receiver's, then the inspector's
}

// handoff carries one post to the pipeline and its acknowledgement back.
type handoff struct {
	batch service.MessageBatch
	acked chan error // buffered: the ack never blocks on a handler gone away
}

func newWebhookInputFromConfig(conf *service.ParsedConfig, res *service.Resources) (*webhookInput, error) {
	c, err := webhookConfigFromParsed(conf)
	if err != nil {
		return nil, err
	}
	if c.rateLimit != "" && !res.HasRateLimit(c.rateLimit) {
		return nil, fmt.Errorf("rate_limit resource %q is not defined", c.rateLimit)
	}
	w := &webhookInput{
		conf:     c,
		res:      res,
		log:      res.Logger(),
		posts:    make(chan handoff),
		inFlight: make(chan struct{}, c.maxInFlight),
		// Strangers (quarantine mode) may hold an eighth of the slots, so
		// that they cannot keep the allowed senders' posts out.
		strangers: make(chan struct{}, max(1, c.maxInFlight/8)),
		bodies:    bodyBudget{limit: c.maxBodyBytesInFlight},
		refusals:  newRefusalLines(),
		stopping:  make(chan struct{}),

		mPosts:     res.Metrics().NewCounter(stage.MetricPosts, "status"),
		mReceived:  res.Metrics().NewCounter(stage.MetricEventsReceived, "panel"),
		mPostBytes: res.Metrics().NewTimer(stage.MetricPostBytes),
		mAck:       res.Metrics().NewTimer(stage.MetricAck),
		mEmpty:     res.Metrics().NewCounter(stage.MetricEmptyPosts),

		panels:           labelSet{max: maxPanelLabels},
		clients:          labelSet{max: maxClientLabels},
		mQuarantined:     res.Metrics().NewCounter(stage.MetricQuarantinedPosts, "client"),
		mQuarantineBytes: res.Metrics().NewGauge(stage.MetricQuarantineBytes),
	}
	// Exported at 0 from the start, so that an alert on it (or a check
	// that a sender's empty test post arrived) needs no first increment.
	w.mEmpty.Incr(0)
	w.mQuarantineBytes.Set(0)
	if c.rejectedFile != "" {
		w.rejected = newRejectedFile(c.rejectedFile, c.rejectedMaxBytes)
	}
	if c.inspectAddress != "" {
		w.inspector = newInspector(c.inspectPosts, c.inspectMask, c.allowed, c.trustedProxies, w.quarantinedClients)
	}
	return w, nil
}

// Connect starts the HTTP server, and the inspector's when it is on.
// Errors that will not go away on their own (a port in use, unreadable
// certificates) are reported here, at start.
func (w *webhookInput) Connect(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.servers) > 0 {
		return nil
	}
	if w.quarantine == nil {
		if err := w.openQuarantine(); err != nil {
			return err
		}
	}
	w.openCatalog()
	receiver := w.newServer(w)
	receiver.ReadTimeout, receiver.WriteTimeout = w.conf.readTimeout, w.conf.writeTimeout
	scheme := "http"
	if w.conf.tlsEnabled {
		// Loaded here so that a bad certificate stops the start.
		cert, err := tls.LoadX509KeyPair(w.conf.tlsCertFile, w.conf.tlsKeyFile)
		if err != nil {
			return fmt.Errorf("loading TLS certificate: %w", err)
		}
		receiver.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		scheme = "https"
	}
	ln, err := net.Listen("tcp", w.conf.address)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", w.conf.address, err)
	}
	serve := func() error { return receiver.Serve(ln) }
	if w.conf.tlsEnabled {
		serve = func() error { return receiver.ServeTLS(ln, "", "") }
	}
	servers := []*http.Server{receiver}
	if w.inspector != nil {
		inspectLn, err := net.Listen("tcp", w.conf.inspectAddress)
		if err != nil {
			ln.Close()
			return fmt.Errorf("inspector: listening on %s: %w", w.conf.inspectAddress, err)
		}
		inspectServer := w.newServer(w.inspector)
		servers = append(servers, inspectServer)
		go w.serve("inspector", func() error { return inspectServer.Serve(inspectLn) })
		w.log.Infof("Inspector of the latest posts at http://%s/", inspectLn.Addr())
	}
	w.servers = servers
	go w.serve("Netcore webhook server", serve)
	w.log.Infof("Receiving Netcore posts at %s://%s%s", scheme, ln.Addr(), w.conf.path)
	return nil
}

// newServer is an HTTP server with the timeouts that cut slow clients.
func (w *webhookInput) newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: w.conf.readHeaderTimeout,
		IdleTimeout:       w.conf.idleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
}

func (w *webhookInput) serve(name string, serve func() error) {
	if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		w.log.Errorf("%s stopped: %v", name, err)
	}
}

// ReadBatch hands the next accepted post to the pipeline. Its ack function
// tells the waiting request how to answer.
func (w *webhookInput) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	select {
	case h := <-w.posts:
		return h.batch, func(_ context.Context, err error) error {
			h.acked <- err
			return nil
		}, nil
	case <-w.stopping:
		return nil, nil, service.ErrEndOfInput
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}

// Close stops taking posts (new ones are answered 503), then waits for the
// requests in flight to be answered.
func (w *webhookInput) Close(ctx context.Context) error {
	w.stopOnce.Do(func() { close(w.stopping) })
	w.mu.Lock()
	servers := w.servers
	w.mu.Unlock()
	var err error
	for _, srv := range servers {
		if serr := srv.Shutdown(ctx); serr != nil {
			err = errors.Join(err, fmt.Errorf("shutting down an HTTP server: %w", serr))
		}
	}
	if w.rejected != nil {
		err = errors.Join(err, w.rejected.close())
	}
	if w.learner != nil {
		err = errors.Join(err, w.learner.Close())
	}
	return errors.Join(err, w.closeQuarantine())
}
