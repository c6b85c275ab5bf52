package diskqueue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	bolt "go.etcd.io/bbolt"

	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
	"github.com/netcore-connect/netcore-connect/internal/stage"
)

// postConfig is testConfig for a queue that stores posts whole.
func postConfig(t *testing.T) queueConfig {
	t.Helper()
	c := testConfig(t)
	conf, err := service.NewConfigSpec().Fields(netcorepost.ExplodeFields("")...).ParseYAML(`timezone: UTC`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.explode, err = netcorepost.NewExploder(conf); err != nil {
		t.Fatal(err)
	}
	return c
}

// postMessage is a post as netcore_webhook hands it over.
func postMessage(t testing.TB, data string) *service.Message {
	t.Helper()
	msg := service.NewMessage([]byte(data))
	msg.MetaSetMut(stage.MetaRequestID, "req-1")
	msg.MetaSetMut(stage.MetaReceivedAt, "2026-11-28T10:00:00Z")
	return msg
}

// storePost stores posts (JSON data), each a record, and returns the
// events the queue found to be repeats (counted across them).
func storePost(t *testing.T, q *queue, posts ...string) []int {
	t.Helper()
	var recs [][]byte
	var keys [][]eventKey
	for _, p := range posts {
		rec, k, err := appendPostRecord(nil, postMessage(t, p), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		recs, keys = append(recs, rec), append(keys, k)
	}
	type result struct {
		err     error
		repeats []int
	}
	done := make(chan result, 1)
	if err := q.putRecords(recs, keys, nil, func(err error, repeats []int) { done <- result{err, repeats} }); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.repeats
	case <-time.After(5 * time.Second):
		t.Fatal("put never acknowledged")
		return nil
	}
}

// msgid is the msgid field of an exploded event.
func msgid(t *testing.T, l *lease) string {
	t.Helper()
	b, _ := l.msg.AsBytes()
	_, rest, ok := strings.Cut(string(b), `"msgid":"`)
	id, _, _ := strings.Cut(rest, `"`)
	if !ok {
		t.Fatalf("event without msgid: %s", b)
	}
	return id
}

// closedWith stores posts in a new queue file of c, and closes it.
func closedWith(t *testing.T, c queueConfig, posts ...string) {
	t.Helper()
	q, err := openQueue(c)
	if err != nil {
		t.Fatal(err)
	}
	storePost(t, q, posts...)
	if err := q.close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// deliver takes n events and acknowledges each as delivered, and returns
// their msgids in the order handed out.
func deliver(t *testing.T, q *queue, n int) []string {
	t.Helper()
	var got []string
	for range n {
		l, _ := take(t, q)
		got = append(got, msgid(t, l))
		q.ack(l, nil)
	}
	return got
}

// waitSettled waits until the committer has taken everything pending,
// and a commit more, so that what it took is on disk.
func waitSettled(t *testing.T, q *queue) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		if q.store.idle() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pending writes never committed")
		}
		signal(q.store.wakeWrite)
		time.Sleep(5 * time.Millisecond)
	}
	// A put waits for its own commit, which starts after the one under way.
	storePost(t, q)
}

func TestPostRecordKeepsThePostExactly(t *testing.T) {
	data := `{"a": [{"msgid":"1", "n": 12345678901234567890}, {"msgid":"2"}], "b\u00e9": [{"msgid":"3"}]}`
	rec, keys, err := appendPostRecord(nil, postMessage(t, data), time.Unix(0, 42))
	if err != nil {
		t.Fatal(err)
	}
	base, panels, _, err := decodePostRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := base.MetaGet(stage.MetaRequestID); id != "req-1" {
		t.Errorf("request id %q, want req-1", id)
	}
	var got []string
	for _, p := range panels {
		for _, ev := range p.Events {
			got = append(got, p.Name+" "+string(ev))
		}
	}
	want := []string{`a {"msgid":"1","n":12345678901234567890}`, `a {"msgid":"2"}`, `bé {"msgid":"3"}`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events %q, want %q", got, want)
	}
	if len(keys) != 3 || keys[0] != eventKey(netcorepost.EventKey("a", []byte(`{"msgid":"1","n":12345678901234567890}`), 0)) {
		t.Errorf("keys %x, want the event ids of the 3 events", keys)
	}
	if at, _ := recordStoredAt(rec); at.UnixNano() != 42 || recordEvents(rec) != 3 {
		t.Errorf("stored at %v, %d events; want 42ns, 3", at, recordEvents(rec))
	}
	// A flipped bit in an event costs that event; elsewhere, the post.
	rec[len(rec)-3] ^= 1
	if _, _, damaged, err := decodePostRecord(rec); err != nil || fmt.Sprint(damaged) != "[2]" {
		t.Errorf("a flipped bit in the last event: damaged %v, %v; want [2] and no error", damaged, err)
	}
	rec[len(rec)-3] ^= 1
	at := strings.Index(string(rec), "req-1")
	rec[at] ^= 1
	if _, _, _, err := decodePostRecord(rec); !errors.Is(err, errChecksum) {
		t.Errorf("a flipped bit in the metadata decoded with %v, want a checksum mismatch", err)
	}
	if _, _, err := appendPostRecord(nil, postMessage(t, `[1]`), time.Now()); err == nil || !strings.Contains(err.Error(), "not one") {
		t.Errorf("a message that is not a post: %v, want an error saying so", err)
	}
}

