package tests

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser starts headless Chromium (Debian's package; .ci/run installs it)
// driven through the DevTools protocol, as a person's browser would be.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// pageText opens url and returns the text a person reads on it, and its HTML.
func pageText(t *testing.T, ctx context.Context, url string) (text, html string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("main"))); err != nil {
		t.Fatalf("opening %s: %v", url, err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err == nil {
		html, err = chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	}
	if err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	return text, html
}

// rowOf is the list row of the post with request id id, as text.
func rowOf(t *testing.T, html, id string) string {
	t.Helper()
	for _, row := range regexp.MustCompile(`(?s)<tr class="[^"]*">.*?</tr>`).FindAllString(html, -1) {
		if strings.Contains(row, `href="/posts/`+id+`"`) {
			return regexp.MustCompile(`<[^>]*>`).ReplaceAllString(row, " ")
		}
	}
	return ""
}

// postFor posts body and returns its request id, checking the answer.
func postFor(t *testing.T, p *process, body string, want int) string {
	t.Helper()
	req := newPost(t, p.webhook, "application/json", strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("posting %s: %d, want %d", body, resp.StatusCode, want)
	}
	return resp.Header.Get("X-Request-Id")
}

// TestInspectorFollowsEveryEventInABrowser posts events while the Meiro
// Events stand-in accepts some, refuses some with 400 and fails others with
// 503, and reads the inspector in headless Chromium: each event's fate, the
// summaries, the filters and the search, and a refresh without a reload.
func TestInspectorFollowsEveryEventInABrowser(t *testing.T) {
	ctx := browser(t)
	m := newMeiro(t)
	m.setRespond(func(body []byte) int {
		switch {
		case strings.Contains(string(body), `"refuse`):
			return http.StatusBadRequest
		case strings.Contains(string(body), `"fail`):
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	inspectAddr := freeAddr(t)
	env := m.env()
	env["NETCORE_INSPECT_ADDRESS"] = inspectAddr
	p := startProcess(t, options{env: env})
	base := "http://" + inspectAddr

	event := func(marker string) string {
		return fmt.Sprintf(`{"marker":%q,"event_params":{"ts":240301101500,"identity":"secret-%s@example.com"}}`, marker, marker)
	}
	postA := postFor(t, p, `{"email_open":[`+event("ok-1")+`,`+event("ok-2")+`,`+event("refuse-1")+`]}`, http.StatusOK)
	postB := postFor(t, p, `{"sms_click":[`+event("fail-1")+`,`+event("ok-3")+`]}`, http.StatusOK)
	postC := postFor(t, p, `{"email_open":[`+event("ok-1")+`,`+event("ok-4")+`]}`, http.StatusOK)
	postD := postFor(t, p, `{"email_open":[1]}`, http.StatusBadRequest)
	waitDelivered(t, m, []string{"ok-1", "ok-2", "ok-3", "ok-4"}, 30*time.Second)
	waitFor(t, "the dead letter", 30*time.Second, func() bool { return countLines(t, filepath.Join(p.dataDir, "dead-letter")) == 1 })

	text, html := pageText(t, ctx, base+"/")
	for id, want := range map[string]string{
		postA: "2 delivered · 1 dead letter",
		postB: "1 delivered · 1 waiting",
		postC: "1 delivered · 1 repeat",
	} {
		if row := rowOf(t, html, id); !strings.Contains(row, want) {
			t.Errorf("the row of post %s says %q, want %q", id, strings.Join(strings.Fields(row), " "), want)
		}
	}
	if !strings.Contains(rowOf(t, html, postD), "400") {
		t.Errorf("the refused post is not listed with its 400")
	}
	if strings.Contains(html, "data-destination") {
		t.Errorf("the page names destinations, but the default pipeline has one, unnamed as ever")
	}
	if !strings.Contains(text, "refused 1 events for good") {
		t.Errorf("no alert for the dead letter at the top of the list:\n%s", text)
	}

	text, html = pageText(t, ctx, base+"/posts/"+postA)
	if n := strings.Count(html, `class="fate delivered"`); n != 2 {
		t.Errorf("post A shows %d delivered events, want 2:\n%s", n, text)
	}
	if !strings.Contains(html, `class="fate dead-letter"`) || !strings.Contains(text, "refused with 400") || !strings.Contains(text, "dead-letter/") {
		t.Errorf("post A does not show its dead letter with the refusal and the file:\n%s", text)
	}
	text, _ = pageText(t, ctx, base+"/posts/"+postB)
	if !regexp.MustCompile(`waiting\s+\d+ failed tries so far \(last answer 503\)`).MatchString(text) {
		t.Errorf("post B does not show its waiting event with its tries and the 503:\n%s", text)
	}
	text, _ = pageText(t, ctx, base+"/posts/"+postC)
	if !strings.Contains(text, "repeat of post "+postA) {
		t.Errorf("post C does not show its repeat of post A:\n%s", text)
	}
	if strings.Contains(text, "secret-ok-1@example.com") {
		t.Errorf("a masked identity is shown:\n%s", text)
	}

	for query, want := range map[string][]string{
		"status=dead-lettered": {postA},
		"status=waiting":       {postB},
		"status=refused":       {postD},
		"panel=sms_click":      {postB},
		"q=ok-4":               {postC},
		"q=secret-ok-3":        nil, // masked: not searchable
	} {
		_, html := pageText(t, ctx, base+"/?"+query)
		var got []string
		for _, m := range regexp.MustCompile(`<td><a href="/posts/([0-9a-f]+)"`).FindAllStringSubmatch(html, -1) {
			got = append(got, m[1])
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("/?%s lists %v, want %v", query, got, want)
		}
	}

	// The list refreshes by itself: a new post appears without a reload.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitReady(chromedp.CSS("main"))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.keptAcrossRefresh = "yes"`)); err != nil {
		t.Fatal(err)
	}
	postE := postFor(t, p, `{"email_open":[`+event("ok-5")+`]}`, http.StatusOK)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`a[href="/posts/`+postE+`"]`))); err != nil {
		t.Fatalf("the new post did not appear on the open page: %v", err)
	}
	kept, err := chromedp.Run(ctx, chromedp.Evaluate[string](`String(window.keptAcrossRefresh)`))
	if err != nil {
		t.Fatal(err)
	}
	refreshes, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.dataset.refreshes || "0"`))
	if err != nil {
		t.Fatal(err)
	}
	if kept != "yes" || refreshes == "0" {
		t.Errorf("the page reloaded instead of refreshing (kept %q, refreshes %s)", kept, refreshes)
	}
	if dir := os.Getenv("NETCORE_SCREENSHOTS"); dir != "" {
		screenshot(t, ctx, base+"/", filepath.Join(dir, "inspector-list.png"))
		screenshot(t, ctx, base+"/posts/"+postA, filepath.Join(dir, "inspector-post.png"))
	}
}

// screenshot saves what a person sees at url, for docs/operating.md:
//
//	NETCORE_SCREENSHOTS=$PWD/docs go test ./tests -run TestInspectorFollowsEveryEventInABrowser
func screenshot(t *testing.T, ctx context.Context, url, file string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("main"))); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestInspectorShowsTheQuarantineInRed opens the inspector of a receiver in
// quarantine mode in Chromium: each address whose posts wait there is shown
// in red, with its posts, events and panels, and the commands that release
// or drop them.
func TestInspectorShowsTheQuarantineInRed(t *testing.T) {
	m := newMeiro(t)
	env := quarantineEnv(m, quarantineToken)
	env["NETCORE_INSPECT_ADDRESS"] = freeAddr(t)
	p := startProcess(t, options{env: env})
	body, _ := markedBody("seen", 4)
	for range 2 {
		if status, answer := postAs(t, nil, p, body); status != http.StatusOK {
			t.Fatalf("post from an unknown address: %d %s", status, answer)
		}
	}
	ctx := browser(t)
	pageText(t, ctx, "http://"+env["NETCORE_INSPECT_ADDRESS"]+"/")
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#quarantine")))
	if err != nil {
		t.Fatalf("no quarantine section on the page: %v", err)
	}
	row := regexp.MustCompile(`\s+`).ReplaceAllString(text, " ")
	for _, want := range []string{"Quarantined, not delivered", "127.0.0.1 2 8 load", "netcore-connect quarantine release --client 127.0.0.1", "netcore-connect quarantine drop --client 127.0.0.1"} {
		if !strings.Contains(row, want) {
			t.Errorf("the quarantine section reads %q, lacking %q", row, want)
		}
	}
	color, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("#quarantine")).color`))
	if err != nil || color != "rgb(153, 27, 27)" {
		t.Errorf("the quarantine section's colour is %q (%v), want the red of alerts, rgb(153, 27, 27)", color, err)
	}
}

