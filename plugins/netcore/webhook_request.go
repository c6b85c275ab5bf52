package netcore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/claim"
	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
	"github.com/netcore-connect/netcore-connect/internal/stage"
)

// answer is how a request ends: what is sent back and what is logged.
type answer struct {
	status     int
	reason     string // for errors, sent to the client and logged
	retryAfter time.Duration
	post       *netcorepost.Post
	body       []byte // kept for rejected posts
	bodyBytes  int64
	// urlCheck is a HEAD or GET on the webhook path, and empty a post of
	// no events: what senders send to check a URL when it is saved. Both
	// are answered 200 and store nothing.
	urlCheck bool
	empty    bool
	// stranger is a client outside allowed_ips admitted to the quarantine;
	// quarantined, its post was kept there (answered 200, not delivered).
	stranger    bool
	quarantined bool
}

// stored says the answer is a 200 for events the pipeline took.
func (a answer) stored() bool {
	return a.status == http.StatusOK && !a.urlCheck && !a.empty && !a.quarantined
}

func (w *webhookInput) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	received := time.Now()
	requestID := newRequestID()
	rw.Header().Set("X-Request-Id", requestID)

	client, err := clientAddress(r, w.conf.trustedProxies)
	a, release := answer{status: http.StatusForbidden}, func() {}
	if err != nil {
		a.reason = err.Error()
	} else {
		a, release = w.handle(r, client, requestID, received)
	}
	// Only once answered and recorded: record may still keep the body of a
	// rejected post.
	defer release()
	w.respond(rw, requestID, a)
	w.record(r, requestID, client, received, a)
}

// readBody reads the whole body, up to max_body_bytes, within the budget of
// posts being read and stored. A body of known length takes from the
// budget, before a byte is read, what its post will hold until it is
// decoded (costBeforeDecoding), and is read into one buffer of its length
// (io.ReadAll alone grows its buffer step by step, which was an eighth of
// all memory allocated under load); a body of unknown length takes from
// the budget as it arrives.
func (w *webhookInput) readBody(r *http.Request, hold *budgetHold) (body []byte, err error) {
	limited := http.MaxBytesReader(nil, r.Body, w.conf.maxBodyBytes)
	if r.ContentLength <= 0 || r.ContentLength > w.conf.maxBodyBytes {
		return io.ReadAll(&budgetedReader{r: limited, hold: hold})
	}
	size := r.ContentLength
	if !hold.ensure(costBeforeDecoding(size)) {
		return nil, errBudgetSpent
	}
	buf := make([]byte, size)
	n, err := io.ReadFull(limited, buf)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("body ended after %d of %d bytes: %w", n, size, err)
		}
		return buf[:n], err
	}
	return buf, nil
}

// handle runs the checks in the documented order and, for a good post, waits
// for the pipeline's acknowledgement. release gives back what the post
// holds of the budget: call it once the answer and its record are done with.
func (w *webhookInput) handle(r *http.Request, client netip.Addr, requestID string, received time.Time) (a answer, release func()) {
	release = func() {}
	a, ok := w.admit(r, client)
	if !ok {
		return a, release
	}
	select {
	case w.inFlight <- struct{}{}:
		defer func() { <-w.inFlight }()
	default:
		return w.busy(fmt.Sprintf("busy: %d posts are being stored", w.conf.maxInFlight)), release
	}
	if a.stranger {
		if a, ok := w.admitStranger(client); !ok {
			return a, release
		}
		defer func() { <-w.strangers }()
	}
	hold := w.bodies.hold()
	body, read, ok := w.readPost(r, hold)
	if !ok {
		if a.stranger && read.status != http.StatusServiceUnavailable && read.status != http.StatusRequestTimeout {
			return strangerRefusal(client), hold.release
		}
		return read, hold.release
	}
	return w.decodeAndStore(r, body, hold, client, requestID, received, a.stranger), hold.release
}

// answerBy is the latest moment an answer to a request received then can
// still be written: write_timeout after its headers, less a margin for
// writing it.
func (w *webhookInput) answerBy(received time.Time) time.Time {
	return received.Add(w.conf.writeTimeout - time.Second)
}

