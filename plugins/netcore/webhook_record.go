package netcore

import (
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/fate"
)

// logExcerptBytes caps how much of a rejected body reaches the log.
const logExcerptBytes = 256

// record counts and logs the request, and keeps rejected bodies for
// inspection.
func (w *webhookInput) record(r *http.Request, requestID string, client netip.Addr, received time.Time, a answer) {
	w.count(received, a)
	if a.stored() {
		w.learn(requestID, received, a)
	}
	// URL checks are not listed: a monitor polling the URL would push the
	// real posts out of the inspector's short list.
	if w.inspector != nil && !a.urlCheck {
		w.inspector.Add(inspected(requestID, received, client, a))
		if a.stored() {
			fate.Default.Received(a.post.EventCount(), received)
		}
	}
	clientIP := ""
	if client.IsValid() {
		clientIP = client.String()
	}
	fields := []any{
		"request_id", requestID,
		"client_ip", clientIP,
		"status", a.status,
		"method", r.Method,
		"url", w.conf.tokens.shownURL(r.URL),
		"bytes", a.bodyBytes,
		"duration_ms", time.Since(received).Milliseconds(),
	}
	if a.post != nil {
		fields = append(fields, "events", a.post.EventCount(), "panels", a.post.PanelList("%s:%d", ","))
	}
	switch {
	case a.stored():
		if w.conf.logPosts {
			w.log.With(fields...).Info("Netcore post stored")
		}
	case a.post == nil && len(a.body) == 0 || a.empty || a.quarantined:
		w.logUnread(client, received, a, fields)
	case a.status == http.StatusServiceUnavailable || a.status == http.StatusTooManyRequests:
		w.log.With(append(fields, "reason", a.reason)...).Warn("Netcore post not stored, sender told to retry")
	default:
		w.keepRejected(r, requestID, clientIP, received, a, fields)
	}
}

// Messages of the lines logUnread writes.
const (
	msgURLCheck    = "Netcore URL check answered"
	msgEmptyPost   = "Netcore post empty, nothing stored"
	msgRefused     = "Netcore request refused"
	msgQuarantined = "Netcore post quarantined, not delivered: its client is not in allowed_ips"
)

// logUnread logs a request that stored nothing in the queue and needs no
// excerpt: a refusal, a URL check, an empty post (logged even without
// log_posts: it is how a sender's check shows up while Netcore is being set
// up), or a quarantined post. Rate-limited, since a client can repeat these
// as fast as it likes.
func (w *webhookInput) logUnread(client netip.Addr, received time.Time, a answer, fields []any) {
	msg := msgRefused
	switch {
	case a.urlCheck:
		msg = msgURLCheck
	case a.empty:
		msg = msgEmptyPost
	case a.quarantined:
		msg = msgQuarantined
	}
	skipped, ok := w.refusals.admit(client, a.status, msg, received)
	if !ok {
		return
	}
	fields = append(fields, "refusals_not_logged", skipped)
	if msg == msgRefused || msg == msgQuarantined {
		w.log.With(append(fields, "reason", a.reason)...).Warn(msg)
		return
	}
	w.log.With(fields...).Info(msg)
}

// count updates the metrics of a request.
func (w *webhookInput) count(received time.Time, a answer) {
	w.mPosts.Incr(1, strconv.Itoa(a.status))
	if a.bodyBytes > 0 {
		w.mPostBytes.Timing(a.bodyBytes)
	}
	if a.empty {
		w.mEmpty.Incr(1)
	}
	if a.post != nil && !a.empty && !a.quarantined { // the queue's answer time
		w.mAck.Timing(time.Since(received).Nanoseconds())
	}
	if a.stored() {
		for _, panel := range a.post.Panels {
			w.mReceived.Incr(int64(len(panel.Events)), w.panels.label(panel.Name))
		}
	}
}

// keepRejected logs a rejected post with an excerpt and keeps its body whole
// in the rejected file.
func (w *webhookInput) keepRejected(r *http.Request, requestID, clientIP string, received time.Time, a answer, fields []any) {
	excerpt := a.body
	if len(excerpt) > logExcerptBytes {
		excerpt = excerpt[:logExcerptBytes]
	}
	w.log.With(append(fields, "reason", a.reason, "excerpt", string(excerpt))...).Warn("Netcore post rejected")
	if w.rejected == nil || len(a.body) == 0 {
		return
	}
	err := w.rejected.keep(rejectedPost{
		Time: received.UTC(), RequestID: requestID, ClientIP: clientIP, Status: a.status,
		Reason: a.reason, ContentType: r.Header.Get("Content-Type"), BodyBytes: a.bodyBytes,
	}, a.body)
	if err != nil {
		w.log.Errorf("Keeping rejected post %s: %v", requestID, err)
	}
}

// labelSet bounds a metric label whose values senders choose (panel names,
// client addresses): the first max values seen are labels, any later one
// counts as "other", and values are cut to maxLabelLen. Each label is a
// series kept for ever.
type labelSet struct {
	max  int
	mu   sync.Mutex
	seen map[string]bool
}

const (
	maxPanelLabels  = 200
	maxClientLabels = 100
	maxLabelLen     = 100
)

func (p *labelSet) label(name string) string {
	if len(name) > maxLabelLen {
		name = name[:maxLabelLen]
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	if !p.seen[name] && len(p.seen) >= p.max {
		return "other"
	}
	p.seen[name] = true
	return name
}