// TestInspectorShowsEachDestinationOfMeiroAndArchive runs the
// meiro-and-archive recipe in streams mode, as docs/destinations.md does,
// with Meiro Events down (503 to all, 400 to one event) and the archive
// up, and reads the inspector in Chromium: each event is shown at each
// destination (waiting or dead-lettered for Meiro Events, delivered to the
// archive), not delivered because the archive took it, and each queue's
// state and alerts are its own.
func TestInspectorShowsEachDestinationOfMeiroAndArchive(t *testing.T) {
	ctx := browser(t)
	m := newMeiro(t)
	m.setRespond(func(body []byte) int {
		if strings.Contains(string(body), `"refuse`) {
			return http.StatusBadRequest
		}
		return http.StatusServiceUnavailable
	})
	env := m.env()
	env["NETCORE_INSPECT_ADDRESS"] = freeAddr(t)
	p := startStreams(t, env, recipe(t, "destinations/meiro-and-archive"), t.TempDir())
	base := "http://" + env["NETCORE_INSPECT_ADDRESS"]

	id := postFor(t, p, `{"email_open":[{"marker":"down-1"},{"marker":"refuse-1"}]}`, http.StatusOK)
	waitFor(t, "both events in the archive", 20*time.Second, func() bool { return len(archived(t, p.dataDir)) == 2 })
	waitFor(t, "the dead letter at Meiro Events", 20*time.Second, func() bool {
		return countLines(t, filepath.Join(p.dataDir, "dead-letter")) == 1
	})
	waitFor(t, "Meiro Events tried again", 20*time.Second, func() bool { return m.attemptCount() >= 3 })
	if len(m.received()) != 0 {
		t.Fatalf("premise: Meiro Events is down, yet it accepted %d events", len(m.received()))
	}

	// The queues report what waits once a second: wait for the reports
	// made after the deliveries.
	var text, html string
	waiting := map[string]string{"Meiro Events": "1", "archive": "0"}
	sectionOf := func(dest string) string {
		return regexp.MustCompile(`(?s)<div class="destination" data-destination="` + dest + `">.*?</div>`).FindString(html)
	}
	shown := func() bool {
		text, html = pageText(t, ctx, base+"/")
		for dest, n := range waiting {
			if !strings.Contains(sectionOf(dest), `data-stat="waiting">`+n+`<`) {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(10 * time.Second)
	for !shown() && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	for dest, n := range waiting {
		if section := sectionOf(dest); !strings.Contains(section, `data-stat="waiting">`+n+`<`) {
			t.Errorf("%s's queue is not shown with %s waiting: %q", dest, n, strings.Join(strings.Fields(regexp.MustCompile(`(?s)<svg.*</svg>|<[^>]*>`).ReplaceAllString(section, " ")), " "))
		}
	}
	if row, want := strings.Join(strings.Fields(rowOf(t, html, id)), " "), "Meiro Events: 1 waiting · 1 dead letter; archive: 2 delivered"; !strings.Contains(row, want) {
		t.Errorf("the row of the post says %q, want %q", row, want)
	}
	if !strings.Contains(text, "Meiro Events is not accepting events") || !strings.Contains(text, "Meiro Events refused 1 events for good") ||
		strings.Contains(text, "archive is not accepting") || strings.Contains(text, "archive refused") {
		t.Errorf("the alerts do not name Meiro Events alone:\n%s", text)
	}

	text, html = pageText(t, ctx, base+"/posts/"+id)
	for _, want := range []struct{ dest, state string }{
		{"Meiro Events", "waiting"}, {"Meiro Events", "dead-letter"}, {"archive", "delivered"}, {"archive", "delivered"},
	} {
		if !strings.Contains(html, `class="destination `+want.state+`" data-destination="`+want.dest+`"`) {
			t.Errorf("the post's page shows no event %s at %s:\n%s", want.state, want.dest, text)
		}
	}
	if n := strings.Count(html, `class="destination delivered" data-destination="archive"`); n != 2 {
		t.Errorf("the post's page shows %d events delivered to the archive, want 2:\n%s", n, text)
	}
	if !regexp.MustCompile(`Meiro Events: waiting\s+\d+ failed tries so far \(last answer 503\)`).MatchString(text) ||
		!regexp.MustCompile(`Meiro Events: dead letter\s+at .*refused with 400`).MatchString(text) {
		t.Errorf("the post's page does not say why each event waits or was refused at Meiro Events:\n%s", text)
	}
	if strings.Contains(html, `class="fate delivered"`) {
		t.Errorf("an event is shown delivered without saying where:\n%s", text)
	}
}
