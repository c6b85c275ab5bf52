package diskqueue

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// salvageFuzzFile is a queue file of 300 events, made once for the fuzz
// target.
var salvageFuzzFile = struct {
	once sync.Once
	data []byte
}{}

// FuzzSalvageGarbledElements keeps every page's header (so that salvage
// takes the page for what its place says and reads its elements) and writes
// the fuzzer's bytes over a leaf page's element table or records: positions
// and sizes that point anywhere, overlapping records, half records. Salvage
// must never panic and must hand out only intact events. Run it with
//
//	go test ./plugins/diskqueue -run '^$' -fuzz FuzzSalvageGarbledElements -fuzztime 20s
func FuzzSalvageGarbledElements(f *testing.F) {
	f.Add(uint8(0), uint16(0), []byte{0xff, 0xff, 0xff, 0xff})
	f.Add(uint8(1), uint16(4), []byte{0, 0, 0, 0x80, 0xff, 0xff, 0xff, 0x7f})
	f.Add(uint8(2), uint16(200), []byte("{\"n\":1}"))
	f.Fuzz(func(t *testing.T, leaf uint8, offset uint16, garble []byte) {
		salvageFuzzFile.once.Do(func() {
			data, err := os.ReadFile(queueFileWith(t, 300, 0))
			if err != nil {
				t.Fatal(err)
			}
			salvageFuzzFile.data = data
		})
		data := append([]byte(nil), salvageFuzzFile.data...)
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
		if _, err := Salvage(path, func(_ uint64, msg *service.Message) error {
			if body, _ := msg.AsBytes(); !isIntact(body) {
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
