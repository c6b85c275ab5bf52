package inspector

import (
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/fate"
	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
	"github.com/netcore-connect/netcore-connect/internal/quarantine"
)

// Inspector keeps the latest posts and shows them on a small read-only web
// page of its own, so that an operator can see what Netcore sent and what
// became of each event: the "see what was received" of Meiro's setup guide,
// and "did it reach Meiro Events", without reading logs.
//
// It reads the fate of events from the process's fate.Books, a Book per
// destination, which the disk queues and the dead letter keeper report to;
// the page's views are built in view.go and destinations.go, drawn by
// page.go.
type Inspector struct {
	keep  int
	mask  Mask        // nil: nothing masked
	gate  Gate        // nil: loopback only
	books *fate.Books // a Book per destination
	// quarantined is what the quarantine holds, by address; nil when the
	// receiver has none.
	quarantined func() []quarantine.Client
	catalog     http.Handler // the Catalog page; nil without a catalog

	mu           sync.Mutex
	posts        []*inspectedPost     // oldest first, at most keep
	senders      map[string]time.Time // clients whose posts were stored, and when last
	refusedKnown inspectedRefusal     // the last 403 to such a client
}

// Gate is what the inspector asks of the receiver it stands beside: who,
// besides a loopback peer, may open the page, by the receiver's own rules.
type Gate interface {
	// TrustedProxy says whether addr is a proxy whose X-Forwarded-For the
	// receiver believes: such a peer is not admitted for being on loopback.
	TrustedProxy(addr netip.Addr) bool
	// Allowed says whether the client of r, found as for posts (through
	// trusted proxies), is one whose posts the receiver takes.
	Allowed(r *http.Request) bool
}

// Config is what an Inspector is made of.
type Config struct {
	Keep int  // the latest posts kept
	Mask Mask // the fields masked; nil shows everything
	Gate Gate // nil admits loopback peers only
	// Quarantined is what the receiver's quarantine holds; nil without one.
	Quarantined func() []quarantine.Client
}

// ServeCatalog serves h as the page at /catalog, under the same access
// rules and headers as the rest. Called before the page is served.
func (in *Inspector) ServeCatalog(h http.Handler) { in.catalog = h }

// New is an Inspector of the latest c.Keep posts. It turns the process's
// fate book on: from then on the stages report to it.
func New(c Config) *Inspector {
	fate.Default.Enable()
	return &Inspector{keep: c.Keep, mask: c.Mask, gate: c.Gate, quarantined: c.Quarantined,
		books: fate.Default, senders: map[string]time.Time{}}
}

// inspectedPost is what the inspector shows of one request.
type inspectedPost struct {
	RequestID string
	Time      time.Time
	Client    string
	Status    int
	Reason    string
	Bytes     int64
	Summary   string              // panels with their event counts
	Events    int                 // events in the post
	Panels    []netcorepost.Panel // the events themselves, for posts up to inspectBodyLimit
	Excerpt   string              // start of a rejected body
	// Quarantined: answered 200 from an address outside the allowlist,
	// kept in the quarantine and not delivered.
	Quarantined bool

	ids [][]fate.ID // event ids by panel, worked out when first needed
}

// inspectedRefusal is a refusal of a client that had posted before.
type inspectedRefusal struct {
	Client string
	Time   time.Time
}

// inspectExcerptBytes caps what is kept of a rejected body.
const inspectExcerptBytes = 4096

// maxSendersKept bounds the clients remembered as having posted.
const maxSendersKept = 1024

// Add keeps what the receiver answered to one request.
func (in *Inspector) Add(r Request) {
	p := inspected(r)
	if in.mask != nil {
		// A refusal may quote the post (a syntax error near a value).
		p.Reason = in.mask.maskText(p.Reason, nil)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.posts) == in.keep {
		in.posts = slices.Delete(in.posts, 0, 1)
	}
	in.posts = append(in.posts, &p)
	switch {
	case p.Status == http.StatusOK && !p.Quarantined:
		if len(in.senders) >= maxSendersKept {
			clear(in.senders)
		}
		in.senders[p.Client] = p.Time
	case p.Status == http.StatusForbidden && !in.senders[p.Client].IsZero():
		in.refusedKnown = inspectedRefusal{Client: p.Client, Time: p.Time}
	}
}