// A compact post (as Netcore sends them) is stored as it stands, without
// compacting each event: the record and the event ids must be those of the
// same post with white space.
func TestACompactPostIsStoredAsTheSamePostWithWhiteSpace(t *testing.T) {
	spaced := `{ "a" : [ {"msgid": "1", "s": "x y"}, {"msgid":"2"} ], "b": [{"msgid":"3"}] }`
	compact := `{"a":[{"msgid":"1","s":"x y"},{"msgid":"2"}],"b":[{"msgid":"3"}]}`
	for data, want := range map[string]bool{spaced: false, compact: true} {
		post, err := netcorepost.PostOf(postMessage(t, data))
		if err != nil {
			t.Fatalf("PostOf(%s): %v", data, err)
		}
		if post.Compact != want {
			t.Fatalf("PostOf(%s).Compact = %v, want %v", data, post.Compact, want)
		}
	}
	stored := func(data string) string {
		rec, keys, err := appendPostRecord(nil, postMessage(t, data), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		_, panels, damaged, err := decodePostRecord(rec)
		if err != nil || len(damaged) > 0 {
			t.Fatalf("decoding the record of %s: damaged %v, %v", data, damaged, err)
		}
		var events []string
		for _, p := range panels {
			for _, ev := range p.Events {
				events = append(events, p.Name+" "+string(ev))
			}
		}
		return fmt.Sprintf("events %q, keys %x", events, keys)
	}
	got, want := stored(compact), stored(spaced)
	if got != want || !strings.Contains(want, `{\"msgid\":\"1\",\"s\":\"x y\"}`) {
		t.Errorf("the compact post is stored as\n%s\nthe same post with white space as\n%s\nwant both compact and alike", got, want)
	}
}

func TestQueueHandsOutEachEventOfAPostOnItsOwn(t *testing.T) {
	q := open(t, postConfig(t))
	storePost(t, q, `{"p":[{"msgid":"1"},{"msgid":"2"}],"q":[{"msgid":"3"}]}`)
	if events, _ := q.stats(); events != 3 {
		t.Fatalf("%d events waiting, want 3", events)
	}
	var leases []*lease
	for range 3 {
		l, _ := take(t, q)
		leases = append(leases, l)
		if id, _ := l.msg.MetaGet(stage.MetaEventID); len(id) != 32 {
			t.Errorf("event %s without its event id metadata", msgid(t, l))
		}
	}
	if got := []string{msgid(t, leases[0]), msgid(t, leases[1]), msgid(t, leases[2])}; fmt.Sprint(got) != "[1 2 3]" {
		t.Fatalf("handed out %v, want [1 2 3]", got)
	}
	// The place of an event is counted within its panel, as netcore_explode does.
	if index, _ := leases[2].msg.MetaGet(stage.MetaEventIndex); index != "0" {
		t.Errorf("the first event of panel q has netcore_event_index %q, want 0", index)
	}
	// A processor may change the message it delivers; its retry is the event as stored.
	leases[1].msg.SetBytes([]byte(`{"msgid":"CHANGED"}`))
	leases[1].msg.MetaSetMut("added_by_a_processor", "x")
	q.ack(leases[0], nil)
	q.ack(leases[1], errors.New("503"))
	q.ack(leases[2], nil)
	// The failed event comes back on its own, the others are not sent again.
	l, _ := take(t, q)
	if _, changed := l.msg.MetaGet("added_by_a_processor"); msgid(t, l) != "2" || l.post != nil || changed {
		t.Fatalf("retry handed out event %s (post %v, changed metadata %v), want event 2 as stored, as a record of its own", msgid(t, l), l.post, changed)
	}
	q.ack(l, nil)
	waitSettled(t, q)
	if events, bytes := q.stats(); events != 0 || bytes != 0 {
		t.Errorf("%d events, %d bytes waiting after every event was delivered", events, bytes)
	}
	assertBucketsEmpty(t, q)
}

func assertBucketsEmpty(t *testing.T, q *queue) {
	t.Helper()
	_ = q.store.db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketEvents, bucketSettled} {
			if n := tx.Bucket(b).Stats().KeyN; n != 0 {
				t.Errorf("bucket %s holds %d keys after every event was delivered", b, n)
			}
		}
		return nil
	})
}