// decodeAndStore decodes a post read whole and hands it to the pipeline.
// Before decoding, the post holds of the budget what its body may cost
// (costBeforeDecoding); once decoded, exactly what it costs (costOfPost),
// until its answer: the queue's record of it is gone once stored.
// A stranger's (a client outside allowed_ips, in quarantine mode) valid
// post is quarantined instead, and an invalid one refused 403 and kept
// nowhere.
func (w *webhookInput) decodeAndStore(r *http.Request, body []byte, hold *budgetHold, client netip.Addr, requestID string, received time.Time, stranger bool) answer {
	if !hold.ensure(costBeforeDecoding(int64(len(body)))) {
		return w.budgetSpent()
	}
	post, err := netcorepost.DecodeBody(r.Header.Get("Content-Type"), body)
	if err != nil && netcorepost.EmptyPost(r.Header.Get("Content-Type"), body) {
		post, err = &netcorepost.Post{}, nil
	}
	if err != nil {
		var rej *netcorepost.RejectError
		if !errors.As(err, &rej) {
			rej = netcorepost.BadRequest("%s", err)
		}
		if stranger {
			return strangerRefusal(client)
		}
		return answer{status: rej.Status, reason: rej.Reason, body: body, bodyBytes: int64(len(body))}
	}
	if n := post.EventCount(); n > w.conf.maxEventsPerPost {
		if stranger {
			return strangerRefusal(client)
		}
		return answer{status: http.StatusRequestEntityTooLarge, body: body, bodyBytes: int64(len(body)),
			reason: fmt.Sprintf("post holds %d events, over the limit of %d", n, w.conf.maxEventsPerPost)}
	}
	if post.EventCount() == 0 {
		return answer{status: http.StatusOK, empty: true, post: post, bodyBytes: int64(len(body)), reason: "empty post (a URL check?): nothing stored"}
	}
	if !hold.settle(costOfPost(body, post)) {
		return w.budgetSpent()
	}
	if stranger {
		return w.quarantinePost(post, int64(len(body)), client, requestID, received)
	}
	msg := postMessage(post, client, requestID, received)
	ctx, c := claim.New(msg.Context())
	return w.store(r.Context(), msg.WithContext(ctx), c, post, int64(len(body)), w.answerBy(received))
}

// postMessage is the message of an accepted post: its data, with the post's
// metadata, and the decoded post for netcore_explode to reuse.
func postMessage(post *netcorepost.Post, client netip.Addr, requestID string, received time.Time) *service.Message {
	msg := service.NewMessage(post.Data)
	msg.MetaSetMut(stage.MetaClientIP, client.String())
	msg.MetaSetMut(stage.MetaRequestID, requestID)
	msg.MetaSetMut(stage.MetaReceivedAt, received.UTC().Format(time.RFC3339Nano))
	return netcorepost.WithPost(msg, post)
}

// admit checks who asks for what, before anything of the body is read.
// The URL check is answered here, to allowed clients, and in quarantine
// mode to any client: the check comes from the sender's addresses, which
// may not be known yet. A client outside allowed_ips in quarantine mode is
// admitted as a stranger, whose post goes to the quarantine; it learns
// nothing of paths and methods (403, as in refuse mode).
func (w *webhookInput) admit(r *http.Request, client netip.Addr) (answer, bool) {
	stranger := !w.conf.allowed.contains(client)
	if a, ok := w.urlCheck(r); ok && (!stranger || w.conf.quarantines()) {
		return a, false
	}
	if stranger && (!w.conf.quarantines() || r.URL.Path != w.conf.path || r.Method != http.MethodPost) {
		return strangerRefusal(client), false
	}
	if refusal := w.conf.tokens.refusal(r); refusal != "" {
		return answer{status: http.StatusUnauthorized, reason: refusal}, false
	}
	switch {
	case r.URL.Path != w.conf.path:
		return answer{status: http.StatusNotFound, reason: fmt.Sprintf("no receiver at %s; Netcore posts go to %s", w.conf.tokens.hide(r.URL.Path), w.conf.path)}, false
	case r.Method != http.MethodPost:
		return answer{status: http.StatusMethodNotAllowed, reason: fmt.Sprintf("method %s is not allowed; use POST", r.Method)}, false
	}
	if wait, limited := w.rateLimited(r.Context()); limited {
		return answer{status: http.StatusTooManyRequests, reason: "rate limit reached", retryAfter: wait}, false
	}
	return answer{stranger: stranger}, true
}

