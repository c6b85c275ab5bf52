package catalog

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// recorder keeps what a catalog tells.
type recorder struct {
	changes []Change
	bounds  []string
}

func newRecorded(mask func(string, []byte) string) (*Catalog, *recorder) {
	r := &recorder{}
	return New(Options{Mask: mask,
		OnChange: func(ch Change) { r.changes = append(r.changes, ch) },
		OnBound:  func(what string) { r.bounds = append(r.bounds, what) }}), r
}

func event(format string, args ...any) []byte { return []byte(fmt.Sprintf(format, args...)) }

// learnN learns n events made by mk, one post (request id) per event.
func learnN(c *Catalog, panel string, from, n int, mk func(i int) []byte) {
	for i := from; i < from+n; i++ {
		c.Learn(panel, [][]byte{mk(i)}, fmt.Sprintf("req-%d", i), t0.Add(time.Duration(i)*time.Second))
	}
}

func usual(i int) []byte {
	return event(`{"msgid":"m%d","activity_id":%d,"event_params":{"ts":%d,"email":"a%d@example.com"},"items":[{"price":1.5},{"price":2}]}`, i, i, 1700000000+i, i)
}

func TestLearnsAPanel(t *testing.T) {
	mask := func(path string, v []byte) string {
		if strings.HasSuffix(path, "email") {
			return "•••"
		}
		return string(v)
	}
	c, rec := newRecorded(mask)
	learnN(c, "app_push", 0, 10, usual)
	v := c.View()
	p, ok := v.Find("app_push")
	if !ok || p.Events != 10 || p.Learned != 10 {
		t.Fatalf("panel not learned: %+v", v)
	}
	got := map[string]Row{}
	for _, r := range p.Rows {
		got[r.Path.Path] = r
	}
	for path, types := range map[string]string{
		"msgid": "string", "activity_id": "integer", "event_params": "object", "event_params.ts": "integer",
		"event_params.email": "string", "items": "array", "items[]": "object", "items[].price": "integer, number",
	} {
		if r := got[path]; r.Types.String() != types || r.Share != 1 {
			t.Errorf("%s: types %q share %v, want %q and 1", path, r.Types, r.Share, types)
		}
	}
	if got["items[].price"].Types[KindNumber] != 10 {
		t.Errorf("an array's elements count once an event: %v", got["items[].price"].Types)
	}
	if ex := got["event_params.email"].Example; ex != "•••" {
		t.Errorf("email example %q, want it masked", ex)
	}
	if ex := got["msgid"].Example; ex != `"m0"` {
		t.Errorf("msgid example %q", ex)
	}
	if len(rec.changes) != 1 || rec.changes[0].Kind != ChangeNewPanel || rec.changes[0].RequestID != "req-0" {
		t.Errorf("changes %+v, want the new panel only", rec.changes)
	}
}

