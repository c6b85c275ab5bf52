package catalog

import (
	"sync"
	"time"
)

// Bounds of the catalog. Each path costs some 300 bytes besides its name
// and example, so the counts alone (half a million paths) could take far
// more than the catalog is allowed: MaxBytes bounds it too, and whichever
// is reached first stops it growing. What does not fit is counted as
// overflow and said so, on the page, by `catalog show` and in one log line.
const (
	MaxPanels        = 1000
	MaxPathsPerPanel = 500
	MaxBytes         = 8 << 20
	// MaxChanges is how many changes are listed; older ones are dropped
	// (and counted), the metric keeps them all.
	MaxChanges = 1000
	// QuietEvents of a panel are learned without flagging anything in it:
	// the shape is not known before them.
	QuietEvents = 100
	// exampleBytes caps an example value as kept.
	exampleBytes = 64
	// pathCost and panelCost are what a path and a panel hold besides their
	// strings, as counted against MaxBytes (measured by the bounds test).
	pathCost  = 360
	panelCost = 320
)

// Options are what a Catalog is told by whoever feeds it.
type Options struct {
	// Mask shows a value at path as it may be kept and shown: masked when
	// the path is a personal field. Nil keeps values as they are.
	Mask func(path string, value []byte) string
	// OnChange is told each change once, as it is flagged, outside the
	// catalog's lock (to log and count it).
	OnChange func(Change)
	// OnBound is told once when a bound is first reached.
	OnBound func(what string)
}

// Catalog is what is known of every panel.
type Catalog struct {
	opts Options

	mu      sync.Mutex
	state   state
	index   map[string]*Panel
	bytes   int64
	bounded bool // a bound was reached and said
	dirty   bool // changed since last saved
	flagged bool // a change flagged since last saved
}

// state is the part of the catalog kept on disk.
type state struct {
	Panels []*Panel `json:"panels"` // in the order first seen
	// PanelsOverflow counts events of panels not kept (past MaxPanels or
	// MaxBytes).
	PanelsOverflow int64    `json:"panels_overflow"`
	Changes        []Change `json:"changes"` // oldest first, at most MaxChanges
	ChangesDropped int64    `json:"changes_dropped"`
}

// Panel is what is known of one panel.
type Panel struct {
	Name    string    `json:"name"`
	Events  int64     `json:"events"`  // events received
	Learned int64     `json:"learned"` // events walked (all, unless sampled)
	First   time.Time `json:"first"`
	Last    time.Time `json:"last"`
	// PathsOverflow counts occurrences of paths not kept (past
	// MaxPathsPerPanel or MaxBytes).
	PathsOverflow int64   `json:"paths_overflow"`
	Paths         []*Path `json:"paths"` // in the order first seen

	index map[string]*Path
}

// Path is what is known of one field path of a panel, such as
// event_params.ts or payload_params.items[].price_s.
type Path struct {
	Path   string    `json:"path"`
	Types  Types     `json:"types"`  // learned events carrying each type here
	Events int64     `json:"events"` // learned events carrying it
	First  time.Time `json:"first"`
	Last   time.Time `json:"last"`
	// Example is one value, masked where the inspector masks; only for
	// strings, numbers and booleans.
	Example string `json:"example,omitempty"`
	// FirstAt and LastAt are the panel's learned events (counted from 0)
	// that first and last carried it; Misses the runs without it since,
	// as many as can matter to field_missing (see drift.go).
	FirstAt int64  `json:"first_at"`
	LastAt  int64  `json:"last_at"`
	Misses  []Span `json:"misses,omitempty"`
	// Parent is the path of the object or array holding it, kept because
	// a key may hold a dot: "a.b" at the top and "b" inside "a" are both
	// written a.b. Nil in files written before it was kept.
	Parent *string `json:"parent,omitempty"`

	parent    *Path
	now       uint8 // kinds seen in the event being walked
	missingAt int64 // the event at which it was flagged missing
}

// Change is one change of a panel's shape, flagged once.
type Change struct {
	Time      time.Time `json:"time"`
	Panel     string    `json:"panel"`
	Path      string    `json:"path,omitempty"`
	Kind      string    `json:"change"` // one of the Change* names
	Before    string    `json:"before"`
	After     string    `json:"after"`
	RequestID string    `json:"request_id"`
}

// The kinds of change, as the metric's change label names them.
const (
	ChangeNewPanel     = "new_panel"
	ChangeNewField     = "new_field"
	ChangeTypeChanged  = "type_changed"
	ChangeFieldMissing = "field_missing"
)