// busy is a 503 that tells the sender to post again after Retry-After.
func (w *webhookInput) busy(reason string) answer {
	return answer{status: http.StatusServiceUnavailable, retryAfter: w.conf.retryAfter, reason: reason}
}

// readPost reads the body within its limits and undoes its Content-Encoding,
// taking from hold what it reads.
func (w *webhookInput) readPost(r *http.Request, hold *budgetHold) (body []byte, a answer, ok bool) {
	if r.ContentLength > w.conf.maxBodyBytes {
		return nil, answer{status: http.StatusRequestEntityTooLarge, bodyBytes: r.ContentLength,
			reason: fmt.Sprintf("body of %d bytes is over the limit of %d", r.ContentLength, w.conf.maxBodyBytes)}, false
	}
	enc, rej := bodyEncoding(r)
	if rej != nil {
		return nil, answer{status: rej.Status, reason: rej.Reason}, false
	}
	body, err := w.readBody(r, hold)
	if err == nil && enc != encodingIdentity {
		var inflated []byte
		if inflated, err = decompress(enc, body, w.conf.maxBodyBytes, hold); err == nil {
			body = inflated
		}
	}
	if err != nil {
		return body, w.readFailure(err, body), false
	}
	return body, answer{}, true
}

// budgetSpent is the answer to a post the budget has no room for.
func (w *webhookInput) budgetSpent() answer {
	return w.busy(fmt.Sprintf("busy: posts being read and stored already hold the %d bytes allowed (%s); post again shortly", w.conf.maxBodyBytesInFlight, wiFieldMaxBodyBytesInFlight))
}

// readFailure is the answer to a body that could not be read whole.
func (w *webhookInput) readFailure(err error, body []byte) answer {
	var rej *netcorepost.RejectError
	switch {
	case errors.Is(err, errBudgetSpent):
		return w.budgetSpent()
	case errors.As(err, new(*http.MaxBytesError)):
		return answer{status: http.StatusRequestEntityTooLarge, body: body, bodyBytes: int64(len(body)),
			reason: fmt.Sprintf("body is over the limit of %d bytes", w.conf.maxBodyBytes)}
	case errors.Is(err, errDecompressedTooLarge):
		return answer{status: http.StatusRequestEntityTooLarge, body: body, bodyBytes: int64(len(body)),
			reason: fmt.Sprintf("decompressed body is over the limit of %d bytes", w.conf.maxBodyBytes)}
	case errors.As(err, &rej):
		return answer{status: rej.Status, reason: rej.Reason, body: body, bodyBytes: int64(len(body))}
	}
	// The body did not arrive whole (too slow, or cut): nothing is wrong
	// with the post itself, so the sender is told to post it again.
	return answer{status: http.StatusRequestTimeout, reason: fmt.Sprintf("reading body: %v", err), body: body, bodyBytes: int64(len(body))}
}

