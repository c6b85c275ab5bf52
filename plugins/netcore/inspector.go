package netcore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/rawjson"
)

// inspector keeps the latest posts and shows them on a small read-only web
// page of its own, so that an operator can see what Netcore sent: the "see
// what was received" of Meiro's setup guide, without reading logs.
type inspector struct {
	keep    int
	mask    bool
	allowed addressSet // besides loopback
	trusted addressSet

	mu    sync.Mutex
	posts []inspectedPost // oldest first, at most keep
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
}

// inspectExcerptBytes caps what is kept of a rejected body.
const inspectExcerptBytes = 4096

func newInspector(keep int, mask bool, allowed, trusted addressSet) *inspector {
	return &inspector{keep: keep, mask: mask, allowed: allowed, trusted: trusted}
}

func (in *inspector) add(p inspectedPost) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.posts) == in.keep {
		in.posts = slices.Delete(in.posts, 0, 1)
	}
	in.posts = append(in.posts, p)
}

func (in *inspector) latest() []inspectedPost {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := slices.Clone(in.posts)
	slices.Reverse(out)
	return out
}

func (in *inspector) find(id string) (inspectedPost, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, p := range in.posts {
		if p.RequestID == id {
			return p, true
		}
	}
	return inspectedPost{}, false
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
	rw.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	switch {
	case r.URL.Path == "/":
		_ = pageTemplates.ExecuteTemplate(rw, "list", in.latest())
	case strings.HasPrefix(r.URL.Path, "/posts/"):
		p, ok := in.find(strings.TrimPrefix(r.URL.Path, "/posts/"))
		if !ok {
			http.Error(rw, "no such post among the latest", http.StatusNotFound)
			return
		}
		_ = pageTemplates.ExecuteTemplate(rw, "post", in.detail(p))
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

// postDetail is a post with its events ready to show.
type postDetail struct {
	inspectedPost
	Events   []shownEvent
	Masked   bool
	TooLarge bool // events not kept
}

type shownEvent struct {
	Panel string
	Index int
	JSON  string
}

func (in *inspector) detail(p inspectedPost) postDetail {
	d := postDetail{inspectedPost: p, Masked: in.mask, TooLarge: p.Events > 0 && p.Panels == nil}
	for _, panel := range p.Panels {
		for i, ev := range panel.Events {
			d.Events = append(d.Events, shownEvent{Panel: panel.Name, Index: i, JSON: in.show(ev)})
		}
	}
	if in.mask && d.Excerpt != "" {
		// A rejected body is not parsed, so it cannot be masked.
		d.Excerpt = "(not shown while personal fields are masked: see the rejected-posts file)"
	}
	return d
}

// personalParams are the event_params fields that identify a person.
var personalParams = []string{"identity", "foreignkey", "email", "mobile", "phone"}

// show pretty-prints an event, masking personal fields when asked: the
// identity fields of event_params and every value of att_params (Netcore's
// contact attributes). Numbers keep their exact text.
func (in *inspector) show(event []byte) string {
	if in.mask {
		var ev map[string]any
		d := json.NewDecoder(bytes.NewReader(event))
		d.UseNumber()
		if d.Decode(&ev) == nil {
			maskPersonal(ev)
			if b, err := json.MarshalIndent(ev, "", "  "); err == nil {
				return string(b)
			}
		}
		return "(event not shown: it could not be masked)"
	}
	var out bytes.Buffer
	if json.Indent(&out, rawjson.AppendCompact(nil, event), "", "  ") != nil {
		return string(event)
	}
	return out.String()
}

const masked = "•••"

func maskPersonal(ev map[string]any) {
	if params, ok := ev["event_params"].(map[string]any); ok {
		for k := range params {
			if slices.Contains(personalParams, strings.ToLower(k)) {
				params[k] = masked
			}
		}
	}
	if attrs, ok := ev["att_params"].(map[string]any); ok {
		for k := range attrs {
			attrs[k] = masked
		}
	}
}

// panelList names each panel with its event count, as format (a %s for
// the name, a %d for the count), joined by sep: for logs and the inspector.
func panelList(panels []Panel, format, sep string) string {
	parts := make([]string, len(panels))
	for i, p := range panels {
		parts[i] = fmt.Sprintf(format, p.Name, len(p.Events))
	}
	return strings.Join(parts, sep)
}

var pageTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000 UTC") },
}).Parse(`
{{define "style"}}<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}
.bad{color:#b00}pre{background:#f6f6f6;padding:.8em;overflow:auto}
</style>{{end}}
{{define "list"}}<!doctype html><html><head><meta charset="utf-8"><title>netcore-connect: latest posts</title>{{template "style"}}</head>
<body><h1>Latest Netcore posts</h1>
<p>Newest first; reload to refresh. Personal fields are masked when the inspector is set to.</p>
<table id="posts"><thead><tr><th>time</th><th>client</th><th>status</th><th>panels (events)</th><th>events</th><th>bytes</th><th></th></tr></thead><tbody>
{{range .}}<tr class="post{{if ne .Status 200}} bad{{end}}"><td>{{when .Time}}</td><td>{{.Client}}</td><td>{{.Status}}</td>
<td class="panels">{{if .Summary}}{{.Summary}}{{else}}{{.Reason}}{{end}}</td><td>{{.Events}}</td><td>{{.Bytes}}</td>
<td><a href="/posts/{{.RequestID}}">{{.RequestID}}</a></td></tr>
{{else}}<tr><td colspan="7">No post received yet.</td></tr>{{end}}
</tbody></table></body></html>{{end}}
{{define "post"}}<!doctype html><html><head><meta charset="utf-8"><title>netcore-connect: post {{.RequestID}}</title>{{template "style"}}</head>
<body><p><a href="/">← latest posts</a></p><h1>Post {{.RequestID}}</h1>
<table><tr><th>time</th><td>{{when .Time}}</td></tr><tr><th>client</th><td>{{.Client}}</td></tr>
<tr><th>status</th><td>{{.Status}}</td></tr>{{if .Reason}}<tr><th>reason</th><td class="bad">{{.Reason}}</td></tr>{{end}}
<tr><th>bytes</th><td>{{.Bytes}}</td></tr><tr><th>panels</th><td>{{.Summary}}</td></tr></table>
{{if .TooLarge}}<p>The events of posts over 256 KiB are not kept.</p>{{end}}
{{if .Events}}<h2>Events, one message each{{if .Masked}} (personal fields masked){{end}}</h2>
{{range .Events}}<h3 class="event">{{.Panel}} #{{.Index}}</h3><pre>{{.JSON}}</pre>{{end}}{{end}}
{{if .Excerpt}}<h2>Start of the body</h2><pre>{{.Excerpt}}</pre>{{end}}
</body></html>{{end}}
`))

// inspectBodyLimit is the largest post whose events the inspector keeps.
const inspectBodyLimit = 256 << 10

// inspected is what the inspector keeps of a request.
func inspected(requestID string, received time.Time, client netip.Addr, a answer) inspectedPost {
	p := inspectedPost{RequestID: requestID, Time: received, Status: a.status, Reason: a.reason, Bytes: a.bodyBytes}
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
