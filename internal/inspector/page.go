package inspector

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"strings"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/fate"
)

// refreshScript refreshes the page's <main> every few seconds from the same
// URL, without a reload: the scroll position, the filter being typed and an
// open post stay where they are. It is the page's only script.
const refreshScript = `(function () {
  setInterval(async function () {
    try {
      const r = await fetch(location.href, {cache: "no-store"});
      if (!r.ok) return;
      const next = new DOMParser().parseFromString(await r.text(), "text/html").querySelector("main");
      const main = document.querySelector("main");
      if (next && main) {
        main.replaceWith(next);
        document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
      }
    } catch (e) {}
  }, 3000);
})();`

// pageSecurityPolicy lets the page run its own script and nothing else, fetch
// only from itself, and load nothing from anywhere; and no page may frame
// it (so that no site can dress it up and lure a click on it).
var pageSecurityPolicy = func() string {
	sum := sha256.Sum256([]byte(refreshScript))
	return "default-src 'none'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; script-src 'sha256-" +
		base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

var pageTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"when":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000 UTC") },
	"dur":    func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"script": func() template.JS { return template.JS(refreshScript) },
	"is":     func(s fate.State, name string) bool { return s.String() == name },
}).Parse(`
{{define "style"}}<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}
.bad,.dead-letter{color:#b00}.waiting{color:#a16207}.delivered{color:#15803d}.repeat,.unknown{color:#666}
pre{background:#f6f6f6;padding:.8em;overflow:auto}.alert{background:#fee2e2;color:#991b1b;padding:.5em .8em;margin:.3em 0}
.stats span{margin-right:1.5em}form.filter input,form.filter select{margin-right:.5em}code{background:#f6f6f6;padding:.1em .3em}
</style>{{end}}

{{define "fate"}}{{$dest := .Dest}}{{with .Fate}}{{if is .State "delivered"}}at {{when .DoneAt}}, after waiting {{dur .Waited}}{{if .Attempts}} and {{.Attempts}} failed tries{{end}}; {{if $dest}}{{$dest}} took it{{else}}Meiro Events answered 2xx{{end}}{{end}}
{{if is .State "waiting"}}{{if .Attempts}}{{.Attempts}} failed tries so far{{if .Status}} (last answer {{.Status}}){{end}}; next try at {{when .NextTry}}; last error: {{.LastError}}{{else}}stored at {{when .StoredAt}}, not tried yet{{end}}{{end}}
{{if is .State "dead letter"}}at {{when .DoneAt}}: refused{{if .Status}} with {{.Status}}{{end}}: {{.LastError}}; kept in <code>{{.File}}</code>{{end}}
{{if is .State "repeat"}}of post <a href="/posts/{{.StoredBy}}">{{.StoredBy}}</a>{{if not .StoredAt.IsZero}} (stored at {{when .StoredAt}}){{end}}: not stored again{{end}}
{{if is .State "unknown"}}not followed: older than the inspector keeps, or not stored by this process{{end}}{{end}}{{end}}

{{define "list"}}<!doctype html><html><head><meta charset="utf-8"><title>netcore-connect: latest posts</title>{{template "style"}}</head>
<body><h1>Latest Netcore posts</h1>{{if .Catalog}}<p><a id="catalog-link" href="/catalog">Catalog of panels: their fields, and what changed</a></p>{{end}}
<form class="filter" method="get" action="/">
<select name="status" aria-label="status"><option value="">any status</option>{{range .Statuses}}<option{{if eq . $.Filter.Status}} selected{{end}}>{{.}}</option>{{end}}</select>
<input name="panel" placeholder="panel" value="{{.Filter.Panel}}" aria-label="panel">
<input name="client" placeholder="client address" value="{{.Filter.Client}}" aria-label="client">
<input name="q" placeholder="a value in the events (identity, msgid, guid)" value="{{.Filter.Query}}" size="40" aria-label="search">
<button type="submit">Find</button> <a href="/">all posts</a></form>
<main>
{{with .Status}}<section id="pipeline">
{{range .Alerts}}<p class="alert">{{.}}</p>{{end}}
{{with .Quarantine}}<div id="quarantine" class="alert"><p><b>Quarantined, not delivered:</b> posts from addresses outside the allowlist, kept until you release or drop them.</p>
<table><thead><tr><th>address</th><th>posts</th><th>events</th><th>panels</th><th>first seen</th><th>last seen</th><th>to deliver them, then add the address to NETCORE_ALLOWED_IPS</th><th>to delete them</th></tr></thead><tbody>
{{range .}}<tr class="quarantined"><td>{{.Address}}</td><td>{{.Posts}}</td><td>{{.Events}}</td><td>{{range $i, $p := .PanelNames}}{{if $i}}, {{end}}{{$p}}{{end}}</td><td>{{when .First}}</td><td>{{when .Last}}</td>
<td><code>netcore-connect quarantine release --client {{.Address}}</code></td><td><code>netcore-connect quarantine drop --client {{.Address}}</code></td></tr>{{end}}
</tbody></table></div>{{end}}
{{range .Destinations}}{{if .Named}}<div class="destination" data-destination="{{.Name}}"><h2>{{.Name}}</h2>{{end}}
{{if .HasQueue}}<p class="stats"><span>waiting: <b {{if not .Named}}id="waiting" {{end}}data-stat="waiting">{{.Queue.Events}}</b>{{if .Queue.Events}} (oldest {{.OldestAge}}){{end}}</span>
<span>delivered, last 5 min: <b {{if not .Named}}id="delivered" {{end}}data-stat="delivered">{{.Delivered}}</b></span><span>dead letters, last 5 min: <b {{if not .Named}}id="dead-letters" {{end}}data-stat="dead-letters">{{.DeadLettered}}</b></span></p>
{{.Chart}}<p><span class="delivered">— delivered</span> <span style="color:#2563eb">— received</span>, per minute</p>
{{else if .Named}}<p class="note">Its queue has not reported in the last 10 seconds.</p>
{{else}}<p class="note" id="no-delivery">This process does not deliver events (no disk queue here), so what became of them cannot be seen from it. In the scale-out configs no single process sees both ends: look at the deliverers' logs and metrics, and the stream.</p>{{end}}
{{if .Named}}</div>{{end}}{{end}}
</section>{{end}}
<p>Newest first{{if .Filter.Query}}; showing the posts whose events hold "{{.Filter.Query}}"{{end}}: {{len .Rows}} of the {{.Kept}} kept. Refreshes by itself.</p>
<table id="posts"><thead><tr><th>time</th><th>client</th><th>status</th><th>panels (events)</th><th>events</th><th>bytes</th><th>delivery</th><th></th></tr></thead><tbody>
{{range .Rows}}<tr class="{{.Class}}"><td>{{when .Time}}</td><td>{{.Client}}</td><td>{{.Status}}</td>
<td class="panels">{{if .Summary}}{{.Summary}}{{else}}{{.Reason}}{{end}}</td><td>{{.Events}}</td><td>{{.Bytes}}</td>
<td class="fates">{{if .Quarantined}}quarantined, not delivered{{else if eq .Status 200}}{{.Fates}}{{end}}</td>
<td><a href="/posts/{{.RequestID}}">{{.RequestID}}</a></td></tr>
{{else}}<tr><td colspan="8">{{if .Filter.Active}}No post matches.{{else}}No post received yet.{{end}}</td></tr>{{end}}
</tbody></table></main>
<script>{{script}}</script></body></html>{{end}}

{{define "post"}}<!doctype html><html><head><meta charset="utf-8"><title>netcore-connect: post {{.RequestID}}</title>{{template "style"}}</head>
<body><p><a href="/">← latest posts</a></p><h1>Post {{.RequestID}}</h1>
<main>
<table><tr><th>time</th><td>{{when .Time}}</td></tr><tr><th>client</th><td>{{.Client}}</td></tr>
<tr><th>status</th><td>{{.Status}}</td></tr>{{if .Reason}}<tr><th>reason</th><td class="bad">{{.Reason}}</td></tr>{{end}}
<tr><th>bytes</th><td>{{.Bytes}}</td></tr><tr><th>panels</th><td>{{.Summary}}</td></tr>
{{if .Quarantined}}<tr><th>delivery</th><td id="fates" class="bad">quarantined, not delivered: <code>netcore-connect quarantine release --client {{.Client}}</code> delivers it</td></tr>{{else if eq .Status 200}}<tr><th>delivery</th><td id="fates">{{.Fates}}</td></tr>{{end}}</table>
{{if and (eq .Status 200) (not .HasQueue)}}<p class="note">This process does not deliver events, so their fate cannot be seen from it (the scale-out configs: look at the deliverers).</p>{{end}}
{{if .TooLarge}}<p>The events of posts over 256 KiB are not kept.</p>{{end}}
{{if .Events}}<h2>Events, one message each{{if .Masked}} (personal fields masked){{end}}</h2>
{{range .Events}}<h3 class="event">{{.Panel}} #{{.Index}}</h3>
{{if .Dests}}<div class="fate" data-event-id="{{printf "%x" .ID}}">{{range .Dests}}<p class="destination {{.StateClass}}" data-destination="{{.Dest}}"><b>{{.Dest}}: {{.Fate.State}}</b>
{{template "fate" .}}
</p>{{end}}</div>{{else}}<p class="fate {{.StateClass}}" data-event-id="{{printf "%x" .ID}}"><b>{{.Fate.State}}</b>
{{template "fate" .}}
</p>{{end}}<pre>{{.JSON}}</pre>{{end}}{{end}}
{{if .Fates.DeadLettered}}<h2>Send the dead letters again</h2><p>Once the cause is fixed: <code>MEIRO_EVENTS_URL=... netcore-connect run config/replay-dead-letters.yaml</code></p>{{end}}
{{if and (eq .Status 200) (not .Quarantined)}}<h2>Send this hour again</h2><p>With the archive on, every event of the post's hour: <code>{{.ReplayCmd}}</code></p>{{end}}
{{if .Excerpt}}<h2>Start of the body</h2><pre>{{.Excerpt}}</pre>{{end}}
</main>
<script>{{script}}</script></body></html>{{end}}
`))

// Style is the pages' style sheet, for a page served beside them (the
// catalog's) to look the same.
func Style() template.HTML {
	var style strings.Builder
	_ = pageTemplates.ExecuteTemplate(&style, "style", nil)
	return template.HTML(style.String()) // our own template's output
}
