package catalog

import (
	"slices"
	"strings"
)

// View is a copy of the catalog, to show or export without holding it.
type View struct {
	Panels         []PanelView
	PanelsOverflow int64
	Changes        []Change
	ChangesDropped int64
}

// PanelView is a panel with its paths as a tree.
type PanelView struct {
	Panel
	Rows []Row // depth first, each path after the one holding it
}

// Row is one path of a panel's tree.
type Row struct {
	Path
	Depth int
	Name  string  // the key, [] for elements, under its parent
	Share float64 // of the panel's learned events carrying it, 0 to 1
}

// View copies the catalog.
func (c *Catalog) View() View {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := View{PanelsOverflow: c.state.PanelsOverflow, Changes: slices.Clone(c.state.Changes), ChangesDropped: c.state.ChangesDropped}
	for _, p := range c.state.Panels {
		pc := *p
		pc.Paths, pc.index = nil, nil // the rows are copies
		v.Panels = append(v.Panels, PanelView{Panel: pc, Rows: rows(p)})
	}
	slices.SortFunc(v.Panels, func(a, b PanelView) int { return strings.Compare(a.Name, b.Name) })
	return v
}

// rows is p's tree of paths, children sorted by name.
func rows(p *Panel) []Row {
	children := map[*Path][]*Path{}
	for _, f := range p.Paths {
		children[f.parent] = append(children[f.parent], f)
	}
	var out []Row
	var add func(parent *Path, depth int)
	add = func(parent *Path, depth int) {
		kids := children[parent]
		slices.SortFunc(kids, func(a, b *Path) int { return strings.Compare(a.Path, b.Path) })
		for _, f := range kids {
			r := Row{Path: *f, Depth: depth, Name: f.Path}
			r.Misses, r.parent = slices.Clone(f.Misses), nil
			if parent != nil {
				r.Name = strings.TrimPrefix(strings.TrimPrefix(f.Path, parent.Path), ".")
			}
			if p.Learned > 0 {
				r.Share = float64(f.Events) / float64(p.Learned)
			}
			out = append(out, r)
			add(f, depth+1)
		}
	}
	add(nil, 0)
	return out
}

// Find is the panel named, if the catalog has it.
func (v View) Find(name string) (PanelView, bool) {
	for _, p := range v.Panels {
		if p.Name == name {
			return p, true
		}
	}
	return PanelView{}, false
}
