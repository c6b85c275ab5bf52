package inspector

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/fate"
)

// A process may deliver to several destinations, each from a disk queue of
// its own with a fate book of its own (fate.Books): an event may be
// delivered to the archive and wait for Meiro Events. With one destination
// the page reads as it always did, unnamed; with several, each event's fate
// and each queue's state is shown for each, by the queue's destination.

// destinations are the Books of the process's destinations.
func (in *Inspector) destinations() []*fate.Book { return in.books.All() }

// fatesOf is the fate of each event of p, by panel, at each of books (one
// unknown fate each where there is none).
func (in *Inspector) fatesOf(p *inspectedPost, books []*fate.Book) [][][]fate.Fate {
	ids := in.eventIDs(p)
	out := make([][][]fate.Fate, len(ids))
	for i, panelIDs := range ids {
		out[i] = make([][]fate.Fate, len(panelIDs))
		for j, id := range panelIDs {
			at := make([]fate.Fate, max(len(books), 1))
			for k, b := range books {
				at[k] = b.Of(id, p.RequestID)
			}
			out[i][j] = at
		}
	}
	return out
}

// delivery is the fates of a post's events: summed over every destination,
// and each destination's where there are several.
type delivery struct {
	fateCounts
	each []namedCounts
}

type namedCounts struct {
	name string
	fateCounts
}

// String is the summary shown in the list: "10 delivered", or with several
// destinations "Meiro Events: 10 waiting; archive: 10 delivered".
func (d delivery) String() string {
	if d.each == nil {
		return d.fateCounts.String()
	}
	parts := make([]string, len(d.each))
	for i, c := range d.each {
		parts[i] = c.name + ": " + c.fateCounts.String()
	}
	return strings.Join(parts, "; ")
}

func countFates(fates [][][]fate.Fate, books []*fate.Book) delivery {
	var d delivery
	if len(books) > 1 {
		d.each = make([]namedCounts, len(books))
		for k, b := range books {
			d.each[k].name = b.Destination()
		}
	}
	for _, panel := range fates {
		for _, at := range panel {
			for k, f := range at {
				d.add(f.State)
				if d.each != nil {
					d.each[k].add(f.State)
				}
			}
		}
	}
	return d
}

func (c *fateCounts) add(s fate.State) {
	switch s {
	case fate.Delivered:
		c.Delivered++
	case fate.Waiting:
		c.Waiting++
	case fate.DeadLettered:
		c.DeadLettered++
	case fate.Repeat:
		c.Repeat++
	default:
		c.Unknown++
	}
}

// shownFate is an event's fate at one destination; Dest is empty where
// there is only one.
type shownFate struct {
	Dest string
	Fate fate.Fate
}

// StateClass is the CSS class of the fate.
func (f shownFate) StateClass() string {
	return strings.ReplaceAll(f.Fate.State.String(), " ", "-")
}

// destinationStatus is the state of one destination's queue; Named where
// there are several.
type destinationStatus struct {
	Name  string
	Named bool
	fate.Summary
	Chart template.HTML
}

// OldestAge is the age of the oldest waiting event, rounded for reading.
func (s destinationStatus) OldestAge() string { return s.Queue.Oldest.Round(time.Second).String() }

// alerts are what needs a person at the destination: it refuses events for
// good, it accepts none, its queue is filling.
func (s destinationStatus) alerts() []string {
	who, queue := "Meiro Events", "The queue"
	if s.Named {
		who, queue = s.Name, "The queue of "+s.Name
	}
	var out []string
	if s.DeadLettered > 0 {
		out = append(out, fmt.Sprintf("%s refused %d events for good in the last 5 minutes: they are dead letters (see the posts filtered by dead-lettered).", who, s.DeadLettered))
	}
	if s.Failed > 0 && s.Delivered == 0 {
		out = append(out, fmt.Sprintf("%s is not accepting events: %d failed deliveries and none delivered in the last 5 minutes; they wait in the queue and are tried again.", who, s.Failed))
	}
	if q := s.Queue; q.MaxBytes > 0 && float64(q.Bytes) > queueFillingShare*float64(q.MaxBytes) {
		out = append(out, fmt.Sprintf("%s is filling: %d of %d bytes; when full, Netcore gets 503.", queue, q.Bytes, q.MaxBytes))
	}
	return out
}

// anyQueue says whether a queue of this process reports: whether the fates
// of events can be seen from it at all.
func anyQueue(books []*fate.Book, now time.Time) bool {
	for _, b := range books {
		if b.Summarize(now).HasQueue {
			return true
		}
	}
	return false
}
