package netcore

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/quarantine"
)

const (
	wiFieldUnknownSources        = "unknown_sources"
	wiFieldQuarantine            = "quarantine"
	wiFieldQuarantineDir         = "dir"
	wiFieldQuarantineMaxBytes    = "max_bytes"
	wiFieldQuarantineMaxPerAddr  = "max_posts_per_address"
	unknownSourcesRefuse         = "refuse"
	unknownSourcesQuarantine     = "quarantine"
	quarantineRequestsPollPeriod = 500 * time.Millisecond
)

// quarantineFields are the config fields of what is done with posts from
// addresses outside allowed_ips.
func quarantineFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewStringEnumField(wiFieldUnknownSources, unknownSourcesRefuse, unknownSourcesQuarantine).
			Description("What a post from an address outside `allowed_ips` gets. `refuse`: 403. `quarantine`: a valid Netcore post (carrying the `token`, when one is set) is kept durably in the quarantine, not delivered, and answered 200, so that Netcore does not give it up while its address is not yet listed (Netcore does not publish the addresses its journeys post from); HEAD and GET URL checks are answered 200 too. An invalid post from such an address is still answered 403 and kept nowhere. A person then releases the address's posts into the queue (`netcore-connect quarantine release --client ADDRESS`) and adds the address to `allowed_ips`, or drops them. Without a `token`, anyone who can reach the port can fill the quarantine up to its bound.").
			Default(unknownSourcesRefuse),
		service.NewObjectField(wiFieldQuarantine,
			service.NewStringField(wiFieldQuarantineDir).
				Description("The quarantine's folder (one file a post, fsync'd before its 200). Needed with `unknown_sources: quarantine`; when set in `refuse` mode and it holds posts, they can still be released or dropped. The `quarantine` commands find it as `quarantine` in `$NETCORE_DATA_DIR`.").
				Example("${NETCORE_DATA_DIR:./data}/quarantine").
				Default(""),
			service.NewIntField(wiFieldQuarantineMaxBytes).
				Description("The most bytes the quarantine holds; past it, posts from unknown addresses are answered 503 with `Retry-After`.").
				Default(64<<20),
			service.NewIntField(wiFieldQuarantineMaxPerAddr).
				Description("The most posts held from one address; past it, its posts are answered 503 with `Retry-After`.").
				Default(1000),
		).Description("Where and how much is kept of posts from unknown addresses (`unknown_sources: quarantine`)."),
	}
}

// parseQuarantine reads unknown_sources and the quarantine's bounds.
func parseQuarantine(conf *service.ParsedConfig, c *webhookConfig) (err error) {
	if c.unknownSources, err = conf.FieldString(wiFieldUnknownSources); err != nil {
		return err
	}
	q := conf.Namespace(wiFieldQuarantine)
	if c.quarantineDir, err = q.FieldString(wiFieldQuarantineDir); err != nil {
		return err
	}
	maxBytes, err := positiveInt(q, wiFieldQuarantineMaxBytes)
	if err != nil {
		return fmt.Errorf("%s: %w", wiFieldQuarantine, err)
	}
	c.quarantineLimits.MaxBytes = int64(maxBytes)
	if c.quarantineLimits.MaxPostsPerClient, err = positiveInt(q, wiFieldQuarantineMaxPerAddr); err != nil {
		return fmt.Errorf("%s: %w", wiFieldQuarantine, err)
	}
	if c.quarantines() && c.quarantineDir == "" {
		return fmt.Errorf("%s is %s but %s.%s is empty: name the folder to keep the posts in", wiFieldUnknownSources, unknownSourcesQuarantine, wiFieldQuarantine, wiFieldQuarantineDir)
	}
	return nil
}

// quarantines says posts from unknown addresses are kept, not refused.
func (c webhookConfig) quarantines() bool { return c.unknownSources == unknownSourcesQuarantine }

// openQuarantine opens the quarantine at start: in quarantine mode, or
// when the folder holds posts from before (to release or drop them).
func (w *webhookInput) openQuarantine() error {
	dir := w.conf.quarantineDir
	if dir == "" {
		return nil
	}
	if !w.conf.quarantines() {
		if held, err := quarantine.List(dir); err != nil || len(held) == 0 {
			return err
		}
	}
	store, err := quarantine.Open(dir, w.conf.quarantineLimits)
	if err != nil {
		return err
	}
	w.quarantine = store
	w.mQuarantineBytes.Set(store.Bytes())
	if w.conf.quarantines() && w.conf.tokens == nil {
		w.log.Warnf("Posts from addresses outside allowed_ips are quarantined, and no token is set: anyone who can reach this port can fill the quarantine (%s) up to %d bytes. Set NETCORE_WEBHOOK_TOKEN to keep them out.", dir, w.conf.quarantineLimits.MaxBytes)
	}
	for _, c := range store.Clients() {
		w.log.Warnf("The quarantine holds %d posts (%d events) from %s, not delivered: netcore-connect quarantine release --client %s, or drop", c.Posts, c.Events, c.Address, c.Address)
	}
	go w.serveQuarantineRequests()
	return nil
}

// quarantinePost keeps a valid post from an unknown address, durably, and
// answers 200 (or 503 past the quarantine's bounds).
func (w *webhookInput) quarantinePost(post *Post, size int64, client netip.Addr, requestID string, received time.Time) answer {
	h := quarantine.Header{Client: client.String(), RequestID: requestID, ReceivedAt: received.UTC(), Events: post.EventCount(), Panels: map[string]int{}}
	for _, p := range post.Panels {
		h.Panels[p.Name] += len(p.Events)
	}
	err := w.quarantine.Keep(h, post.Data)
	w.mQuarantineBytes.Set(w.quarantine.Bytes())
	if err != nil {
		a := w.busy(fmt.Sprintf("client %s is not allowed to post, and its post could not be quarantined: %v", client, err))
		a.post, a.bodyBytes = post, size
		return a
	}
	w.mQuarantined.Incr(1, w.clients.label(h.Client))
	return answer{status: http.StatusOK, quarantined: true, post: post, bodyBytes: size,
		reason: fmt.Sprintf("client %s is not in allowed_ips: post quarantined, not delivered; see netcore-connect quarantine list", client)}
}

// strangerRefusal is the 403 for a post from an unknown address that is not
// a valid Netcore post: it is kept nowhere.
func strangerRefusal(client netip.Addr, why string) answer {
	return answer{status: http.StatusForbidden, reason: fmt.Sprintf("client %s is not allowed to post, and its post was not quarantined: %s", client, why)}
}

// serveQuarantineRequests serves the release and drop requests the
// quarantine commands leave, until the input stops.
func (w *webhookInput) serveQuarantineRequests() {
	tick := time.NewTicker(quarantineRequestsPollPeriod)
	defer tick.Stop()
	for {
		reqs, err := w.quarantine.Requests()
		if err != nil {
			w.log.Errorf("%v", err)
		}
		for _, req := range reqs {
			w.serveQuarantineRequest(req)
		}
		select {
		case <-w.stopping:
			return
		case <-tick.C:
		}
	}
}

func (w *webhookInput) serveQuarantineRequest(req quarantine.Request) {
	var res quarantine.Result
	var err error
	if req.Op == quarantine.OpDrop {
		res, err = w.quarantine.Drop(req.Client)
	} else {
		res, err = w.release(req.Client)
	}
	w.mQuarantineBytes.Set(w.quarantine.Bytes())
	if errors.Is(err, errStopping) {
		return // the request stays, and is served at the next start
	}
	if err != nil {
		res.Error = err.Error()
		w.log.Errorf("Quarantine %s of %s stopped after %d posts: %v", req.Op, req.Client, res.Posts, err)
	} else {
		w.log.Infof("Quarantine %s of %s: %d posts, %d events", req.Op, req.Client, res.Posts, res.Events)
	}
	if err := w.quarantine.Answer(req, res); err != nil {
		w.log.Errorf("%v", err)
	}
}

// errStopping ends a release when the input stops.
var errStopping = errors.New("the receiver is stopping")

// release hands every post of client to the pipeline, oldest first, as if
// it had just been accepted (its own request id and time of receipt), and
// removes each from the quarantine once the pipeline acknowledged it.
// Killed between the two, the post is released again at the next request,
// and its events are removed as repeats by the queue.
func (w *webhookInput) release(client string) (quarantine.Result, error) {
	res := quarantine.Result{Op: quarantine.OpRelease, Client: client}
	paths, err := w.quarantine.Posts(client)
	for _, path := range paths {
		if err != nil {
			break
		}
		var events int
		if events, err = w.releasePost(path); err == nil {
			err = w.quarantine.Remove(path)
		}
		if err == nil {
			res.Posts++
			res.Events += events
		}
	}
	return res, err
}

// releasePost hands one quarantined post to the pipeline and waits until it
// is stored, within the budget of bytes posts hold.
func (w *webhookInput) releasePost(path string) (events int, err error) {
	h, data, err := quarantine.ReadPost(path)
	if err != nil {
		return 0, err
	}
	post, err := DecodeData(data)
	if err != nil {
		return 0, fmt.Errorf("quarantined post %s: %w", path, err)
	}
	hold := w.bodies.hold()
	defer hold.release()
	for !hold.settle(costOfPost(data, post)) {
		select {
		case <-w.stopping:
			return 0, errStopping
		case <-time.After(w.conf.retryAfter):
		}
	}
	client, _ := netip.ParseAddr(h.Client)
	msg := postMessage(post, client, h.RequestID, h.ReceivedAt)
	handed := handoff{batch: service.MessageBatch{msg}, acked: make(chan error, 1)}
	select {
	case w.posts <- handed:
	case <-w.stopping:
		return 0, errStopping
	}
	if err := <-handed.acked; err != nil {
		return 0, fmt.Errorf("the pipeline did not store post %s: %w", h.RequestID, err)
	}
	return post.EventCount(), nil
}

// closeQuarantine gives the quarantine's folder up, once no request is
// being answered.
func (w *webhookInput) closeQuarantine() error {
	if w.quarantine == nil {
		return nil
	}
	if err := w.quarantine.Close(); err != nil {
		return fmt.Errorf("closing the quarantine: %w", err)
	}
	return nil
}

// quarantinedClients is what the inspector shows of the quarantine.
func (w *webhookInput) quarantinedClients() []quarantine.Client {
	if w.quarantine == nil {
		return nil
	}
	return w.quarantine.Clients()
}
