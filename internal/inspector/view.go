package inspector

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/fate"
	"github.com/netcore-connect/netcore-connect/internal/quarantine"
)

// listFilter narrows the list of posts; it lives in the URL's query, so
// that every view can be pasted to a colleague.
type listFilter struct {
	Status string // refused, waiting, dead-lettered, delivered, or empty
	Panel  string
	Client string
	Query  string // a value inside the events
}

// filterStatuses are the values of the status filter, in the order offered.
var filterStatuses = []string{"refused", "waiting", "dead-lettered", "delivered"}

func parseFilter(q url.Values) listFilter {
	return listFilter{
		Status: q.Get("status"),
		Panel:  strings.TrimSpace(q.Get("panel")),
		Client: strings.TrimSpace(q.Get("client")),
		Query:  strings.TrimSpace(q.Get("q")),
	}
}

// Active says whether the filter narrows the list at all.
func (f listFilter) Active() bool { return f != listFilter{} }

// fateCounts sums the fates of a post's events.
type fateCounts struct {
	Delivered, Waiting, DeadLettered, Repeat, Unknown int
}

// String is the summary shown in the list: "10 delivered", or
// "7 delivered · 2 waiting · 1 dead letter".
func (c fateCounts) String() string {
	var parts []string
	for _, p := range []struct {
		n    int
		name string
	}{{c.Delivered, "delivered"}, {c.Waiting, "waiting"}, {c.DeadLettered, "dead letter"}, {c.Repeat, "repeat"}, {c.Unknown, "not followed"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.name))
		}
	}
	return strings.Join(parts, " · ")
}

// postRow is a post as the list shows it.
type postRow struct {
	*inspectedPost
	Fates delivery
}

// Class is the row's CSS class: red for a refusal or a dead letter, amber
// while events wait (at any destination).
func (r postRow) Class() string {
	switch {
	case r.Status != http.StatusOK || r.Fates.DeadLettered > 0 || r.Quarantined:
		return "post bad"
	case r.Fates.Waiting > 0:
		return "post waiting"
	}
	return "post"
}

// matches says whether p is in the view of f.
func (in *Inspector) matches(p *inspectedPost, c delivery, f listFilter) bool {
	switch f.Status {
	case "refused":
		if p.Status == http.StatusOK {
			return false
		}
	case "waiting":
		if c.Waiting == 0 {
			return false
		}
	case "dead-lettered":
		if c.DeadLettered == 0 {
			return false
		}
	case "delivered":
		if p.Status != http.StatusOK || c.Delivered == 0 || c.Waiting+c.DeadLettered > 0 {
			return false
		}
	}
	if f.Client != "" && p.Client != f.Client {
		return false
	}
	if f.Panel != "" && !hasPanel(p, f.Panel) {
		return false
	}
	return f.Query == "" || in.holds(p, f.Query)
}

func hasPanel(p *inspectedPost, name string) bool {
	for _, panel := range p.Panels {
		if panel.Name == name {
			return true
		}
	}
	return strings.Contains(p.Summary, name+" (")
}

// holds says whether a value inside p's events contains q. With masking on
// it searches what the page shows, so a masked field cannot be found by
// guessing its value.
func (in *Inspector) holds(p *inspectedPost, q string) bool {
	for _, panel := range p.Panels {
		for _, ev := range panel.Events {
			text := string(ev)
			if in.mask != nil {
				text, _ = in.show(ev)
			}
			if strings.Contains(text, q) {
				return true
			}
		}
	}
	return false
}

// listPage is the model of the list page.
type listPage struct {
	Filter   listFilter
	Statuses []string
	Status   statusPanel
	Rows     []postRow
	Kept     int  // posts kept in all
	Catalog  bool // a catalog of panels is served at /catalog
}

