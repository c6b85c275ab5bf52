// Package journal connects the journals of a process (disk_queue buffers
// with retain_after_ack) to what tells them to publish again the records
// they retain: the nats_jetstream output, when its connection comes back
// after it lost every server, and an operator, through the endpoint
// Handler serves. The output also tells them when it loses its connection,
// so that they keep what they retain through an outage in which nothing
// comes to be published (NoteOutage). Buffer and output are separate components of one
// process, created by the engine: this hub is the one place both know.
package journal

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
)

// Path is where Handler is served on the process's HTTP server, and what
// `netcore-connect journal republish` posts to.
const Path = "/journal/republish"

// Result is what one request to publish again handed out.
type Result struct {
	Journals int `json:"journals"`
	// Records retained and handed out again now, and their events.
	Records int `json:"records"`
	Events  int `json:"events"`
	// Posts with events out for delivery: handed out again once those
	// settle (an event is never out twice at once).
	Pending int `json:"pending"`
	// Journals that could not read what they retain, and why: what they
	// retain stays, for a later republish or a restart.
	Failed int    `json:"failed,omitempty"`
	Error  string `json:"error,omitempty"`
}

func (r Result) add(o Result) Result {
	sum := Result{r.Journals + o.Journals, r.Records + o.Records, r.Events + o.Events, r.Pending + o.Pending, r.Failed + o.Failed, r.Error}
	if sum.Error != "" && o.Error != "" {
		sum.Error += "; "
	}
	sum.Error += o.Error
	return sum
}

// Journal is a buffer that can hand out again what it retains; reason says
// why, for its log.
type Journal interface {
	Republish(reason string) Result
	// NoteOutage says that the store in front of which it sits may be
	// down: what it retains is kept until the store acknowledges again.
	NoteOutage()
}

// Hub is the journals of a process.
type Hub struct {
	mu       sync.Mutex
	journals map[*entry]struct{}
}

type entry struct{ j Journal }

// Default is the process's hub.
var Default = &Hub{}

// Register adds j until the returned func is called (when j closes).
func (h *Hub) Register(j Journal) (unregister func()) {
	e := &entry{j}
	h.mu.Lock()
	if h.journals == nil {
		h.journals = map[*entry]struct{}{}
	}
	h.journals[e] = struct{}{}
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		delete(h.journals, e)
		h.mu.Unlock()
	}
}

// list is the journals registered, to call without holding h.mu.
func (h *Hub) list() []Journal {
	h.mu.Lock()
	defer h.mu.Unlock()
	journals := make([]Journal, 0, len(h.journals))
	for e := range h.journals {
		journals = append(journals, e.j)
	}
	return journals
}

// Republish tells every journal registered to publish again what it
// retains, and adds up what they handed out.
func (h *Hub) Republish(reason string) (total Result) {
	for _, j := range h.list() {
		total = total.add(j.Republish(reason))
	}
	return total
}

// NoteOutage tells every journal registered that the store may be down.
func (h *Hub) NoteOutage() {
	for _, j := range h.list() {
		j.NoteOutage()
	}
}

// Handler answers POST with h's Republish, as JSON (Result). A process
// without a journal answers 404, so that an operator who aimed at the
// wrong instance learns it; a journal that could not read what it retains,
// 500, so that nobody takes its tail for published again.
func Handler(h *Hub) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST to publish again what the journals retain", http.StatusMethodNotAllowed)
			return
		}
		res := h.Republish("requested on " + Path)
		if res.Journals == 0 {
			http.Error(w, "this process has no journal (a disk_queue with retain_after_ack)", http.StatusNotFound)
			return
		}
		if res.Failed > 0 {
			http.Error(w, fmt.Sprintf("%d of %d journals could not read what they retain (%s); it stays retained: see the instance's log, then ask again, or restart the instance (a start publishes again all a journal holds). Handed out again meanwhile: %d records (%d events)",
				res.Failed, res.Journals, res.Error, res.Records, res.Events), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res)
	}
}
