package catalog

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Write prints the catalog as text: each panel with its tree of fields
// (types with counts, share of events, example), then the changes, oldest
// first, and the bounds reached.
func (v View) Write(w io.Writer) {
	if len(v.Panels) == 0 {
		fmt.Fprintln(w, "the catalog is empty: no post has been received yet")
	}
	for _, p := range v.Panels {
		fmt.Fprintf(w, "panel %s  events %d  learned %d  first %s  last %s\n", p.Name, p.Events, p.Learned, stamp(p.First), stamp(p.Last))
		for _, r := range p.Rows {
			fmt.Fprintf(w, "  %-40s %-30s %6.1f%%", strings.Repeat("  ", r.Depth)+r.Name, typeCounts(r.Types), 100*r.Share)
			if r.Example != "" {
				fmt.Fprintf(w, "  e.g. %s", r.Example)
			}
			fmt.Fprintln(w)
		}
		if p.PathsOverflow > 0 {
			fmt.Fprintf(w, "  bound reached: %d field occurrences not kept (at most %d fields a panel, %d bytes in all)\n", p.PathsOverflow, MaxPathsPerPanel, MaxBytes)
		}
	}
	if v.PanelsOverflow > 0 {
		fmt.Fprintf(w, "bound reached: %d events of panels not kept (at most %d panels, %d bytes in all)\n", v.PanelsOverflow, MaxPanels, MaxBytes)
	}
	fmt.Fprintf(w, "changes (%d, oldest first", len(v.Changes))
	if v.ChangesDropped > 0 {
		fmt.Fprintf(w, "; %d older ones no longer listed", v.ChangesDropped)
	}
	fmt.Fprintln(w, "):")
	for _, ch := range v.Changes {
		fmt.Fprintf(w, "  %s\n", ch)
	}
}

// String is the change in one line.
func (ch Change) String() string {
	where := ch.Panel
	if ch.Path != "" {
		where += " " + ch.Path
	}
	return fmt.Sprintf("%s %s %s: %s → %s (request %s)", stamp(ch.Time), ch.Kind, where, ch.Before, ch.After, ch.RequestID)
}

// typeCounts lists the kinds seen with their counts: "integer 12, string 3".
func typeCounts(t Types) string {
	parts := make([]string, 0, kinds)
	for _, k := range t.Kinds() {
		parts = append(parts, fmt.Sprintf("%s %d", k, t[k]))
	}
	return strings.Join(parts, ", ")
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }
