package diskqueue

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
	"github.com/netcore-connect/netcore-connect/internal/stage"
)

// copiesPost holds two identical events (two clicks without ts or msgid)
// and a third like them in another panel.
const copiesPost = `{"p":[{"msgid":"1"},{"msgid":"1"},{"msgid":"2"},{"msgid":"1"}],"q":[{"msgid":"1"}]}`

// explodedIDs are the event ids netcore_explode gives the events of data.
func explodedIDs(t *testing.T, c queueConfig, data string) []string {
	t.Helper()
	post, err := netcorepost.DecodeData([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.explode.ExplodePost(service.NewMessage([]byte(data)), post)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range batch {
		id, _ := m.MetaGet(stage.MetaEventID)
		ids = append(ids, id)
	}
	return ids
}

// Every event of a post is stored and sent, identical ones included, each
// with the id netcore_explode gives it, which is also the key the queue
// stored for repeats: the post sent again is all repeats.
func TestIdenticalEventsOfAPostAreEachSent(t *testing.T) {
	c := postConfig(t)
	q := open(t, c)
	want := explodedIDs(t, c, copiesPost)
	if len(uniq(want)) != 5 {
		t.Fatalf("netcore_explode gave ids %v, want 5 different ones", want)
	}
	_, keys, err := appendPostRecord(nil, postMessage(t, copiesPost), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range want {
		if keys[i] != keyOf(id) {
			t.Errorf("event %d: stored under key %x, its id is %s", i, keys[i], id)
		}
	}

	if repeats := storePost(t, q, copiesPost); len(repeats) != 0 {
		t.Fatalf("the post's own events taken for repeats: %v", repeats)
	}
	var got []string
	for range 5 {
		l, _ := take(t, q)
		id, _ := l.msg.MetaGet(stage.MetaEventID)
		got = append(got, id)
		q.ack(l, nil)
	}
	if !slices.Equal(got, want) {
		t.Errorf("sent ids %v, want %v", got, want)
	}
	if repeats := storePost(t, q, copiesPost); fmt.Sprint(repeats) != "[0 1 2 3 4]" {
		t.Errorf("the post sent again: repeats %v, want all 5", repeats)
	}
}

// Salvage splits a post as the queue does: the same ids.
func TestSalvageGivesIdenticalEventsTheQueuesIDs(t *testing.T) {
	c := postConfig(t)
	closedWith(t, c, copiesPost)
	var got []string
	if _, err := Salvage(c.path, c.explode, func(_ uint64, msg *service.Message) error {
		id, _ := msg.MetaGet(stage.MetaEventID)
		got = append(got, id)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := explodedIDs(t, c, copiesPost); !slices.Equal(got, want) {
		t.Errorf("salvaged ids %v, want %v", got, want)
	}
}

func uniq(s []string) map[string]bool {
	m := map[string]bool{}
	for _, v := range s {
		m[v] = true
	}
	return m
}
