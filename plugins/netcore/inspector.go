package netcore

import (
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/fate"
	"github.com/netcore-connect/netcore-connect/internal/quarantine"
	"github.com/netcore-connect/netcore-connect/internal/rawjson"
)

// inspector keeps the latest posts and shows them on a small read-only web
// page of its own, so that an operator can see what Netcore sent and what
// became of each event: the "see what was received" of Meiro's setup guide,
// and "did it reach Meiro Events", without reading logs.
//
// It reads the fate of events from the process's fate.Book, which the disk
// queue and the dead_letter output report to; the page's views are built in
// inspector_view.go, drawn by inspector_page.go.
type inspector struct {
	keep    int
	mask    maskRules  // nil: nothing masked
	allowed addressSet // besides loopback
	trusted addressSet
	book    *fate.Book
	// quarantined is what the quarantine holds, by address; nil when the
	// receiver has none.
	quarantined func() []quarantine.Client
	catalog     http.Handler // the Catalog page; nil without a catalog

	mu           sync.Mutex
	posts        []*inspectedPost     // oldest first, at most keep
	senders      map[string]time.Time // clients whose posts were stored, and when last
	refusedKnown inspectedRefusal     // the last 403 to such a client
}

// inspectedPost is what the inspector shows of one request.
type inspectedPost struct {
	RequestID string
	Time      time.Time
	Client    string
	Status    int
	Reason    string
	Bytes     int64
	Summary   string  // panels with their event counts
	Events    int     // events in the post
	Panels    []Panel // the events themselves, for posts up to inspectBodyLimit
	Excerpt   string  // start of a rejected body
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

func newInspector(keep int, mask maskRules, allowed, trusted addressSet) *inspector {
	fate.Default.Enable()
	return &inspector{keep: keep, mask: mask, allowed: allowed, trusted: trusted, book: fate.Default, senders: map[string]time.Time{}}
}

func (in *inspector) add(p inspectedPost) {
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

// latest is the posts kept, newest first.
func (in *inspector) latest() []*inspectedPost {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := slices.Clone(in.posts)
	slices.Reverse(out)
	return out
}

func (in *inspector) find(id string) (*inspectedPost, bool) {
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
func (in *inspector) eventIDs(p *inspectedPost) [][]fate.ID {
	in.mu.Lock()
	defer in.mu.Unlock()
	if p.ids == nil && p.Panels != nil {
		p.ids = make([][]fate.ID, len(p.Panels))
		var compact []byte
		copies, k := CopiesOf(p.Panels, false), 0
		for i, panel := range p.Panels {
			p.ids[i] = make([]fate.ID, len(panel.Events))
			for j, ev := range panel.Events {
				compact = rawjson.AppendCompact(compact[:0], ev)
				p.ids[i][j] = EventKey(panel.Name, compact, copies.Of(k))
				k++
			}
		}
	}
	return p.ids
}

func (in *inspector) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
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
func (in *inspector) admits(r *http.Request) bool {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err != nil && host != "localhost" {
		return false
	}
	if peer, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		if a := peer.Addr().Unmap(); a.IsLoopback() && !in.trusted.contains(a) {
			return true
		}
	}
	client, err := clientAddress(r, in.trusted)
	return err == nil && in.allowed.contains(client)
}

// inspectBodyLimit is the largest post whose events the inspector keeps.
const inspectBodyLimit = 256 << 10

// inspected is what the inspector keeps of a request.
func inspected(requestID string, received time.Time, client netip.Addr, a answer) inspectedPost {
	p := inspectedPost{RequestID: requestID, Time: received, Status: a.status, Reason: a.reason, Bytes: a.bodyBytes, Quarantined: a.quarantined}
	if client.IsValid() {
		p.Client = client.String()
	}
	if a.post != nil {
		p.Summary, p.Events = panelList(a.post.Panels, "%s (%d)", ", "), a.post.EventCount()
		if len(a.post.Data) <= inspectBodyLimit {
			p.Panels = a.post.Panels
		}
	}
	p.Excerpt = string(a.body[:min(len(a.body), inspectExcerptBytes)])
	return p
}