func TestRestartDoesNotResendTheSettledEventsOfAPost(t *testing.T) {
	c := postConfig(t)
	q, err := openQueue(c)
	if err != nil {
		t.Fatal(err)
	}
	storePost(t, q, `{"p":[{"msgid":"1"},{"msgid":"2"},{"msgid":"3"},{"msgid":"4"}]}`)
	first, _ := take(t, q)
	second, _ := take(t, q)
	q.ack(first, nil)
	q.ack(second, errors.New("503")) // written on its own, settled in the post
	waitSettled(t, q)
	if err := q.close(context.Background()); err != nil {
		t.Fatal(err)
	}

	q = open(t, c)
	if events, _ := q.stats(); events != 3 {
		t.Errorf("%d events waiting after the restart, want 3 (one delivered of 4)", events)
	}
	got := deliver(t, q, 3)
	// Event 2 was written on its own after the post: it comes last.
	if fmt.Sprint(got) != "[3 4 2]" {
		t.Errorf("after the restart handed out %v, want [3 4 2]", got)
	}
	waitSettled(t, q)
	assertBucketsEmpty(t, q)
}

func TestRepeatsInsideAPostAreNeitherCountedNorSent(t *testing.T) {
	q := open(t, postConfig(t))
	if repeats := storePost(t, q, `{"p":[{"msgid":"1"},{"msgid":"2"}]}`); len(repeats) != 0 {
		t.Fatalf("first post had repeats %v", repeats)
	}
	// Sent again: every event a repeat, nothing stored; then a post that
	// repeats one event of the first.
	if repeats := storePost(t, q, `{"p":[{"msgid":"1"},{"msgid":"2"}]}`, `{"p":[{"msgid":"3"},{"msgid":"2"}]}`); fmt.Sprint(repeats) != "[0 1 3]" {
		t.Fatalf("repeats %v, want [0 1 3]", repeats)
	}
	if events, _ := q.stats(); events != 3 {
		t.Fatalf("%d events waiting, want 3", events)
	}
	got := deliver(t, q, 3)
	if fmt.Sprint(got) != "[1 2 3]" {
		t.Errorf("handed out %v, want [1 2 3]", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if l, err := q.next(ctx); err == nil {
		t.Errorf("handed out %s as well: a repeat was sent", msgid(t, l))
	}
	waitSettled(t, q)
	assertBucketsEmpty(t, q)
}

func TestAFileOfPostsNeedsExplodeToStart(t *testing.T) {
	c := postConfig(t)
	closedWith(t, c, `{"p":[{"msgid":"1"}]}`)
	c.explode = nil
	if _, err := openQueue(c); err == nil || !strings.Contains(err.Error(), "set explode") {
		t.Errorf("opened a file of posts without explode: %v, want an error saying to set it", err)
	}
}

func TestADamagedEventOfAPostIsSetAsideAndTheRestDelivered(t *testing.T) {
	c := postConfig(t)
	var damaged []error
	c.onDamaged = func(_ uint64, err error) { damaged = append(damaged, err) }
	closedWith(t, c, `{"p":[{"msgid":"1"},{"msgid":"DAMAGE-ME"},{"msgid":"3"}]}`)
	file, err := os.ReadFile(c.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.path, bytes.ReplaceAll(file, []byte("DAMAGE-ME"), []byte("DAMAGE-YE")), 0o600); err != nil {
		t.Fatal(err)
	}

	q := open(t, c)
	got := deliver(t, q, 2)
	if fmt.Sprint(got) != "[1 3]" || len(damaged) != 1 || !errors.Is(damaged[0], errChecksum) {
		t.Fatalf("handed out %v, damage told %v; want [1 3] and one checksum mismatch", got, damaged)
	}
	waitSettled(t, q)
	assertBucketsEmpty(t, q)
	_ = q.store.db.View(func(tx *bolt.Tx) error {
		var aside []string
		_ = tx.Bucket(bucketDamaged).ForEach(func(_, v []byte) error { aside = append(aside, string(v)); return nil })
		if len(aside) != 1 || !strings.Contains(aside[0], "DAMAGE-YE") {
			t.Errorf("damaged bucket holds %q, want the damaged event", aside)
		}
		return nil
	})
}

// Marks are checked before they are believed: a damaged one makes the
// post's events be sent again, never skipped.
func TestDamagedMarksSettleNothing(t *testing.T) {
	c := postConfig(t)
	q, err := openQueue(c)
	if err != nil {
		t.Fatal(err)
	}
	storePost(t, q, `{"p":[{"msgid":"1"},{"msgid":"2"},{"msgid":"3"}]}`)
	q.ack(mustTake(t, q), nil) // event 1 delivered: marked
	mustTake(t, q)             // event 2 out when the process stops
	waitSettled(t, q)
	if err := q.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(c.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSettled)
		k, v := b.Cursor().First()
		if k == nil {
			return errors.New("no marks were written")
		}
		v = bytes.Clone(v)
		v[len(v)-1] ^= 0b110 // events 2 and 3 "settled" by a flipped bit
		return b.Put(bytes.Clone(k), v)
	})
	if cerr := db.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}

	q = open(t, c)
	if got := deliver(t, q, 3); fmt.Sprint(got) != "[1 2 3]" {
		t.Errorf("after damaged marks handed out %v, want all of [1 2 3] again", got)
	}
}

func mustTake(t *testing.T, q *queue) *lease {
	t.Helper()
	l, _ := take(t, q)
	return l
}
