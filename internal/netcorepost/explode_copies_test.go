package netcorepost

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/fate"
)

func TestCopiesNumberTheIdenticalEventsOfAPost(t *testing.T) {
	for _, tt := range []struct {
		name, data string
		want       []int // Of(i) for each event
	}{
		{"no copies", `{"p":[{"a":1},{"a":2}],"q":[{"a":1}]}`, []int{0, 0, 0}},
		{"one event", `{"p":[{"a":1}]}`, []int{0}},
		{"two clicks", `{"p":[{"a":1},{"a":1}]}`, []int{0, 1}},
		{"three, among others", `{"p":[{"a":1},{"b":2},{"a":1},{"b":3},{"a":1}]}`, []int{0, 0, 1, 0, 2}},
		{"two kinds of copies", `{"p":[{"a":1},{"b":2},{"b":2},{"a":1}]}`, []int{0, 0, 1, 1}},
		// Compared as their ids are: compact JSON, with the panel's name.
		{"white space is not a difference", "{\"p\":[{\"a\":1},{ \"a\" : 1 }\n]}", []int{0, 1}},
		{"same event in two panels", `{"p":[{"a":1}],"q":[{"a":1}]}`, []int{0, 0}},
		{"a panel named twice", `{"p":[{"a":1}],"q":[],"p":[{"a":1}]}`, []int{0, 1}},
		{"other bytes for the same value", `{"p":[{"a":1},{"a":1.0},{"a":"\u0041"},{"a":"A"}]}`, []int{0, 0, 0, 0}},
		{"all copies", `{"p":[{},{},{},{}]}`, []int{0, 1, 2, 3}},
		{"copies, then others", `{"p":[{"a":1},{"a":1},{"a":1},{"b":1},{"c":1}]}`, []int{0, 1, 2, 0, 0}},
		{"among empty panels", `{"e":[],"p":[{"a":1}],"f":[],"g":[],"p":[{"a":1},{"b":1},{"a":1}],"h":[]}`, []int{0, 1, 0, 2}},
		{"white space, and copies of two kinds", "{\"p\":[{\"a\":1},{\"b\":2}, {\"b\":2},{\"a\" :1},{\"a\":1}]}", []int{0, 0, 1, 1, 2}},
	} {
		post, err := DecodeData([]byte(tt.data))
		if err != nil {
			t.Fatal(err)
		}
		if len(tt.want) != post.EventCount() {
			t.Fatalf("%s: the test wants %d numbers for %d events", tt.name, len(tt.want), post.EventCount())
		}
		// Events whose hashes agree are told apart by their bytes, which
		// a hash that is the same for all puts to the test.
		for hashName, hash := range map[string]func(string, []byte) uint64{
			"":                    eventHash,
			", every event alike": func(string, []byte) uint64 { return 0 },
		} {
			t.Run(tt.name+hashName, func(t *testing.T) {
				copies := numberCopies(post.Panels, post.Compact, hash)
				var got []int
				for i := range post.EventCount() {
					got = append(got, copies.Of(i))
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("copy numbers %v, want %v", got, tt.want)
				}
			})
		}
	}
}

// The key of a first copy is what every event's key was before copies were
// numbered, so that ids stored then still match; later copies differ from
// it and from each other, the same each time.
func TestEventKeyOfACopy(t *testing.T) {
	event := []byte(`{"a":1}`)
	sum := sha256.Sum256([]byte("p\x00{\"a\":1}"))
	if got := EventKey("p", event, 0); got != fate.ID(sum[:16]) {
		t.Errorf("first copy's key %x, want sha256(panel, NUL, event) %x", got, sum[:16])
	}
	seen := map[fate.ID]int{}
	for nth := range 12 {
		k := EventKey("p", event, nth)
		if k != EventKey("p", event, nth) {
			t.Errorf("copy %d: key not stable", nth)
		}
		if prev, ok := seen[k]; ok {
			t.Errorf("copies %d and %d share key %x", prev, nth, k)
		}
		seen[k] = nth
	}
}

// Every event of a post gets an id of its own, identical ones included; a
// post sent again (here with other white space) gets the same ids; the first
// copy's id is the one the event has alone; the inspector works out the same
// ids (with EventKeys).
func TestExplodeGivesIdenticalEventsOfAPostIDsOfTheirOwn(t *testing.T) {
	p := newTestExploder(t)
	ids := func(data string) []string {
		var out []string
		batch, err := explode(p, service.NewMessage([]byte(data)))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range batch {
			id := meta(m, "netcore_event_id")
			if body := string(mustBytes(t, m)); !containsID(body, id) {
				t.Errorf("event %s does not carry its id %s", body, id)
			}
			out = append(out, id)
		}
		return out
	}
	data := `{"p":[{"x":1},{"x":1},{"x":2},{"x":1}],"q":[{"x":1}]}`
	first := ids(data)
	if len(first) != 5 || len(uniq(first)) != 5 {
		t.Fatalf("ids %v: want 5 different ones", first)
	}
	if again := ids("{\"p\":[{\"x\":1}, {\"x\":1},{\"x\":2},\n{\"x\":1}],\"q\":[{\"x\":1}]}"); !slices.Equal(first, again) {
		t.Errorf("the post sent again has ids %v, first %v", again, first)
	}
	if alone := ids(`{"p":[{"x":1}]}`); alone[0] != first[0] {
		t.Errorf("first copy's id %s, the event alone has %s", first[0], alone[0])
	}

	post, err := DecodeData([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	var inspected []string
	for _, panel := range EventKeys(post.Panels) {
		for _, k := range panel {
			inspected = append(inspected, fmt.Sprintf("%x", k[:]))
		}
	}
	if !slices.Equal(inspected, first) {
		t.Errorf("the inspector's ids %v, the explode's %v", inspected, first)
	}
}

func mustBytes(t *testing.T, m *service.Message) []byte {
	t.Helper()
	b, err := m.AsBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func containsID(body, id string) bool {
	return len(id) == 32 && strings.HasSuffix(body, `,"event_id":"`+id+`"}`)
}

func uniq(s []string) map[string]bool {
	m := map[string]bool{}
	for _, v := range s {
		m[v] = true
	}
	return m
}
