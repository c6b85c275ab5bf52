package catalog

import "fmt"

// A field is flagged missing once it has been missing from MissingRun
// learned events of its panel in a row, if before that run began it was
// in at least 99% (MissingShare) of the panel's events, of its last
// MissingWindow at most.
const (
	MissingRun    = 100
	MissingWindow = 1000
	// maxMisses is the most events without the field that a window may
	// hold and the field still count as being in 99% of it.
	maxMisses = MissingWindow / 100
)

// Span is a run of a panel's learned events, From to To inclusive.
type Span struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// addMiss records a run of events without f. Only the latest runs that
// can matter are kept: once they hold more than maxMisses events, any
// older one changes nothing (the field is below 99% in any window that
// holds them all).
func (f *Path) addMiss(from, to int64) {
	f.Misses = append(f.Misses, Span{from, to})
	total, keep := int64(0), len(f.Misses)
	for i := len(f.Misses) - 1; i >= 0; i-- {
		total += f.Misses[i].To - f.Misses[i].From + 1
		if total > maxMisses {
			keep = len(f.Misses) - i
			break
		}
	}
	f.Misses = append(f.Misses[:0], f.Misses[len(f.Misses)-keep:]...)
}

// shareBefore is how many of the panel's events (of its last
// MissingWindow at most) before event start carried f, and of how many.
func (f *Path) shareBefore(start int64) (carried, of int64) {
	from := max(0, start-MissingWindow)
	of = start - from
	misses := max(0, min(f.FirstAt, start)-from) // before it was first seen
	for _, s := range f.Misses {
		lo, hi := max(s.From, from), min(s.To, start-1)
		if hi >= lo {
			misses += hi - lo + 1
		}
	}
	return of - misses, of
}

// missing flags the fields of p whose run of absence reaches MissingRun at
// event n. A field under one flagged at the same event is not flagged
// apart: its parent's absence says it.
func (l *learning) missing(p *Panel, n int64) {
	for _, f := range p.Paths {
		if n-f.LastAt != MissingRun {
			continue
		}
		if f.parent != nil && f.parent.missingAt == n {
			f.missingAt = n
			continue
		}
		carried, of := f.shareBefore(f.LastAt + 1)
		if of == 0 || carried*100 < of*99 {
			continue
		}
		f.missingAt = n
		l.flag(Change{Panel: p.Name, Path: f.Path, Kind: ChangeFieldMissing,
			Before: fmt.Sprintf("in %d of the %d events before", carried, of),
			After:  fmt.Sprintf("missing from %d events in a row", MissingRun)})
	}
}
