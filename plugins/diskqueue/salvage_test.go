package diskqueue

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	bolt "go.etcd.io/bbolt"

	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
	"github.com/netcore-connect/netcore-connect/internal/stage"
)

// queueFileWith writes a closed queue file holding events n = 0..stored-1,
// the first delivered of them acknowledged (deleted), and returns its path.
func queueFileWith(t *testing.T, stored, delivered int) string {
	t.Helper()
	c := testConfig(t)
	c.maxEvents, c.maxBytes = int64(stored), 1<<30
	q, err := openQueue(c)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < stored; i += 10 {
		var bodies []string
		for n := i; n < min(i+10, stored); n++ {
			bodies = append(bodies, eventBody(n))
		}
		if err := store(t, q, bodies, nil); err != nil {
			t.Fatal(err)
		}
	}
	for range delivered {
		l, _ := take(t, q)
		q.ack(l, nil)
	}
	if err := q.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c.path
}

func eventBody(n int) string {
	return fmt.Sprintf(`{"n":%d,"pad":"%s"}`, n, strings.Repeat(fmt.Sprint(n%10), 200))
}

// intact says whether body is event n exactly as stored.
func intact(body []byte) (int, bool) {
	var n int
	if _, err := fmt.Sscanf(string(body), `{"n":%d,`, &n); err != nil {
		return -1, false
	}
	return n, string(body) == eventBody(n)
}