func (in *Inspector) listPage(f listFilter, now time.Time) listPage {
	books := in.destinations()
	page := listPage{Filter: f, Statuses: filterStatuses, Status: in.statusPanel(books, now), Catalog: in.catalog != nil}
	posts := in.Latest()
	page.Kept = len(posts)
	for _, p := range posts {
		row := postRow{inspectedPost: p, Fates: countFates(in.fatesOf(p, books), books)}
		if in.matches(p, row.Fates, f) {
			page.Rows = append(page.Rows, row)
		}
	}
	return page
}

// statusPanel is the state of the pipeline at the top of the list.
type statusPanel struct {
	Destinations []destinationStatus // one unnamed where there is at most one
	Alerts       []string            // what needs a person, shown in red
	Quarantine   []quarantine.Client
}

// queueFillingShare is the share of the queue's size past which it counts
// as filling, as the "queue filling" alert of deploy/prometheus-alerts.yaml.
const queueFillingShare = 0.8

func (in *Inspector) statusPanel(books []*fate.Book, now time.Time) statusPanel {
	var s statusPanel
	if in.quarantined != nil {
		s.Quarantine = in.quarantined()
	}
	for _, b := range books {
		d := destinationStatus{Summary: b.Summarize(now), Named: len(books) > 1}
		if d.Named {
			d.Name = b.Destination()
		}
		d.Chart = perMinuteChart(d.ReceivedPerMinute, d.DeliveredPerMinute)
		s.Alerts = append(s.Alerts, d.alerts()...)
		s.Destinations = append(s.Destinations, d)
	}
	if len(books) == 0 {
		s.Destinations = []destinationStatus{{}} // says it delivers nothing
	}
	in.mu.Lock()
	refused := in.refusedKnown
	in.mu.Unlock()
	if refused.Client != "" && now.Sub(refused.Time) < 5*time.Minute {
		s.Alerts = append(s.Alerts, fmt.Sprintf("The allowlist refused %s at %s, an address whose posts were stored before: did Netcore's addresses change?", refused.Client, refused.Time.UTC().Format("15:04:05 UTC")))
	}
	return s
}

// postPage is the model of a post's page.
type postPage struct {
	*inspectedPost
	Events    []shownEvent
	Fates     delivery
	Masked    bool
	TooLarge  bool // events not kept
	HasQueue  bool
	ReplayCmd string // replays the hour of the post from the archive
}

type shownEvent struct {
	Panel     string
	Index     int
	ID        fate.ID
	JSON      string
	shownFate             // at the only destination, or the first
	Dests     []shownFate // at each destination, where there are several
}

func (in *Inspector) postPage(p *inspectedPost, now time.Time) postPage {
	books := in.destinations()
	fates := in.fatesOf(p, books)
	d := postPage{inspectedPost: p, Fates: countFates(fates, books), Masked: in.mask != nil,
		TooLarge: p.Events > 0 && p.Panels == nil, HasQueue: anyQueue(books, now)}
	ids := in.eventIDs(p)
	for pi, panel := range p.Panels {
		for i, ev := range panel.Events {
			shown, values := in.show(ev)
			e := shownEvent{Panel: panel.Name, Index: i, ID: ids[pi][i], JSON: shown}
			for k, f := range fates[pi][i] {
				if in.mask != nil {
					// The destination may quote the event in its refusal.
					f.LastError = in.mask.maskText(f.LastError, values)
				}
				sf := shownFate{Fate: f}
				if len(books) > 1 {
					sf.Dest = books[k].Destination()
					e.Dests = append(e.Dests, sf)
				}
				if k == 0 {
					e.shownFate = sf
				}
			}
			d.Events = append(d.Events, e)
		}
	}
	if d.Masked && d.Excerpt != "" {
		// A rejected body is not parsed, so it cannot be masked.
		d.Excerpt = "(not shown while personal fields are masked: see the rejected-posts file)"
	}
	hour := p.Time.UTC().Truncate(time.Hour)
	d.ReplayCmd = fmt.Sprintf("REPLAY_FROM=%s REPLAY_TO=%s MEIRO_EVENTS_URL=... netcore-connect run config/replay-archive.yaml",
		hour.Format(time.RFC3339), hour.Add(time.Hour).Format(time.RFC3339))
	return d
}
