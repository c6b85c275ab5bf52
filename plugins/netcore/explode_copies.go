package netcore

import (
	"hash/maphash"
	"slices"

	"github.com/netcore-connect/netcore-connect/internal/rawjson"
)

// Copies numbers the identical events of one post (the same panel name and
// the same compact JSON), so that each gets an event id of its own: two
// clicks without ts or msgid are the same bytes, and are still two events.
// A resend of the post is numbered the same way, so its events are still
// found to be repeats.
type Copies struct {
	// Event (counted across the panels, in order) → its copy number, for
	// the second, third… copy only: nil for the posts that have none.
	nth map[int]int
}

// Of is the copy number of event i of the post (counted across the
// panels): 0 for the first of its kind, 1 for the first identical one
// after it, and so on.
func (c Copies) Of(i int) int { return c.nth[i] }

// copiesSeed seeds the hashes that find candidate copies; they never leave
// the process, so a seed of its own is fine.
var copiesSeed = maphash.MakeSeed()

// CopiesOf numbers the identical events of panels. compact says the events
// are compact JSON already (Post.Compact), as the disk queue stores them;
// others are compacted for the comparison, as their ids are. Nearly every
// post has no copies: that costs one cheap hash of each event and a sort
// of 8 bytes an event; the events whose hash repeats are then compared
// whole.
func CopiesOf(panels []Panel, compact bool) Copies {
	n := 0
	for _, panel := range panels {
		n += len(panel.Events)
	}
	if n < 2 {
		return Copies{}
	}
	var buf []byte
	hashes := make([]uint64, 0, n)
	for _, panel := range panels {
		for _, ev := range panel.Events {
			hashes = append(hashes, eventHash(panel.Name, compacted(ev, compact, &buf)))
		}
	}
	slices.Sort(hashes)
	var repeated map[uint64]struct{} // hashes of more than one event
	for i := 1; i < len(hashes); i++ {
		if hashes[i] == hashes[i-1] {
			if repeated == nil {
				repeated = map[uint64]struct{}{}
			}
			repeated[hashes[i]] = struct{}{}
		}
	}
	if repeated == nil {
		return Copies{}
	}
	c := Copies{nth: map[int]int{}}
	seen := map[string]int{} // panel, NUL, compact event → copies so far
	i := 0
	for _, panel := range panels {
		for _, ev := range panel.Events {
			ev = compacted(ev, compact, &buf)
			if _, ok := repeated[eventHash(panel.Name, ev)]; ok {
				key := panel.Name + "\x00" + string(ev)
				if k := seen[key]; k > 0 {
					c.nth[i] = k
				}
				seen[key]++
			}
			i++
		}
	}
	return c
}

// compacted is ev as compact JSON: ev itself when compact says it is,
// else compacted into *buf (reused from one event to the next).
func compacted(ev []byte, compact bool, buf *[]byte) []byte {
	if compact {
		return ev
	}
	*buf = rawjson.AppendCompact((*buf)[:0], ev)
	return *buf
}

func eventHash(panel string, compact []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(copiesSeed)
	h.WriteString(panel)
	h.WriteByte(0)
	h.Write(compact)
	return h.Sum64()
}
