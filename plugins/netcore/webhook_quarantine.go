package netcore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/fate"
	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
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

// openQuarantine opens the quarantine at start: in quarantine mode (a
// failure stops the start), or in refuse mode when the folder holds posts
// from before, to release or drop them (a failure is only logged: refuse
// mode must start as it always did).
func (w *webhookInput) openQuarantine() error {
	dir := w.conf.quarantineDir
	if dir == "" {
		return nil
	}
	store, err := w.openQuarantineStore(dir)
	if !w.conf.quarantines() && err != nil {
		w.log.Warnf("The quarantine's posts cannot be released or dropped while this receiver runs: %v", err)
		return nil
	}
	if err != nil || store == nil {
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
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-w.stopping; cancel() }()
	w.quarantineServing.Add(1)
	go w.serveQuarantineRequests(ctx)
	return nil
}

// openQuarantineStore opens the store; in refuse mode only if it holds
// posts (nil otherwise). A quarantine command holds the lock for a moment
// (Owned), so a lock found taken is tried again for a little while.
func (w *webhookInput) openQuarantineStore(dir string) (*quarantine.Store, error) {
	if !w.conf.quarantines() {
		if held, err := quarantine.List(dir); err != nil || len(held) == 0 {
			return nil, err
		}
	}
	for tries := 0; ; tries++ {
		store, err := quarantine.Open(dir, w.conf.quarantineLimits)
		if !errors.Is(err, quarantine.ErrOwned) || tries == quarantineOpenTries {
			return store, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// quarantineOpenTries bounds how long a start waits for a lock a quarantine
// command holds (a moment): 2 s in all.
const quarantineOpenTries = 20

// quarantinePost keeps a valid post from an unknown address, durably, and
// answers 200 (or 503 past the quarantine's bounds).
func (w *webhookInput) quarantinePost(post *netcorepost.Post, size int64, client netip.Addr, requestID string, received time.Time) answer {
	h := quarantine.Header{Client: client.String(), RequestID: requestID, ReceivedAt: received.UTC(), Events: post.EventCount(), Panels: map[string]int{}}
	for _, p := range post.Panels {
		h.Panels[p.Name] += len(p.Events)
	}
	err := w.quarantine.Keep(h, post.Data)
	w.mQuarantineBytes.Set(w.quarantine.Bytes())
	if err != nil {
		if !errors.Is(err, quarantine.ErrFull) {
			w.log.Errorf("Quarantining post %s of %s: %v", requestID, client, err)
		}
		a := w.strangerBusy(client)
		a.post, a.bodyBytes = post, size
		return a
	}
	w.mQuarantined.Incr(1, w.clients.label(h.Client))
	return answer{status: http.StatusOK, quarantined: true, post: post, bodyBytes: size,
		reason: fmt.Sprintf("client %s is not in allowed_ips: post quarantined, not delivered; see netcore-connect quarantine list", client)}
}

// admitStranger lets a stranger's post be read when the quarantine has
// room for it and a stranger's slot is free (an eighth of max_in_flight):
// otherwise 503 before a byte of it is read, so that strangers cannot keep
// the allowed senders' posts out. ok says a slot was taken.
func (w *webhookInput) admitStranger(client netip.Addr) (a answer, ok bool) {
	if w.quarantine == nil {
		// Quarantine mode opens it at start; not yet started, keep nothing.
		return w.strangerBusy(client), false
	}
	if err := w.quarantine.Room(client.String()); err != nil {
		return w.strangerBusy(client), false
	}
	select {
	case w.strangers <- struct{}{}:
		return answer{}, true
	default:
		return w.strangerBusy(client), false
	}
}

// strangerRefusal is the 403 for a post from an unknown address that is not
// a valid Netcore post: it is kept nowhere, and told no more than in refuse
// mode (not why, which would guide it towards a post that is kept).
func strangerRefusal(client netip.Addr) answer {
	return answer{status: http.StatusForbidden, reason: fmt.Sprintf("client %s is not allowed to post", client)}
}

// strangerBusy is the 503 for a post from an unknown address that the
// quarantine has no room for. It says nothing of the bounds or of what is
// held: the metrics, the inspector and quarantine list say that to the
// operator.
func (w *webhookInput) strangerBusy(client netip.Addr) answer {
	return w.busy(fmt.Sprintf("client %s is not in the allowlist, and posts from such addresses cannot be kept now: post again later", client))
}

// serveQuarantineRequests serves the release and drop requests the
// quarantine commands leave, until ctx ends (the input stops).
func (w *webhookInput) serveQuarantineRequests(ctx context.Context) {
	defer w.quarantineServing.Done()
	tick := time.NewTicker(quarantineRequestsPollPeriod)
	defer tick.Stop()
	for {
		reqs, err := w.quarantine.Requests()
		if err != nil {
			w.log.Errorf("%v", err)
		}
		for _, req := range reqs {
			w.serveQuarantineRequest(ctx, req)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (w *webhookInput) serveQuarantineRequest(ctx context.Context, req quarantine.Request) {
	var res quarantine.Result
	var err error
	if req.Op == quarantine.OpDrop {
		res, err = w.quarantine.Drop(ctx, req.Client)
	} else {
		res, err = w.release(ctx, req.Client)
	}
	w.mQuarantineBytes.Set(w.quarantine.Bytes())
	if ctx.Err() != nil {
		return // the request stays, and is served again at the next start
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

// release hands every post of client to the pipeline, oldest first, as if
// it had just been accepted (its own request id and time of receipt), and
// removes each from the quarantine once the pipeline acknowledged it.
// Killed between the two, the post is released again at the next request,
// and its events are removed as repeats by the queue.
func (w *webhookInput) release(ctx context.Context, client string) (quarantine.Result, error) {
	res := quarantine.Result{Op: quarantine.OpRelease, Client: client}
	if addr, err := netip.ParseAddr(client); err == nil {
		res.Allowed = w.conf.allowed.contains(addr)
	}
	paths, err := w.quarantine.Posts(client)
	for _, path := range paths {
		if err != nil {
			break
		}
		var events int
		if events, err = w.releasePost(ctx, path); err == nil {
			_, err = w.quarantine.Remove(path)
		}
		if err == nil {
			res.Posts++
			res.Events += events
			if w.inspector != nil {
				fate.Default.Received(events, time.Now())
			}
		}
	}
	return res, err
}

// releasePost hands one quarantined post to the pipeline and waits until it
// is stored, within the budget of bytes posts hold.
func (w *webhookInput) releasePost(ctx context.Context, path string) (events int, err error) {
	h, data, err := quarantine.ReadPost(path)
	if err != nil {
		return 0, err
	}
	post, err := netcorepost.DecodeData(data)
	if err != nil {
		return 0, fmt.Errorf("quarantined post %s: %w", path, err)
	}
	hold := w.bodies.hold()
	defer hold.release()
	for !hold.settle(costOfPost(data, post)) {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(w.conf.retryAfter):
		}
	}
	client, _ := netip.ParseAddr(h.Client)
	msg := postMessage(post, client, h.RequestID, h.ReceivedAt)
	handed := handoff{batch: service.MessageBatch{msg}, acked: make(chan error, 1)}
	select {
	case w.posts <- handed:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	// Stopping meanwhile, the post stays held, stored or not: released again
	// at the next start, it is then removed as a repeat if it was stored.
	select {
	case err := <-handed.acked:
		if err != nil {
			return 0, fmt.Errorf("the pipeline did not store post %s: %w", h.RequestID, err)
		}
		return post.EventCount(), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// closeQuarantine gives the quarantine's folder up, once no request is
// being served (stopping ends one at its next step).
func (w *webhookInput) closeQuarantine() error {
	if w.quarantine == nil {
		return nil
	}
	w.quarantineServing.Wait()
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