// store hands the post to the pipeline and waits for its acknowledgement,
// bounded by ack_timeout. Only a nil ack becomes a 200.
//
// When ack_timeout passes, the post's claim (c) decides: abandoned, nothing
// of it will be stored and the answer is 503; already taken by the queue,
// its commit is under way and its result is the answer, so that Netcore is
// never told to resend a post that is stored.
func (w *webhookInput) store(ctx context.Context, msg *service.Message, c *claim.Claim, post *netcorepost.Post, size int64, answerBy time.Time) answer {
	unavailable := func(reason string) answer {
		return answer{status: http.StatusServiceUnavailable, reason: reason, retryAfter: w.conf.retryAfter, post: post, bodyBytes: size}
	}
	acked := func(err error) answer {
		if err != nil {
			return unavailable(fmt.Sprintf("events were not stored: %v", err))
		}
		return answer{status: http.StatusOK, post: post, bodyBytes: size}
	}
	timeout := time.NewTimer(w.conf.ackTimeout)
	defer timeout.Stop()
	h := handoff{batch: service.MessageBatch{msg}, acked: make(chan error, 1)}
	select {
	case w.posts <- h:
	case <-w.stopping:
		return unavailable("shutting down; post again shortly")
	case <-timeout.C:
		return unavailable(fmt.Sprintf("the pipeline did not take the post within %s", w.conf.ackTimeout))
	case <-ctx.Done():
		return unavailable("client went away before the post was stored")
	}
	select {
	case err := <-h.acked:
		return acked(err)
	case <-timeout.C:
	}
	if c.Abandon() {
		return unavailable(fmt.Sprintf("events were not stored within %s", w.conf.ackTimeout))
	}
	// The commit began before the timeout: one write and one fsync, which
	// is waited for (even if the client has gone, so that the log, the
	// metrics and the inspector say what happened), unless the disk stalls:
	// then until the last moment an answer can still be written.
	wait := min(stalledCommit, time.Until(answerBy))
	stalled := time.NewTimer(max(wait, 0))
	defer stalled.Stop()
	select {
	case err := <-h.acked:
		return acked(err)
	case <-stalled.C:
		return unavailable(fmt.Sprintf("the queue began storing the post but did not finish within %s more (is the disk stalled?); it may be stored: a resend within the dedupe window is removed as a repeat", wait.Round(time.Millisecond)))
	}
}

// stalledCommit bounds the wait for a commit that began before ack_timeout
// passed: it takes one write and one fsync, milliseconds, so only a stalled
// disk reaches it. write_timeout bounds it too.
const stalledCommit = 30 * time.Second

func (w *webhookInput) rateLimited(ctx context.Context) (time.Duration, bool) {
	if w.conf.rateLimit == "" {
		return 0, false
	}
	var wait time.Duration
	var rlErr error
	if err := w.res.AccessRateLimit(ctx, w.conf.rateLimit, func(rl service.RateLimit) {
		wait, rlErr = rl.Access(ctx)
	}); err != nil || rlErr != nil {
		// A broken limiter must not turn posts away: they are still bounded
		// by everything after it.
		w.log.Warnf("rate_limit %s: %v", w.conf.rateLimit, errors.Join(err, rlErr))
		return 0, false
	}
	return wait, wait > 0
}

func (w *webhookInput) respond(rw http.ResponseWriter, requestID string, a answer) {
	if a.urlCheck {
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(rw, urlCheckText)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	if a.retryAfter > 0 {
		rw.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(a.retryAfter.Seconds()))))
	}
	if a.status == http.StatusForbidden || a.status == http.StatusUnauthorized {
		// A refused client gets no keep-alive connection to repeat itself
		// (or guess tokens) over: the server closes it after this answer.
		// Closing also spares reading its body: net/http would otherwise
		// read up to 256 KiB of it before answering, to keep the
		// connection.
		rw.Header().Set("Connection", "close")
	}
	if a.status == http.StatusMethodNotAllowed {
		rw.Header().Set("Allow", "POST, GET, HEAD")
	}
	rw.WriteHeader(a.status)
	var reply any
	if a.status == http.StatusOK {
		status := "stored"
		switch {
		case a.empty:
			status = "empty"
		case a.quarantined:
			status = "quarantined"
		}
		reply = struct {
			Status    string `json:"status"`
			Events    int    `json:"events"`
			RequestID string `json:"request_id"`
		}{status, a.post.EventCount(), requestID}
	} else {
		reply = struct {
			Error     string `json:"error"`
			RequestID string `json:"request_id"`
		}{a.reason, requestID}
	}
	enc := json.NewEncoder(rw)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(reply)
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
