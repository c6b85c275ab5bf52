package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/testing/netns"
)

// The traffic of the partition tests (partition_test.go): the load of
// posts and its answers, what reached Meiro Events, and the cuts.

// postResult is one post of the load and its answer (0: no answer).
type postResult struct {
	ingest     string
	start, end time.Time
	status     int
	markers    []string
}

// postLog is a load on several ingest instances that keeps every answer
// with its time, to be read against the cuts.
type postLog struct {
	mu    sync.Mutex
	posts []postResult
	wg    sync.WaitGroup
	stop  chan struct{}
}

func newPostLog() *postLog { return &postLog{stop: make(chan struct{})} }

// drive posts marked posts of 5 events to target from senders goroutines
// until finish.
func (l *postLog) drive(target, ingest string, senders int) {
	for s := range senders {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				body, markers := markedBody(fmt.Sprintf("%s-%d-%d", ingest, s, i), 5)
				r := postResult{ingest: ingest, start: time.Now(), markers: markers}
				r.status, _ = postJSON(target, body)
				r.end = time.Now()
				l.mu.Lock()
				l.posts = append(l.posts, r)
				l.mu.Unlock()
				if r.status != http.StatusOK {
					time.Sleep(20 * time.Millisecond) // refused or gone: no busy loop
				}
			}
		}()
	}
}

func (l *postLog) finish() {
	close(l.stop)
	l.wg.Wait()
}

// within lists the posts to ingest ("" for all) sent after from and answered
// before to.
func (l *postLog) within(ingest string, from, to time.Time) []postResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []postResult
	for _, r := range l.posts {
		if (ingest == "" || r.ingest == ingest) && !r.start.Before(from) && !r.end.After(to) {
			out = append(out, r)
		}
	}
	return out
}

// acked lists the markers of every event of a post answered 200.
func (l *postLog) acked() []string {
	var out []string
	for _, r := range l.within("", time.Time{}, time.Now()) {
		if r.status == http.StatusOK {
			out = append(out, r.markers...)
		}
	}
	return out
}

// firstOK is when ingest ("" for any) first answered 200 a post sent after from.
func (l *postLog) firstOK(ingest string, from time.Time) (time.Time, bool) {
	var first time.Time
	for _, r := range l.within(ingest, from, time.Now()) {
		if r.status == http.StatusOK && (first.IsZero() || r.end.Before(first)) {
			first = r.end
		}
	}
	return first, !first.IsZero()
}

// statuses counts answers by status ("none" for no answer).
func statuses(posts []postResult) map[string]int {
	out := map[string]int{}
	for _, r := range posts {
		key := "none"
		if r.status != 0 {
			key = fmt.Sprint(r.status)
		}
		out[key]++
	}
	return out
}

// arrivals keeps when Meiro Events accepted each marked event.
type arrivals struct {
	mu sync.Mutex
	at map[string][]time.Time
}

func recordArrivals(m *meiro) *arrivals {
	a := &arrivals{at: map[string][]time.Time{}}
	m.setRespond(func(body []byte) int {
		var ev struct {
			Marker string `json:"marker"`
		}
		_ = json.Unmarshal(body, &ev)
		a.mu.Lock()
		a.at[ev.Marker] = append(a.at[ev.Marker], time.Now())
		a.mu.Unlock()
		return http.StatusOK
	})
	return a
}

// repeats lists the markers that arrived more than once, with their times.
func (a *arrivals) repeats() map[string][]time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string][]time.Time{}
	for mk, times := range a.at {
		if len(times) > 1 {
			out[mk] = times
		}
	}
	return out
}

// cut says what a partition cuts a node off from.
type cut string

const (
	cutAll   cut = "everything" // its peers and its clients
	cutPeers cut = "its peers"  // routes only: it keeps its clients
)

// window is one partition, as it happened.
type window struct {
	cutAt, healedAt time.Time
	wasLeader       bool
	failover        time.Duration // cut to a new stream leader
	recovered       time.Duration // heal to every replica current
}

// partition cuts n off for hold under load, heals it, and checks that no
// ingest instance that stayed connected to n alone answered 200 a post it
// took once n was cut off: n cannot have had a majority behind any event.
func (pl *partitionLab) partition(t *testing.T, n *labNode, from cut, hold time.Duration, l *postLog, ingest map[string]*process) window {
	t.Helper()
	var w window
	w.wasLeader = pl.leader(nil) == n
	connected := pl.clientsOf(t, n)
	logAt := map[string]int{}
	for name, p := range ingest {
		logAt[name] = len(p.stdout.String())
	}
	links := []*netns.Link{n.routes}
	if from == cutAll {
		links = append(links, n.front)
	}
	for _, k := range links {
		if err := k.Cut(); err != nil {
			t.Fatal(err)
		}
	}
	// From here on, not before: a post sent while the links were going
	// down may rightly have been stored.
	w.cutAt = time.Now()
	for time.Since(w.cutAt) < hold {
		if w.wasLeader && w.failover == 0 {
			if nl := pl.leader(n); nl != nil && nl != n {
				w.failover = time.Since(w.cutAt)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	w.healedAt = time.Now()
	for _, k := range links {
		if err := k.Heal(); err != nil {
			t.Fatal(err)
		}
	}
	if w.wasLeader && w.failover == 0 {
		t.Errorf("no new stream leader within %s of cutting off the leader %s", hold, n.name)
	}
	waitFor(t, "every replica current after the heal", 90*time.Second, func() bool { return pl.inSync() })
	w.recovered = time.Since(w.healedAt)
	t.Logf("cut %s (stream leader: %v) off from %s for %s; its clients: %v; new stream leader after %s; every replica current %s after the heal; answers during the cut: %v",
		n.name, w.wasLeader, from, hold, connected, w.failover.Round(time.Millisecond), w.recovered.Round(time.Millisecond), statuses(l.within("", w.cutAt, w.healedAt)))

	for name, p := range ingest {
		during := statuses(l.within(name, w.cutAt, w.healedAt))
		outage := "none"
		if first, ok := l.firstOK(name, w.cutAt); ok {
			outage = first.Sub(w.cutAt).Round(time.Millisecond).String()
		}
		stuck := slices.Contains(connected, name) && !strings.Contains(p.stdout.String()[logAt[name]:], "reconnected")
		t.Logf("  %s: connected to %s throughout: %v; answers during the cut %v; first 200 %s after the cut", name, n.name, stuck, during, outage)
		if stuck && during["200"] > 0 {
			t.Errorf("%s answered 200 to %d posts while its only node %s was cut off from %s", name, during["200"], n.name, from)
		}
	}
	return w
}

// nextTarget is the node to cut off next: the stream's leader, found
// through JetStream's API; when cutting a node off from its peers only,
// preferably one an ingest instance is connected to, so that a node that
// keeps its clients is seen answering them; never last again.
func (pl *partitionLab) nextTarget(t *testing.T, from cut, last *labNode) *labNode {
	candidates := []*labNode{pl.leader(nil)}
	if from == cutPeers {
		candidates = nil
		for _, n := range append([]*labNode{pl.leader(nil)}, pl.nodes...) {
			if n != nil && slices.ContainsFunc(pl.clientsOf(t, n), func(c string) bool { return strings.HasPrefix(c, "ingest") }) {
				candidates = append(candidates, n)
			}
		}
	}
	candidates = append(candidates, pl.nodes...)
	for _, n := range candidates {
		if n != nil && n != last {
			return n
		}
	}
	return nil
}
