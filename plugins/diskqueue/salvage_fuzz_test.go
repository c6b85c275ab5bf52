package diskqueue

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
)

// eventIDs matches the event id an exploded event ends with.
var eventIDs = regexp.MustCompile(`,"event_id":"[0-9a-f]{32}"`)

// salvageFuzzFiles are a queue file of 300 event records and one of 60
// posts of 5 events stored whole, made once for the fuzz target.
var salvageFuzzFiles = struct {
	once          sync.Once
	events, posts []byte
	explode       *netcorepost.Exploder
}{}

// FuzzSalvageGarbledElements keeps every page's header (so that salvage
// takes the page for what its place says and reads its elements) and writes
// the fuzzer's bytes over a leaf page's element table or records: positions
// and sizes that point anywhere, overlapping records, half records, in a
// file of event records or of post records (posts true). Salvage must never
// panic and must hand out only intact events, each once. Run it
// with
//
//	go test ./plugins/diskqueue -run '^$' -fuzz FuzzSalvageGarbledElements -fuzztime 20s
func FuzzSalvageGarbledElements(f *testing.F) {
	for _, posts := range []bool{false, true} {
		f.Add(posts, uint8(0), uint16(0), []byte{0xff, 0xff, 0xff, 0xff})
		f.Add(posts, uint8(1), uint16(4), []byte{0, 0, 0, 0x80, 0xff, 0xff, 0xff, 0x7f})
		f.Add(posts, uint8(2), uint16(200), []byte("{\"n\":1}"))
	}
	f.Fuzz(func(t *testing.T, posts bool, leaf uint8, offset uint16, garble []byte) {
		files := &salvageFuzzFiles
		files.once.Do(func() {
			var err error
			if files.events, err = os.ReadFile(queueFileWith(t, 300, 0)); err != nil {
				t.Fatal(err)
			}
			c := postsFile(t, 60, 5)
			if files.posts, err = os.ReadFile(c.path); err != nil {
				t.Fatal(err)
			}
			files.explode = c.explode
		})
		data, explode := bytes.Clone(files.events), (*netcorepost.Exploder)(nil)
		if posts {
			data, explode = bytes.Clone(files.posts), files.explode
		}
		pages := leafPages(data)
		if len(pages) == 0 {
			t.Skip("no leaf page in the file")
		}
		start := pages[int(leaf)%len(pages)] + pageHeader
		at := start + int(offset)%(16<<10-pageHeader)
		copy(data[at:min(at+len(garble), start+16<<10-pageHeader)], garble)
		path := filepath.Join(t.TempDir(), "events.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		// Each event has a checksum of its own: garbling may cost a post
		// some of its events, but an event comes out intact, and once.
		seen := map[[2]int]bool{}
		if _, err := Salvage(path, explode, func(_ uint64, msg *service.Message) error {
			body, _ := msg.AsBytes()
			ok := isIntact(body)
			if posts {
				var p, i int
				p, i, ok = postsFileIntact(body)
				// A garbled element table can point a damaged event at the
				// bytes of an intact one: counted as its copy, the intact
				// one gets a later copy number and a new id, and is sent
				// again rather than lost. Its bytes must still be intact.
				ok = ok || eventIDs.ReplaceAllString(string(body), "") == eventIDs.ReplaceAllString(exploded(postsFileEvent(p, i), receivedTime), "")
				if seen[[2]int{p, i}] {
					t.Errorf("event %d of post %d was salvaged twice", i, p)
				}
				seen[[2]int{p, i}] = true
			}
			if !ok {
				t.Errorf("a damaged event was salvaged: %.80s", body)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
}

// leafPages lists the offsets of the leaf pages of a queue file of 16 KiB
// pages.
func leafPages(data []byte) []int {
	var offs []int
	for off := 2 * (16 << 10); off+16<<10 <= len(data); off += 16 << 10 {
		if binary.LittleEndian.Uint16(data[off+8:]) == leafPageFlag {
			offs = append(offs, off)
		}
	}
	return offs
}

func isIntact(body []byte) bool {
	_, ok := intact(body)
	return ok
}
