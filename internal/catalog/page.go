package catalog

import (
	"html/template"
	"net/http"
)

// Page is the inspector's Catalog page. The inspector serves it with its
// own access rules and headers; it has no script.
type Page struct {
	Catalog *Catalog
	// Mask shows an example kept at a path: the inspector's masking, applied
	// again when shown, so that examples kept under older rules are masked
	// by today's.
	Mask func(path string, value []byte) string
	// Style is the inspector's <style> element, for one look.
	Style template.HTML
}

// pageData is what the template shows.
type pageData struct {
	View
	Style template.HTML
}

func (pg Page) ServeHTTP(rw http.ResponseWriter, _ *http.Request) {
	_ = pageTemplate.Execute(rw, pageData{View: pg.Catalog.View().Masked(pg.Mask), Style: pg.Style})
}

// Masked is v with its examples masked again by mask, as it is now (the
// catalog may have kept them under other rules, or none); nil leaves them.
func (v View) Masked(mask func(path string, value []byte) string) View {
	if mask == nil {
		return v
	}
	for i := range v.Panels {
		for j := range v.Panels[i].Rows {
			r := &v.Panels[i].Rows[j]
			if r.Example != "" {
				r.Example = mask(r.Path.Path, []byte(r.Example))
			}
		}
	}
	return v
}

var pageTemplate = template.Must(template.New("catalog").Funcs(template.FuncMap{
	"stamp": stamp,
	"types": typeCounts,
	"pct":   func(f float64) float64 { return 100 * f },
}).Parse(`<!doctype html><html><head><meta charset="utf-8"><title>netcore-connect: catalog</title>{{.Style}}</head>
<body><main><h1>Catalog of Netcore panels</h1>
<p><a href="/">latest posts</a> · <a href="#changes">changes</a></p>
{{if not .Panels}}<p>No post has been received yet.</p>{{end}}
{{if .PanelsOverflow}}<p class="alert">Bound reached: {{.PanelsOverflow}} events of panels not kept in the catalog.</p>{{end}}
{{range .Panels}}<h2 id="panel-{{.Name}}">{{.Name}}</h2>
<p class="stats"><span>events {{.Events}}</span><span>learned {{.Learned}}</span><span>first {{stamp .First}}</span><span>last {{stamp .Last}}</span></p>
{{if .PathsOverflow}}<p class="alert">Bound reached: {{.PathsOverflow}} field occurrences not kept.</p>{{end}}
<table class="fields"><tr><th>field</th><th>types</th><th>share</th><th>example</th><th>first seen</th><th>last seen</th></tr>
{{range .Rows}}<tr><td style="padding-left:{{.Depth}}.5em" title="{{.Path.Path}}"><code>{{.Name}}</code></td><td>{{types .Types}}</td><td>{{printf "%.1f" (pct .Share)}}%</td><td>{{if .Example}}<code>{{.Example}}</code>{{end}}</td><td>{{stamp .First}}</td><td>{{stamp .Last}}</td></tr>
{{end}}</table>
{{end}}
<h2 id="changes">Changes</h2>
{{if .ChangesDropped}}<p>{{.ChangesDropped}} older changes are no longer listed.</p>{{end}}
<table class="changes"><tr><th>time</th><th>change</th><th>panel</th><th>field</th><th>before</th><th>after</th><th>post</th></tr>
{{range .Changes}}<tr class="change"><td>{{stamp .Time}}</td><td>{{.Kind}}</td><td>{{.Panel}}</td><td><code>{{.Path}}</code></td><td>{{.Before}}</td><td>{{.After}}</td><td><a href="/posts/{{.RequestID}}">{{.RequestID}}</a></td></tr>
{{end}}</table>
</main></body></html>`))