func TestEachChangeFlaggedOnceAfterTheQuietPeriod(t *testing.T) {
	c, rec := newRecorded(nil)
	// In the quiet period, a field coming and going and a type changing
	// are learned without being flagged.
	learnN(c, "p", 0, QuietEvents, func(i int) []byte {
		if i%2 == 0 {
			return event(`{"a":1,"b":"x","early":%d}`, i)
		}
		return event(`{"a":"one","b":"x"}`)
	})
	if len(rec.changes) != 1 {
		t.Fatalf("quiet period flagged %+v", rec.changes[1:])
	}
	learnN(c, "p", QuietEvents, 10, func(i int) []byte { return event(`{"a":1,"b":"x","c":true}`) })
	learnN(c, "p", QuietEvents+10, 10, func(i int) []byte { return event(`{"a":1,"b":5,"c":false}`) })
	learnN(c, "p", QuietEvents+20, 300, func(i int) []byte { return event(`{"a":1,"c":true}`) })
	want := []string{
		"new_panel p: absent → seen (request req-0)",
		"new_field p c: absent → boolean (request req-100)",
		"type_changed p b: string → integer (request req-110)",
		"field_missing p b: in 120 of the 120 events before → missing from 100 events in a row (request req-219)",
	}
	var got []string
	for _, ch := range rec.changes {
		got = append(got, strings.SplitN(ch.String(), " ", 4)[3])
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// "early" was in half the events: its absence is no change.
}

func TestFieldMissingNeedsNinetyNinePercent(t *testing.T) {
	c, rec := newRecorded(nil)
	// x is missing from 11 of the 1,000 events before its run of absence:
	// 98.9%, not flagged; y from 10: 99%, flagged.
	learnN(c, "p", 0, 1000, func(i int) []byte {
		switch {
		case i%100 == 7 || i == 500:
			return event(`{"y":1}`)
		case i%100 == 8:
			return event(`{"x":1}`)
		}
		return event(`{"x":1,"y":1}`)
	})
	learnN(c, "p", 1000, 150, func(i int) []byte { return event(`{"z":1}`) })
	var missing []string
	for _, ch := range rec.changes {
		if ch.Kind == ChangeFieldMissing {
			missing = append(missing, ch.Path+" "+ch.Before+" "+ch.RequestID)
		}
	}
	if want := "y in 990 of the 1000 events before req-1099"; strings.Join(missing, ",") != want {
		t.Errorf("flagged missing %q, want %q", missing, want)
	}
}

func TestFieldsUnderAMissingObjectAreNotFlaggedApart(t *testing.T) {
	c, rec := newRecorded(nil)
	learnN(c, "p", 0, 200, func(i int) []byte { return event(`{"k":1,"o":{"a":1,"b":[2]}}`) })
	learnN(c, "p", 200, 100, func(i int) []byte { return event(`{"k":1}`) })
	var got []string
	for _, ch := range rec.changes[1:] {
		got = append(got, ch.Kind+" "+ch.Path)
	}
	if strings.Join(got, ",") != "field_missing o" {
		t.Errorf("changes %q, want the object alone", got)
	}
}

// TestSampledChangeIsFlaggedWithinAThousandEvents: at the lowest sampling
// (one in MaxEvery), a type change is flagged within the first 1,000 events
// that carry it, for every seed tried.
func TestSampledChangeIsFlaggedWithinAThousandEvents(t *testing.T) {
	for seed := range uint64(50) {
		c, rec := newRecorded(nil)
		l := &Learner{every: MaxEvery, rng: rand.New(rand.NewPCG(seed, 7))}
		i := 0
		for ; i < 2000; i++ {
			c.learn("p", 1, [][]byte{event(`{"n":%d,"s":"x"}`, i)}, l.sample, "r", t0)
		}
		learned := c.View().Panels[0].Learned
		if learned > QuietEvents+2000/MaxEvery*2 {
			t.Fatalf("seed %d: %d of 2000 events walked: not sampled", seed, learned)
		}
		carried := 0
		for ; carried < 1000 && len(rec.changes) == 1; carried++ {
			c.learn("p", 1, [][]byte{event(`{"n":"%d","s":"x"}`, i)}, l.sample, fmt.Sprint("changed-", carried), t0)
		}
		if len(rec.changes) != 2 || rec.changes[1].Kind != ChangeTypeChanged {
			t.Fatalf("seed %d: the change was not flagged within 1000 events: %+v", seed, rec.changes)
		}
	}
}

func TestBoundsReachedAndSaid(t *testing.T) {
	c, rec := newRecorded(nil)
	var b strings.Builder
	b.WriteString("{")
	for i := range MaxPathsPerPanel + 20 {
		fmt.Fprintf(&b, `"f%d":%d,`, i, i)
	}
	b.WriteString(`"last":0}`)
	c.Learn("wide", [][]byte{[]byte(b.String())}, "r1", t0)
	p, _ := c.View().Find("wide")
	if len(p.Rows) != MaxPathsPerPanel || p.PathsOverflow != 21 {
		t.Errorf("%d paths kept, %d overflow; want %d and 21", len(p.Rows), p.PathsOverflow, MaxPathsPerPanel)
	}
	for i := range MaxPanels + 5 {
		c.Learn(fmt.Sprint("panel-", i), [][]byte{[]byte(`{"a":1}`)}, "r2", t0)
	}
	v := c.View()
	if len(v.Panels) != MaxPanels || v.PanelsOverflow != 6 {
		t.Errorf("%d panels, %d events overflow; want %d and 6", len(v.Panels), v.PanelsOverflow, MaxPanels)
	}
	if len(rec.bounds) != 1 || rec.bounds[0] != "paths of panel wide" {
		t.Errorf("bounds said %q, want the first once", rec.bounds)
	}
	var out bytes.Buffer
	v.Write(&out)
	for _, want := range []string{"bound reached: 21 field occurrences not kept", "bound reached: 6 events of panels not kept"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("show does not say %q", want)
		}
	}
}

