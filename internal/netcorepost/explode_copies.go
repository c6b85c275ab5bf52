package netcorepost

import (
	"bytes"
	"cmp"
	"hash/maphash"
	"slices"

	"github.com/netcore-connect/netcore-connect/internal/fate"
	"github.com/netcore-connect/netcore-connect/internal/rawjson"
)

// Copies numbers the identical events of one post (the same panel name and
// the same compact JSON), so that each gets an event id of its own: two
// clicks without ts or msgid are the same bytes, and are still two events.
// A resend of the post is numbered the same way, so its events are still
// found to be repeats.
//
// The disk queue keeps it for as long as a post is open (hours in an
// outage), so it is small: a nil pointer for the posts without copies
// (nearly all), else at most 4 bytes an event.
type Copies struct{ *copyNumbers }

// copyNumbers are the copy numbers of a post with copies. dense is the copy
// number of every event up to the last copy, when copies are many. Else
// it is nil, and pairs holds event<<32 | copy number for each copy (the
// second, third… of its kind), in order: whichever is smaller.
type copyNumbers struct {
	dense []uint32
	pairs []uint64
}

// Of is the copy number of event i of the post (counted across the
// panels): 0 for the first of its kind, 1 for the first identical one
// after it, and so on.
func (c Copies) Of(i int) int {
	switch {
	case c.copyNumbers == nil:
		return 0
	case i < len(c.dense):
		return int(c.dense[i])
	}
	at, found := slices.BinarySearchFunc(c.pairs, i, func(p uint64, i int) int { return cmp.Compare(int(p>>32), i) })
	if !found {
		return 0
	}
	return int(uint32(c.pairs[at]))
}

// copiesSeed seeds the hashes that find candidate copies; they never leave
// the process, so a seed of its own is fine.
var copiesSeed = maphash.MakeSeed()

// CopiesOf numbers the identical events of panels. compact says the events
// are compact JSON already (Post.Compact), as the disk queue stores them;
// others are compacted for the comparison, as their ids are. Nearly every
// post has no copies: that costs one cheap hash of each event and a sort
// of 8 bytes an event; the events whose hashes agree are then compared
// whole, where they are, never copied.
func CopiesOf(panels []Panel, compact bool) Copies {
	return numberCopies(panels, compact, eventHash)
}

// EventKeys are the ids of the events of panels, by panel, as the Exploder
// gives them (EventKey, copies numbered): for what shows a post's events
// and their fates without exploding it, the inspector.
func EventKeys(panels []Panel) [][]fate.ID {
	ids := make([][]fate.ID, len(panels))
	var compact []byte
	copies, k := CopiesOf(panels, false), 0
	for i, panel := range panels {
		ids[i] = make([]fate.ID, len(panel.Events))
		for j, ev := range panel.Events {
			compact = rawjson.AppendCompact(compact[:0], ev)
			ids[i][j] = EventKey(panel.Name, compact, copies.Of(k))
			k++
		}
	}
	return ids
}

// numberCopies is CopiesOf with the hash that finds the candidates given: a
// test gives one under which every event is a candidate.
func numberCopies(panels []Panel, compact bool, hash func(panel string, compact []byte) uint64) Copies {
	events := postEvents{panels: panels, compact: compact}
	n := events.count()
	if n < 2 {
		return Copies{}
	}
	// Each event's key is the top half of its hash, then its number (a post
	// has fewer than 2^32 events: each takes 3 bytes at least). Sorted,
	// the events whose hashes agree there are side by side, in order.
	keys := make([]uint64, 0, n)
	for _, panel := range panels {
		for _, ev := range panel.Events {
			h := hash(panel.Name, compacted(ev, compact, &events.a))
			keys = append(keys, h&^0xffffffff|uint64(len(keys)))
		}
	}
	slices.Sort(keys)
	// The copies found are written over keys already read, rather than
	// into memory of their own: a group appends fewer than it reads.
	copies := keys[:0]
	for start := 0; start < len(keys); {
		end := start + 1
		for end < len(keys) && keys[end]>>32 == keys[start]>>32 {
			end++
		}
		if end-start > 1 {
			copies = events.number(keys[start:end], copies)
		}
		start = end
	}
	return compactCopies(copies)
}

// compactCopies keeps copies (event<<32 | copy number, in any order) in
// whichever form is smaller, in memory of its own: copies is part of an
// array as long as the post.
func compactCopies(copies []uint64) Copies {
	if len(copies) == 0 {
		return Copies{}
	}
	slices.Sort(copies) // by event
	last := int(copies[len(copies)-1] >> 32)
	if (last+1)*4 >= len(copies)*8 {
		return Copies{&copyNumbers{pairs: slices.Clone(copies)}}
	}
	dense := make([]uint32, last+1)
	for _, c := range copies {
		dense[c>>32] = uint32(c)
	}
	return Copies{&copyNumbers{dense: dense}}
}

// postEvents finds the events of a post by their number (across its
// panels) and compares them as their ids do.
type postEvents struct {
	panels  []Panel
	compact bool
	starts  []int  // the number of each panel's first event, once needed
	kinds   []kind // of the group being numbered
	a, b    []byte // compacted events, reused
}

// kind is one event of a group and how many identical ones followed it.
type kind struct{ first, copies int }

func (e *postEvents) count() int {
	n := 0
	for _, panel := range e.panels {
		n += len(panel.Events)
	}
	return n
}

// number appends event<<32 | copy number to copies for each copy in group:
// the keys, in order, of events whose hashes agree. Those are nearly
// always all of one kind; events of other kinds in it (hashes that agree
// by chance) are told apart by their bytes.
func (e *postEvents) number(group, copies []uint64) []uint64 {
	e.kinds = e.kinds[:0]
	for _, key := range group {
		i := int(uint32(key))
		k := slices.IndexFunc(e.kinds, func(k kind) bool { return e.same(k.first, i) })
		if k < 0 {
			e.kinds = append(e.kinds, kind{first: i})
			continue
		}
		e.kinds[k].copies++
		copies = append(copies, uint64(i)<<32|uint64(e.kinds[k].copies))
	}
	return copies
}

// same says whether events i and j are identical: the same panel name and
// the same compact JSON.
func (e *postEvents) same(i, j int) bool {
	pi, evi := e.event(i)
	pj, evj := e.event(j)
	return pi == pj && bytes.Equal(compacted(evi, e.compact, &e.a), compacted(evj, e.compact, &e.b))
}

// event is event i's panel name and JSON.
func (e *postEvents) event(i int) (string, []byte) {
	if e.starts == nil {
		e.starts = make([]int, len(e.panels))
		for p := 1; p < len(e.panels); p++ {
			e.starts[p] = e.starts[p-1] + len(e.panels[p-1].Events)
		}
	}
	// The last panel that starts at i or before: empty ones start where
	// the next one does.
	p, _ := slices.BinarySearch(e.starts, i+1)
	panel := e.panels[p-1]
	return panel.Name, panel.Events[i-e.starts[p-1]]
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