// New is an empty catalog.
func New(opts Options) *Catalog {
	return &Catalog{opts: opts, index: map[string]*Panel{}}
}

// Learn walks every event of a panel's share of one post.
func (c *Catalog) Learn(panel string, events [][]byte, requestID string, at time.Time) {
	c.learn(panel, len(events), events, nil, requestID, at)
}

// learn counts seen events of panel received, and walks those of events
// (which may be fewer, or none) that sample picks (nil: all), and every
// one of a panel still in its quiet period; then it tells the changes
// found.
func (c *Catalog) learn(panel string, seen int, events [][]byte, sample func() bool, requestID string, at time.Time) {
	c.mu.Lock()
	l := learning{c: c, requestID: requestID, at: at}
	l.panel(panel, seen, events, sample)
	bound := l.bound
	c.mu.Unlock()
	for _, ch := range l.changes {
		if c.opts.OnChange != nil {
			c.opts.OnChange(ch)
		}
	}
	if bound != "" && c.opts.OnBound != nil {
		c.opts.OnBound(bound)
	}
}

// learning is one call of learn, under the lock.
type learning struct {
	c         *Catalog
	requestID string
	at        time.Time
	changes   []Change
	bound     string // a bound first reached now, to be said
	walk      walker
}

func (l *learning) panel(name string, seen int, events [][]byte, sample func() bool) {
	c := l.c
	c.dirty = true
	p := c.index[name]
	if p == nil {
		if p = l.newPanel(name); p == nil {
			c.state.PanelsOverflow += int64(seen)
			return
		}
	}
	p.Events += int64(seen)
	p.Last = l.at
	l.walk.l, l.walk.p = l, p
	for _, ev := range events {
		if p.Learned < QuietEvents || sample == nil || sample() {
			l.walk.event(ev)
		}
	}
}

func (l *learning) newPanel(name string) *Panel {
	c := l.c
	cost := int64(panelCost + len(name))
	if len(c.state.Panels) >= MaxPanels || c.bytes+cost > MaxBytes {
		l.reached("panels")
		return nil
	}
	c.bytes += cost
	p := &Panel{Name: name, First: l.at, Last: l.at, index: map[string]*Path{}}
	c.index[name] = p
	c.state.Panels = append(c.state.Panels, p)
	l.flag(Change{Panel: name, Kind: ChangeNewPanel, Before: "absent", After: "seen"})
	return p
}

// newPath keeps a path first seen in event n of p, or nil past the bounds.
func (l *learning) newPath(p *Panel, path []byte, parent *Path, n int64) *Path {
	c := l.c
	cost := int64(pathCost + 2*len(path)) // the map's key and the path's
	if len(p.Paths) >= MaxPathsPerPanel || c.bytes+cost+exampleBytes > MaxBytes {
		p.PathsOverflow++
		l.reached("paths of panel " + p.Name)
		return nil
	}
	c.bytes += cost
	f := &Path{Path: string(path), First: l.at, FirstAt: n, LastAt: n - 1, parent: parent, missingAt: -1, Parent: new(string)}
	if parent != nil {
		*f.Parent = parent.Path
	}
	p.index[f.Path] = f
	p.Paths = append(p.Paths, f)
	return f
}

// reached says a bound once.
func (l *learning) reached(what string) {
	if !l.c.bounded {
		l.c.bounded = true
		l.bound = what
	}
}

// flag records a change and has it told.
func (l *learning) flag(ch Change) {
	ch.Time, ch.RequestID = l.at, l.requestID
	c := l.c
	if len(c.state.Changes) == MaxChanges {
		c.state.Changes = append(c.state.Changes[:0], c.state.Changes[1:]...)
		c.state.ChangesDropped++
	}
	c.state.Changes = append(c.state.Changes, ch)
	c.flagged = true
	l.changes = append(l.changes, ch)
}

// keepExample keeps v as f's example, masked, cut to exampleBytes.
func (l *learning) keepExample(f *Path, v []byte) {
	shown := string(v)
	if mask := l.c.opts.Mask; mask != nil {
		shown = mask(f.Path, v)
	}
	if len(shown) > exampleBytes {
		shown = cut(shown, exampleBytes) + "…"
	}
	l.c.bytes += int64(len(shown) - len(f.Example))
	f.Example = shown
}

// cut is s cut to at most n bytes, at a rune boundary.
func cut(s string, n int) string {
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