// TestMemoryAtTheBounds fills the catalog to its bounds with long paths and
// examples and checks what it holds on the heap.
func TestMemoryAtTheBounds(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := New(Options{})
	long := strings.Repeat("x", 40)
	for p := 0; p < MaxPanels; p++ {
		var b strings.Builder
		b.WriteString("{")
		for i := range MaxPathsPerPanel {
			fmt.Fprintf(&b, `"event_params_%s_%d":"%s",`, long, i, long)
		}
		b.WriteString(`"z":1}`)
		c.Learn(fmt.Sprint("panel-", p), [][]byte{[]byte(b.String())}, "r", t0)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("catalog counted %d bytes, holds %d on the heap", c.bytes, held)
	if c.bytes > MaxBytes || held > 10<<20 {
		t.Errorf("catalog counted %d bytes and holds %d; at most %d and 10 MiB", c.bytes, held, MaxBytes)
	}
	if c.View().PanelsOverflow == 0 && c.View().Panels[0].PathsOverflow == 0 {
		t.Errorf("premise: the bounds were not reached")
	}
	runtime.KeepAlive(c)
}

func TestSavedCatalogGoesOn(t *testing.T) {
	dir := t.TempDir()
	c, _ := newRecorded(nil)
	learnN(c, "p", 0, 150, usual)
	if err := c.Save(dir); err != nil {
		t.Fatal(err)
	}
	again, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var changes []Change
	again.opts.OnChange = func(ch Change) { changes = append(changes, ch) }
	learnN(again, "p", 150, 200, func(i int) []byte { return event(`{"msgid":"m","activity_id":"x","items":[]}`) })
	var got []string
	for _, ch := range changes {
		got = append(got, ch.Kind+" "+ch.Path)
	}
	want := "type_changed activity_id,field_missing event_params,field_missing items[]"
	if strings.Join(got, ",") != want {
		t.Errorf("after a reload: %q, want %q", got, want)
	}
	if v := again.View(); len(v.Changes) != 4 || v.Panels[0].Events != 350 {
		t.Errorf("reloaded catalog lost its past: %d changes, %d events", len(v.Changes), v.Panels[0].Events)
	}
}

func TestSchemaFile(t *testing.T) {
	for name, want := range map[string]string{
		"app_push": "app_push.json", "Push / Android": "Push%20%2F%20Android.json",
		"..": "%2E..json", "a%b": "a%25b.json", "": "%.json", "é": "%C3%A9.json",
	} {
		if got := SchemaFile(name); got != want {
			t.Errorf("SchemaFile(%q) = %q, want %q", name, got, want)
		}
	}
}

// A key holding a dot stays where it was after a reload: "a.b" at the top
// is not put inside "a" (found in review: the exported schema then required
// a.b inside a, and enforce mode would have dead-lettered every event).
func TestADottedKeyKeepsItsPlaceAcrossAReload(t *testing.T) {
	dir := t.TempDir()
	c, _ := newRecorded(nil)
	learnN(c, "p", 0, 10, func(int) []byte { return event(`{"a":{"x":1},"a.b":"s"}`) })
	before, err := c.View().Panels[0].Schema()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Save(dir); err != nil {
		t.Fatal(err)
	}
	again, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	after, err := again.View().Panels[0].Schema()
	if err != nil || string(after) != string(before) {
		t.Errorf("the schema after a reload:\n%s\nwant, as before it:\n%s", after, before)
	}
}
