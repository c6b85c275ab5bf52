package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/netcore-connect/netcore-connect/internal/catalog"
)

// catalogCLI runs `netcore-connect catalog ARGS` on a data directory, as an
// operator would beside the running receiver.
func catalogCLI(t *testing.T, dataDir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"catalog"}, args...)...)
	cmd.Env = append(os.Environ(), "NETCORE_DATA_DIR="+dataDir)
	out, err := runWithin(cmd, 60*time.Second)
	if err != nil {
		t.Fatalf("catalog %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// pushEvent is an app_push event as Netcore sends one, with personal
// fields (identity, email) the inspector masks; edit changes it.
func pushEvent(i int, edit func(map[string]any)) map[string]any {
	ev := map[string]any{
		"msgid": fmt.Sprintf("m-%d", i), "activity_id": 1000 + i, "channel": "push",
		"event_params":  map[string]any{"ts": 1764900000 + i, "identity": fmt.Sprintf("person%d@example.com", i)},
		"custom_params": map[string]any{"email": fmt.Sprintf("mail%d@example.com", i), "items": []any{map[string]any{"price": 1.5}}},
	}
	if edit != nil {
		edit(ev)
	}
	return ev
}

// postEvents posts the events as one post of panel, returning its request
// id and the events as sent.
func postEvents(t *testing.T, p *process, panel string, from, n int, edit func(map[string]any)) (string, [][]byte) {
	t.Helper()
	var events []any
	var raw [][]byte
	for i := from; i < from+n; i++ {
		ev := pushEvent(i, edit)
		events = append(events, ev)
		b, _ := json.Marshal(ev)
		raw = append(raw, b)
	}
	body, _ := json.Marshal(map[string]any{panel: events})
	return postFor(t, p, string(body), 200), raw
}

// changeLines are the log lines of flagged changes of kind.
func changeLines(p *process, kind string) []string {
	var out []string
	for _, line := range strings.Split(p.stdout.String(), "\n") {
		if strings.Contains(line, "Netcore events changed shape") && strings.Contains(line, "change="+kind) {
			out = append(out, line)
		}
	}
	return out
}

// catalogScenario posts a panel's quiet period, then one post showing each
// change: a new field, a type changed, a field missing from 100 events in
// a row. It returns the request ids by change and every event posted.
func catalogScenario(t *testing.T, p *process) (map[string]string, [][]byte) {
	t.Helper()
	ids := map[string]string{}
	var all [][]byte
	// In the quiet period channel turns from a string into an object and
	// back, unflagged.
	first, evs := postEvents(t, p, "app_push", 0, 100, func(ev map[string]any) {
		if ev["activity_id"].(int)%10 == 3 {
			ev["channel"] = map[string]any{"name": "push"}
		}
	})
	ids["new_panel"], all = first, append(all, evs...)
	ids["new_field"], evs = postEvents(t, p, "app_push", 100, 1, func(ev map[string]any) { ev["coupon"] = "SAVE10" })
	all = append(all, evs...)
	ids["type_changed"], evs = postEvents(t, p, "app_push", 101, 1, func(ev map[string]any) { ev["activity_id"] = "A-101" })
	all = append(all, evs...)
	ids["field_missing"], evs = postEvents(t, p, "app_push", 102, 100, func(ev map[string]any) { delete(ev, "msgid") })
	all = append(all, evs...)
	return ids, all
}

// TestCatalogLearnsAPanelAndFlagsEachChangeOnce: through the default
// pipeline, a panel is learned, each of the four changes is flagged once
// (log line, metric, `catalog show`) with its before → after and the
// request id of the post that showed it, nothing in the quiet period;
// examples are masked; the bounds are reached and said; and the catalog
// is kept across a kill -9.
func TestCatalogLearnsAPanelAndFlagsEachChangeOnce(t *testing.T) {
	m := newMeiro(t)
	dir := t.TempDir()
	p := startProcess(t, options{env: m.env(), dir: dir})
	ids, _ := catalogScenario(t, p)

	want := map[string][]string{
		"new_panel":     {`path=""`, `before=absent`, `after=seen`},
		"new_field":     {`path=coupon`, `before=absent`, `after=string`},
		"type_changed":  {`path=activity_id`, `before=integer`, `after=string`},
		"field_missing": {`path=msgid`, `before="in 102 of the 102 events before"`, `after="missing from 100 events in a row"`},
	}
	waitFor(t, "the changes flagged", 10*time.Second, func() bool { return len(changeLines(p, "field_missing")) > 0 })
	metrics := scrape(t, p)
	for kind, fields := range want {
		lines := changeLines(p, kind)
		if len(lines) != 1 {
			t.Errorf("%s: log lines %q, want one", kind, lines)
			continue
		}
		for _, w := range append(fields, "panel=app_push", "request_id="+ids[kind]) {
			if !strings.Contains(lines[0], w) {
				t.Errorf("%s: the log line lacks %s: %s", kind, w, lines[0])
			}
		}
		if got := sumMetric(metrics, "netcore_schema_changes_total", `change="`+kind+`"`); got != 1 {
			t.Errorf("netcore_schema_changes_total{change=%q} = %v, want 1", kind, got)
		}
	}
	if got := sumMetric(metrics, "netcore_schema_changes_total", `panel="app_push"`); got != 4 {
		t.Errorf("netcore_schema_changes_total{panel=app_push} = %v, want 4", got)
	}
	if n := strings.Count(p.stdout.String(), "Netcore events changed shape"); n != 4 {
		t.Errorf("%d changes logged, want 4 (none in the quiet period)", n)
	}

	var show string
	waitFor(t, "the catalog saved", 10*time.Second, func() bool {
		show = catalogCLI(t, p.dataDir, "show")
		return strings.Contains(show, "field_missing")
	})
	for _, w := range []string{
		"panel app_push  events 202  learned 202",
		"type_changed app_push activity_id: integer → string (request " + ids["type_changed"] + ")",
		"\n    ts  ", "\n    items  ", "\n      []  ", "\n        price  ",
	} {
		if !strings.Contains(show, w) {
			t.Errorf("catalog show lacks %q:\n%s", w, show)
		}
	}
	if strings.Contains(show, "@example.com") || !regexp.MustCompile(`identity .* e\.g\. •••`).MatchString(show) {
		t.Errorf("catalog show holds a personal value unmasked:\n%s", show)
	}

	// Bounds: a panel of 600 fields keeps 500 and says so.
	wide := map[string]any{}
	for i := range 600 {
		wide[fmt.Sprintf("f%03d", i)] = i
	}
	body, _ := json.Marshal(map[string]any{"wide": []any{wide}})
	postFor(t, p, string(body), 200)
	waitFor(t, "the bound said", 10*time.Second, func() bool {
		return strings.Contains(p.stdout.String(), "The catalog reached its bound on paths of panel wide")
	})
	waitFor(t, "the catalog saved", 10*time.Second, func() bool {
		return strings.Contains(catalogCLI(t, p.dataDir, "show"), "bound reached: 100 field occurrences not kept")
	})

	// Kept across a kill -9: the same catalog, and nothing flagged again.
	p.kill()
	p = startProcess(t, options{env: m.env(), dir: dir})
	again := catalogCLI(t, p.dataDir, "show")
	if !strings.Contains(again, "panel app_push  events 202") || !strings.Contains(again, "changes (5, oldest first)") {
		t.Fatalf("catalog after a kill -9:\n%s", again)
	}
	postEvents(t, p, "app_push", 300, 5, func(ev map[string]any) { delete(ev, "msgid") })
	waitFor(t, "the post learned and saved", 2*catalog.SaveEvery, func() bool {
		return strings.Contains(catalogCLI(t, p.dataDir, "show"), "panel app_push  events 207")
	})
	if n := strings.Count(p.stdout.String(), "Netcore events changed shape"); n != 0 {
		t.Errorf("after the restart %d changes flagged again, want none", n)
	}
}

// TestCatalogPageInABrowser opens the inspector's Catalog page in headless
// Chromium: the panel's fields as a tree with types and shares, examples
// masked, the changes in time order linking to their posts.
func TestCatalogPageInABrowser(t *testing.T) {
	ctx := browser(t)
	m := newMeiro(t)
	env := m.env()
	inspect := freeAddr(t)
	env["NETCORE_INSPECT_ADDRESS"] = inspect
	p := startProcess(t, options{env: env})
	ids, _ := catalogScenario(t, p)
	waitFor(t, "the changes flagged", 10*time.Second, func() bool { return len(changeLines(p, "field_missing")) > 0 })

	text, html := pageText(t, ctx, "http://"+inspect+"/catalog")
	for _, w := range []string{"Catalog of Netcore panels", "app_push", "event_params", "identity", "string 1, integer 201", "100.0%", "•••"} {
		if !strings.Contains(text, w) {
			t.Errorf("the Catalog page lacks %q:\n%s", w, text)
		}
	}
	if strings.Contains(text, "@example.com") {
		t.Errorf("the Catalog page shows a personal value:\n%s", text)
	}
	var order []string
	for _, row := range regexp.MustCompile(`(?s)<tr class="change">.*?</tr>`).FindAllString(html, -1) {
		for kind, id := range ids {
			if strings.Contains(row, ">"+kind+"<") && strings.Contains(row, `href="/posts/`+id+`"`) {
				order = append(order, kind)
			}
		}
	}
	if strings.Join(order, ",") != "new_panel,new_field,type_changed,field_missing" {
		t.Errorf("changes listed with their posts: %v, want the four in time order", order)
	}
	// The post a change links to opens.
	if post, _ := pageText(t, ctx, "http://"+inspect+"/posts/"+ids["type_changed"]); !strings.Contains(post, "A-101") {
		t.Errorf("the post of the type change does not show it:\n%s", post)
	}
}

// TestCatalogExportIsAContractThatCanBeEnforced: `catalog export` writes
// schemas that a JSON Schema validator finds the learned events valid
// against and a changed type not; with them as NETCORE_CONTRACT_DIR and
// NETCORE_CONTRACT=enforce, a violating event becomes a dead letter with
// the schema's error, and the others are delivered.
func TestCatalogExportIsAContractThatCanBeEnforced(t *testing.T) {
	m := newMeiro(t)
	p := startProcess(t, options{env: m.env()})
	// A panel learned from events of one shape, and one whose name is no
	// file name.
	_, events := postEvents(t, p, "app_push", 0, 120, nil)
	postEvents(t, p, "Push / Android", 0, 3, nil)
	contract := t.TempDir()
	waitFor(t, "both panels learned", 10*time.Second, func() bool {
		return strings.Contains(catalogCLI(t, p.dataDir, "show"), "panel app_push  events 120")
	})
	out := catalogCLI(t, p.dataDir, "export", contract)
	if !strings.Contains(out, "2 panel schemas written") {
		t.Fatalf("catalog export:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(contract, "Push%20%2F%20Android.json")); err != nil {
		t.Errorf("the panel named with a slash: %v", err)
	}
	schema, err := jsonschema.NewCompiler().Compile(filepath.Join(contract, "app_push.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		v, _ := jsonschema.UnmarshalJSON(bytes.NewReader(ev))
		if err := schema.Validate(v); err != nil {
			t.Fatalf("an event learned is refused by its schema: %v\n%s", err, ev)
		}
	}
	changed, _ := json.Marshal(pushEvent(5, func(ev map[string]any) { ev["activity_id"] = "1005" }))
	v, _ := jsonschema.UnmarshalJSON(bytes.NewReader(changed))
	if err := schema.Validate(v); err == nil {
		t.Fatal("an event whose activity_id turned into a string passes its schema")
	}
	p.stop(t)

	// Enforced, on a receiver of its own.
	env := m.env()
	env["NETCORE_CONTRACT_DIR"], env["NETCORE_CONTRACT"] = contract, "enforce"
	q := startProcess(t, options{env: env})
	before := m.receivedCount()
	body := fmt.Sprintf(`{"app_push":[%s,%s]}`, changed, events[7])
	postFor(t, q, body, 200)
	waitFor(t, "the good event delivered", 10*time.Second, func() bool { return m.receivedCount() == before+1 })
	waitFor(t, "the violation counted", 10*time.Second, func() bool {
		return sumMetric(scrape(t, q), "netcore_contract_violations_total", "") == 1
	})
	if got := string(m.received()[before]); !strings.Contains(got, `"msgid":"m-7"`) {
		t.Errorf("delivered %s, want the event that keeps the contract", got)
	}
	files, _ := filepath.Glob(filepath.Join(q.dataDir, "dead-letter", "*"))
	if len(files) != 1 {
		t.Fatalf("dead letters: %v, want one file", files)
	}
	letter := string(readFile(t, files[0]))
	for _, w := range []string{`violates the contract app_push.json`, `/activity_id`, `want integer`, `"activity_id":"1005"`} {
		if !strings.Contains(letter, w) {
			t.Errorf("the dead letter lacks %q:\n%s", w, letter)
		}
	}
	if got := sumMetric(scrape(t, q), "netcore_events_dead_lettered_total", ""); got != 1 {
		t.Errorf("netcore_events_dead_lettered_total %v, want 1", got)
	}
}