func salvageAll(t *testing.T, path string) ([]int, SalvageReport) {
	t.Helper()
	var got []int
	report, err := Salvage(path, nil, func(_ uint64, msg *service.Message) error {
		body, _ := msg.AsBytes()
		n, ok := intact(body)
		if !ok {
			t.Errorf("a damaged event was salvaged: %.80s", body)
		}
		got = append(got, n)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, report
}

func TestSalvageGetsEveryWaitingEventBackInOrder(t *testing.T) {
	path := queueFileWith(t, 300, 100)
	got, report := salvageAll(t, path)
	if len(got) != 200 || got[0] != 100 || got[199] != 299 {
		t.Fatalf("salvaged %d events (%v…), want the 200 waiting, 100 to 299 in order; report %+v", len(got), got[:min(len(got), 5)], report)
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("out of order at %d: %d after %d", i, got[i], got[i-1])
		}
	}
	if !report.FreeListKnown || report.UnreadablePages != 0 || report.Damaged != 0 {
		t.Errorf("a sound file reported %+v", report)
	}
	stats, err := ReadFileStats(path)
	if err != nil || stats.Events != 200 || stats.Oldest.IsZero() || stats.Damaged != 0 {
		t.Errorf("stats of the same file: %+v, %v; want 200 events waiting", stats, err)
	}
}

// Every page of a queue file is garbled in turn, as in
// TestQueueSurvivesAGarbledPageAnywhere: salvage never panics, hands out
// only intact events, and loses at most the events of the garbled page.
func TestSalvageSurvivesAGarbledPageAnywhere(t *testing.T) {
	path := queueFileWith(t, 300, 0)
	pristine, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const pageSize = 16 << 10
	worst := 300
	for page := range len(pristine) / pageSize {
		garbled := append([]byte(nil), pristine...)
		rnd := rand.New(rand.NewPCG(uint64(page), 7))
		for i := page * pageSize; i < (page+1)*pageSize; i++ {
			garbled[i] = byte(rnd.IntN(256))
		}
		gp := filepath.Join(t.TempDir(), "events.db")
		if err := os.WriteFile(gp, garbled, 0o600); err != nil {
			t.Fatal(err)
		}
		got, report := salvageAll(t, gp)
		worst = min(worst, len(got))
		// A 16 KiB page holds at most 16384/230 events of this size.
		if lost := 300 - len(got); lost > pageSize/230 {
			t.Errorf("page %d garbled: %d events lost, more than one page holds (report %+v)", page, lost, report)
		}
		if _, err := ReadFileStats(gp); err != nil && !strings.Contains(err.Error(), gp) {
			t.Errorf("page %d garbled: stats error %v does not name the file", page, err)
		}
	}
	t.Logf("%d pages garbled one at a time: at least %d of 300 events salvaged each time", len(pristine)/pageSize, worst)
}

// A salvage holds an index of the records, not the file: halfway through
// handing out 6,000 events of a file of several MB, the live heap is a
// small part of the file (reading the file whole and keeping every record
// decoded, as salvage once did, held 2.3 times the file here).
func TestSalvageDoesNotHoldTheFileInMemory(t *testing.T) {
	path := queueFileWith(t, 6000, 0)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	var before, during runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n := 0
	if _, err := Salvage(path, nil, func(uint64, *service.Message) error {
		if n++; n == 3000 {
			runtime.GC()
			runtime.ReadMemStats(&during)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	grown := int64(during.HeapAlloc) - int64(before.HeapAlloc)
	if n != 6000 || grown > info.Size()/2 {
		t.Errorf("%d events handed out; the live heap grew by %d bytes for a file of %d", n, grown, info.Size())
	}
	t.Logf("file %d bytes, heap grown by %d bytes halfway", info.Size(), grown)
}

// postEvent is event i of the post of prefix, as stored (compact).
func postEvent(prefix string, i int) string {
	return fmt.Sprintf(`{"msgid":"%s%d","event_params":{"ts":240301101500}}`, prefix, i)
}

func postOf(prefix string, events int) string {
	var evs []string
	for i := range events {
		evs = append(evs, postEvent(prefix, i))
	}
	return `{"p":[` + strings.Join(evs, ",") + `]}`
}

// exploded is what the queue sends of an event of panel p: the event with
// panel_name, event_time and event_id added.
func exploded(event, eventTime string) string {
	id := netcorepost.EventKey("p", []byte(event), 0)
	return event[:len(event)-1] + fmt.Sprintf(`,"panel_name":"p","event_time":"%s","event_id":"%s"}`, eventTime, hex.EncodeToString(id[:]))
}

// tsTime is postEvent's event_params.ts, read in postConfig's UTC;
// receivedTime is postMessage's received at, the time of an event without
// a ts.
const tsTime, receivedTime = "2024-03-01T10:15:00Z", "2026-11-28T10:00:00Z"

// partlyDeliveredPostsFile writes a closed queue file of posts stored
// whole: post b (2 events) delivered, post a (100 events) with a0 failed
// (written as a record of its own), a1..a7 out for delivery when the queue
// closed and a8..a32 delivered (so the mark's bitmap starts with 0x01, and
// the stored mark, after its 4-byte checksum, has a record's version as
// its fifth byte), post c (3 events) untouched.
func partlyDeliveredPostsFile(t *testing.T) queueConfig {
	t.Helper()
	c := postConfig(t)
	c.maxEvents, c.maxBytes = 1<<20, 1<<30
	q, err := openQueue(c)
	if err != nil {
		t.Fatal(err)
	}
	storePost(t, q, postOf("b", 2), postOf("a", 100), postOf("c", 3))
	for i := range 2 + 33 {
		l, _ := take(t, q)
		switch {
		case i == 2:
			q.ack(l, errors.New("503"))
		case i > 2 && i < 2+8: // out for delivery when the queue closes
		default:
			q.ack(l, nil)
		}
	}
	waitSettled(t, q)
	if err := q.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

// Post records are split into their events, as the queue would send them:
// every event of a partly delivered post (delivered ones too, at least
// once), none of a delivered post, and the failed event once, from its own
// record, though its post still holds it too (a replay would otherwise
// send it twice; found by tests/TestSalvageAndReplayADamagedQueueFile in CI). The settled mark, which starts as a record does, is neither
// handed out nor counted damaged.
func TestSalvageSplitsPostsIntoTheirEvents(t *testing.T) {
	c := partlyDeliveredPostsFile(t)
	db, err := bolt.Open(c.path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.View(func(tx *bolt.Tx) error {
		_, mark := tx.Bucket(bucketSettled).Cursor().First()
		if len(mark) < recordHeader || mark[4] != recordVersion {
			t.Errorf("settled mark %x does not look like a record: the test misses its point", mark)
		}
		return nil
	})
	db.Close()

	var want []string
	for i := 1; i < 100; i++ { // a0 comes from its own record, once
		want = append(want, exploded(postEvent("a", i), tsTime))
	}
	for i := range 3 {
		want = append(want, exploded(postEvent("c", i), tsTime))
	}
	want = append(want, exploded(postEvent("a", 0), tsTime))
	var got []string
	report, err := Salvage(c.path, c.explode, func(_ uint64, msg *service.Message) error {
		body, _ := msg.AsBytes()
		got = append(got, string(body))
		id, _ := msg.MetaGet(stage.MetaEventID)
		if !strings.HasSuffix(string(body), `"event_id":"`+id+`"}`) || len(id) != 32 {
			t.Errorf("event %s has event id metadata %q", body, id)
		}
		if req, _ := msg.MetaGet(stage.MetaRequestID); req != "req-1" {
			t.Errorf("event %s lost its post's metadata (request id %q)", body, req)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("salvaged %d events:\n%s\nwant %d:\n%s", len(got), strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
	}
	if report.Records != 103 || report.Posts != 2 || report.Damaged != 0 || report.UnreadablePages != 0 {
		t.Errorf("report %+v, want 103 events from 2 posts and 1 record, nothing damaged", report)
	}
}

func TestSalvageOfPostsNeedsExplode(t *testing.T) {
	c := partlyDeliveredPostsFile(t)
	kept := 0
	_, err := Salvage(c.path, nil, func(uint64, *service.Message) error { kept++; return nil })
	if err == nil || !strings.Contains(err.Error(), "whole posts") || !strings.Contains(err.Error(), "--timezone") || kept != 0 {
		t.Errorf("salvage of posts without explode: %v, %d events kept; want an error saying to give the settings, and nothing kept", err, kept)
	}
}

// postsFile writes a closed queue file of posts stored whole, each of
// events events postsFileEvent(p, i).
func postsFile(t *testing.T, posts, events int) queueConfig {
	t.Helper()
	c := postConfig(t)
	c.maxEvents, c.maxBytes = 1<<20, 1<<30
	all := make([]string, posts)
	for n := range all {
		evs := make([]string, events)
		for i := range evs {
			evs[i] = postsFileEvent(n, i)
		}
		all[n] = `{"p":[` + strings.Join(evs, ",") + `]}`
	}
	closedWith(t, c, all...)
	return c
}

func postsFileEvent(p, i int) string {
	return fmt.Sprintf(`{"msgid":"p%d-%d","pad":"%s"}`, p, i, strings.Repeat("x", 180))
}

// postsFileIntact says which event of postsFile body is, and whether it is
// exactly as the queue sends it.
func postsFileIntact(body []byte) (p, i int, ok bool) {
	if _, err := fmt.Sscanf(string(body), `{"msgid":"p%d-%d"`, &p, &i); err != nil {
		return -1, -1, false
	}
	return p, i, string(body) == exploded(postsFileEvent(p, i), receivedTime)
}

// A damaged post record costs its own events, all of them, and nothing
// else; a garbled page, the posts on it.
func TestSalvageOfPostsLosesOnlyTheDamagedPosts(t *testing.T) {
	const posts, events = 120, 5
	c := postsFile(t, posts, events)
	pristine, err := os.ReadFile(c.path)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(pristine, []byte(`"msgid":"p60-2"`))
	if at < 0 {
		t.Fatal("post 60 is not in the file")
	}
	const pageSize = 16 << 10
	for _, damage := range []struct {
		name      string
		from, to  int
		wholePost bool // the damage costs whole posts, not one event
		maxLost   int  // posts
	}{
		// An event has a checksum of its own: a byte of its JSON costs it alone.
		{"one byte of post 60's event 2", at, at + 1, false, 0},
		{"the page of post 60", at / pageSize * pageSize, (at/pageSize + 1) * pageSize, true, pageSize / (events * 200)},
	} {
		data := bytes.Clone(pristine)
		for i := damage.from; i < damage.to; i++ {
			data[i] ^= 0x5a
		}
		path := filepath.Join(t.TempDir(), "events.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		got := map[int]int{} // post → events salvaged
		handed := 0
		report, err := Salvage(path, c.explode, func(_ uint64, msg *service.Message) error {
			body, _ := msg.AsBytes()
			p, _, ok := postsFileIntact(body)
			if !ok {
				t.Errorf("%s: salvaged an event not as the queue sends it: %.120s", damage.name, body)
			}
			got[p]++
			handed++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if report.Records != handed || !damage.wholePost && report.Damaged != 1 {
			t.Errorf("%s: report %+v, but %d events were handed out; want those, and 1 damaged for one damaged event", damage.name, report, handed)
		}
		if !damage.wholePost {
			if len(got) != posts || got[60] != events-1 || handed != posts*events-1 {
				t.Errorf("%s: %d posts, post 60 gave %d events, %d in all; want every post, post 60 without its event 2", damage.name, len(got), got[60], handed)
			}
			continue
		}
		for p, n := range got {
			if n != events {
				t.Errorf("%s: post %d gave %d of its %d events", damage.name, p, n, events)
			}
		}
		if lost := posts - len(got); got[60] != 0 || lost < 1 || lost > damage.maxLost {
			t.Errorf("%s: %d posts lost (post 60 gave %d events), report %+v; want post 60 and at most %d lost", damage.name, lost, got[60], report, damage.maxLost)
		}
	}
}

// A settled mark that starts as a record does (33 of 100 events settled:
// its fifth byte is 1) is neither a record nor damage, whether its page is
// read before or after its post's; a damaged record is counted.
func TestSalvageTellsSettledMarksFromDamagedRecords(t *testing.T) {
	post, _, err := appendPostRecord(nil, postMessage(t, postOf("a", 100)), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	mark := newOpenPost(1, 100)
	for i := range 33 {
		mark.settle(i)
	}
	damaged := bytes.Clone(record(t, `{"n":1}`))
	damaged[len(damaged)-1] ^= 1
	for _, order := range [][][]byte{{mark.settled, post}, {post, mark.settled}} {
		s := salvager{records: map[uint64][]byte{}}
		for _, v := range order {
			s.keepRecord(seqKey(1), v)
		}
		s.keepRecord(seqKey(2), damaged)
		s.countDamaged()
		if len(s.records) != 1 || !isPostRecord(s.records[1]) || s.report.Damaged != 1 {
			t.Errorf("mark %x read %s its post: records %d, damaged %d; want the post, and the damaged record counted", mark.settled, map[bool]string{true: "before", false: "after"}[len(order[0]) < len(post)], len(s.records), s.report.Damaged)
		}
	}
}