// Latest is the posts kept, newest first.
func (in *Inspector) Latest() []*inspectedPost {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := slices.Clone(in.posts)
	slices.Reverse(out)
	return out
}

func (in *Inspector) find(id string) (*inspectedPost, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, p := range in.posts {
		if p.RequestID == id {
			return p, true
		}
	}
	return nil, false
}

// eventIDs are the ids of p's events, as netcore_explode gives them, by
// panel. They are worked out when a page first needs them, not on the
// request path.
func (in *Inspector) eventIDs(p *inspectedPost) [][]fate.ID {
	in.mu.Lock()
	defer in.mu.Unlock()
	if p.ids == nil && p.Panels != nil {
		p.ids = netcorepost.EventKeys(p.Panels)
	}
	return p.ids
}

func (in *Inspector) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if !in.admits(r) {
		http.Error(rw, "the inspector is open to loopback and allowlisted clients only", http.StatusForbidden)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(rw, "read only", http.StatusMethodNotAllowed)
		return
	}
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.Header().Set("Content-Security-Policy", pageSecurityPolicy)
	rw.Header().Set("Cache-Control", "no-store")
	now := time.Now()
	switch {
	case r.URL.Path == "/":
		_ = pageTemplates.ExecuteTemplate(rw, "list", in.listPage(parseFilter(r.URL.Query()), now))
	case strings.HasPrefix(r.URL.Path, "/posts/"):
		p, ok := in.find(strings.TrimPrefix(r.URL.Path, "/posts/"))
		if !ok {
			http.Error(rw, "no such post among the latest", http.StatusNotFound)
			return
		}
		_ = pageTemplates.ExecuteTemplate(rw, "post", in.postPage(p, now))
	case r.URL.Path == "/catalog" && in.catalog != nil:
		in.catalog.ServeHTTP(rw, r)
	default:
		http.NotFound(rw, r)
	}
}

// admits lets in a loopback peer that is not a trusted proxy, or a client in
// the allowlist (found as for posts, through trusted proxies). Loopback is
// judged on the socket peer alone, so that no X-Forwarded-For can claim it,
// and a proxy on the same host does not open the page to everyone behind
// it. Only IP addresses and localhost are accepted as Host: a page in the
// operator's browser that points a name of its own at this address (DNS
// rebinding) gets nothing.
func (in *Inspector) admits(r *http.Request) bool {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err != nil && host != "localhost" {
		return false
	}
	if peer, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		if a := peer.Addr().Unmap(); a.IsLoopback() && (in.gate == nil || !in.gate.TrustedProxy(a)) {
			return true
		}
	}
	return in.gate != nil && in.gate.Allowed(r)
}

// inspectBodyLimit is the largest post whose events the inspector keeps.
const inspectBodyLimit = 256 << 10

// Request is what the receiver tells the inspector of one request.
type Request struct {
	ID       string
	Received time.Time
	Client   netip.Addr // invalid when it could not be told
	Status   int
	Reason   string // of a refusal
	Bytes    int64
	Post     *netcorepost.Post // nil unless the body was a post
	Body     []byte            // as read, for the start of a refused one
	// Quarantined: answered 200 from an address outside the allowlist,
	// kept in the quarantine and not delivered.
	Quarantined bool
}

// inspected is what the inspector keeps of a request.
func inspected(r Request) inspectedPost {
	p := inspectedPost{RequestID: r.ID, Time: r.Received, Status: r.Status, Reason: r.Reason, Bytes: r.Bytes, Quarantined: r.Quarantined}
	if r.Client.IsValid() {
		p.Client = r.Client.String()
	}
	if r.Post != nil {
		p.Summary, p.Events = r.Post.PanelList("%s (%d)", ", "), r.Post.EventCount()
		if len(r.Post.Data) <= inspectBodyLimit {
			p.Panels = r.Post.Panels
		}
	}
	p.Excerpt = string(r.Body[:min(len(r.Body), inspectExcerptBytes)])
	return p
}
