package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/testing/testkit"
)

// chromiumPath finds Debian's Chromium, which .ci/run installs; the browser
// tests are skipped without it, except in CI.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	testkit.NeedsOrSkip(t, "no Chromium on this machine (apt-get install chromium; .ci/run installs it)")
	return ""
}

// headlessDOM opens url in headless Chromium and returns the page's DOM
// after it loaded: what a person opening the page would see.
func headlessDOM(t *testing.T, url string) string {
	t.Helper()
	browser := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--dump-dom", url)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return string(out)
}

func TestInspectorListsTheLatestPostsInABrowser(t *testing.T) {
	m := newMeiro(t)
	inspectAddr := freeAddr(t)
	env := m.env()
	env["NETCORE_ALLOWED_IPS"] = "127.0.0.1"
	env["NETCORE_INSPECT_ADDRESS"] = inspectAddr
	// 127.0.0.2 stands for a proxy, to show the inspector a client that is
	// neither loopback nor allowlisted (the machine has no other address).
	env["NETCORE_TRUSTED_PROXIES"] = "127.0.0.2/32"
	p := startProcess(t, options{env: env})

	wantPanels := map[string]bool{}
	for _, ev := range postSamples(t, p) {
		wantPanels[ev.panel] = true
	}
	outsider := fromOtherAddress()
	resp, err := outsider.Post(p.webhook, "application/json", strings.NewReader(`{"p":[{}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	dom := headlessDOM(t, "http://"+inspectAddr+"/")
	rows := regexp.MustCompile(`(?s)<tr class="post[^"]*">.*?</tr>`).FindAllString(dom, -1)
	if len(rows) != 5 {
		t.Fatalf("the page lists %d posts, want 5:\n%s", len(rows), dom)
	}
	for panel := range wantPanels {
		if !strings.Contains(dom, panel+" (") {
			t.Errorf("the page does not list panel %s", panel)
		}
	}
	if !strings.Contains(rows[0], "<td>403</td>") || !strings.Contains(rows[0], "127.0.0.2") {
		t.Errorf("the newest row is not the refused post from 127.0.0.2: %s", rows[0])
	}

	// The two-panel post, opened from its link: its events, personal fields masked.
	var link string
	for _, row := range rows {
		if strings.Contains(row, "cart_abandon (2)") {
			link = regexp.MustCompile(`href="(/posts/[0-9a-f]+)"`).FindStringSubmatch(row)[1]
		}
	}
	detail := headlessDOM(t, "http://"+inspectAddr+link)
	if n := strings.Count(detail, `<h3 class="event">`); n != 3 {
		t.Errorf("the post page shows %d events, want 3", n)
	}
	if !strings.Contains(detail, "240302090100") || !strings.Contains(detail, "•••") || strings.Contains(detail, "a@example.com") {
		t.Errorf("want the events with identities masked:\n%s", detail)
	}

	// Open to loopback and allowlisted clients only.
	req, _ := http.NewRequest(http.MethodGet, "http://"+inspectAddr+"/", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	resp, err = outsider.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("the inspector answered %d to 203.0.113.9, want 403", resp.StatusCode)
	}
}

// TestInspectorMemoryWithTheLargestPostsItKeeps fills the inspector with
// posts of 10,000 events each (all small enough for their events to be
// kept: 100 of them with -long, as many as it keeps; 20 in CI), with Meiro
// Events down so that every event waits, opens the page, which works out
// every event's id and fate, and compares the peak RSS with the same posts
// and the inspector off.
// waitingCount finds "N waiting" in a post's summary on the inspector page.
var waitingCount = regexp.MustCompile(`(\d+) waiting`)

func TestInspectorMemoryWithTheLargestPostsItKeeps(t *testing.T) {
	posts := 20
	if *long {
		posts = 100
	}
	peak := func(inspect bool) int {
		m := newMeiro(t)
		m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
		env := m.env()
		inspectAddr := freeAddr(t)
		if inspect {
			env["NETCORE_INSPECT_ADDRESS"] = inspectAddr
		}
		p := startProcess(t, options{env: env})
		var body strings.Builder
		for post := range posts {
			body.Reset()
			body.WriteString(`{"p":[`)
			for i := range 10_000 {
				if i > 0 {
					body.WriteByte(',')
				}
				fmt.Fprintf(&body, `{"n":%d}`, post*10_000+i)
			}
			body.WriteString(`]}`)
			if status, err := postJSON(p.webhook, []byte(body.String())); err != nil || status != http.StatusOK {
				t.Fatalf("post %d: %d %v", post, status, err)
			}
		}
		if inspect {
			resp, err := http.Get("http://" + inspectAddr + "/")
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// The fates of the latest 100,000 events are kept: the latest 10
			// posts. The queue's probes of the oldest events (Meiro Events is
			// down) report failures too, and a report on an event the Book has
			// forgotten takes a slot of its own (it cannot tell it from one
			// that beat its Stored report), so a few of the 10th post's events
			// may be forgotten in turn, depending on when the probes come.
			shown := 0
			for _, m := range waitingCount.FindAllStringSubmatch(string(page), -1) {
				if n, _ := strconv.Atoi(m[1]); n >= 9_900 {
					shown++
				}
			}
			if shown < 10 {
				t.Errorf("%d posts shown with at least 9,900 of their 10,000 events waiting, want the latest 10", shown)
			}
		}
		return peakRSSKiB(t, p.cmd.Process.Pid)
	}
	off, on := peak(false), peak(true)
	t.Logf("peak RSS with %d posts of 10,000 events: inspector off %d MiB, on %d MiB", posts, off>>10, on>>10)
	if on-off > 150<<10 {
		t.Errorf("the inspector added %d MiB, want at most 150 MiB for %d posts of 10,000 events", (on-off)>>10, posts)
	}
}

// TestInspectorMasksPersonalDataInRefusals has Meiro Events refuse events
// with answers that quote them, as many APIs do: a 400 echoing the event as
// JSON, a 400 in plain text naming the contact, a 400 with the event and
// another contact serialised into a string, a 400 naming the contact as
// Python's json.dumps escapes it (Kum\u0101r), and a 503 echoing the event
// while it waits. The post's page must show the refusals, and none of the
// values of masked fields, whether the event put them in a list
// (event_params sent as an array), in att_params, or at a path the operator
// added (custom_params.user_email). The page may not be framed by others.
func TestInspectorMasksPersonalDataInRefusals(t *testing.T) {
	const event = `{"custom_params":{"user_email":"ravi.p@example.org","plan":"gold"},` +
		`"event_params":[{"identity":"ravi.k@example.com"}],` +
		`"att_params":{"EMAIL":"ravi.alt@example.net","MOBILE":"919811122233","CITY":"Nagpur","NAME":"Ravi Kumār"},"msgid":"%s"}`
	masked := []string{"ravi.k@example.com", "ravi.alt@example.net", "919811122233", "Nagpur"}
	const other = "other.contact@example.com" // not the event's: masked by its key only
	named := []string{"Ravi Kumār", `Ravi Kum\u0101r`}
	const byPath = "ravi.p@example.org" // custom_params.user_email
	echoed := append(slices.Clip(masked), byPath)
	asIs := func(body []byte) string { return string(body) }
	inAString := func(body []byte) string {
		quoted, _ := json.Marshal(`{"duplicate_of":{"identity":"` + other + `"},"event":` + string(body) + `}`)
		return string(quoted)
	}
	answers := map[string]struct {
		status int
		text   string
		echo   func(body []byte) string // what the text quotes of the body, at its %s
		quotes []string                 // the values it quotes in the part of it an error keeps
	}{
		"json-400":   {http.StatusBadRequest, `{"error":"unknown panel","event":%s}`, asIs, echoed},
		"text-400":   {http.StatusBadRequest, `refused: contact ravi.k@example.com (ravi.p@example.org) has opted out`, nil, nil},
		"string-400": {http.StatusBadRequest, `{"status":400,"detail":%s}`, inAString, []string{other}},
		"ascii-400":  {http.StatusBadRequest, `refused: contact "Ravi Kum\u0101r" is blocked`, nil, nil},
		"json-503":   {http.StatusServiceUnavailable, `{"error":"busy, try later","received":%s}`, asIs, echoed},
	}
	for _, c := range []struct {
		name       string
		mask       string // NETCORE_INSPECT_MASK; empty: the default
		pathMasked bool
	}{
		{"default fields", "", false},
		{"a path added", "identity,foreignkey,email,mobile,phone,att_params,custom_params.user_email", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newMeiro(t)
			var mu sync.Mutex
			sent := map[string]string{}
			m.setAnswer(func(body []byte) (int, string) {
				for marker, a := range answers {
					if strings.Contains(string(body), `"`+marker+`"`) {
						text := a.text
						if a.echo != nil {
							text = fmt.Sprintf(text, a.echo(body))
						}
						mu.Lock()
						sent[marker] = text
						mu.Unlock()
						return a.status, text
					}
				}
				return http.StatusOK, ""
			})
			inspectAddr := freeAddr(t)
			env := m.env()
			env["NETCORE_INSPECT_ADDRESS"] = inspectAddr
			if c.mask != "" {
				env["NETCORE_INSPECT_MASK"] = c.mask
			}
			p := startProcess(t, options{env: env})
			var events []string
			for _, marker := range []string{"json-400", "text-400", "string-400", "ascii-400", "json-503"} {
				events = append(events, fmt.Sprintf(event, marker))
			}
			id := postFor(t, p, `{"app_event":[`+strings.Join(events, ",")+`]}`, http.StatusOK)
			waitFor(t, "four dead letters", 30*time.Second, func() bool { return countLines(t, filepath.Join(p.dataDir, "dead-letter")) == 4 })

			// The premise: every echo quoted the personal values within the
			// part of it an error keeps (its first 256 bytes).
			mu.Lock()
			for marker, text := range sent {
				for _, v := range answers[marker].quotes {
					if !strings.Contains(text[:min(len(text), 256)], v) {
						t.Fatalf("the answer does not quote %s in its first 256 bytes: %s", v, text)
					}
				}
			}
			mu.Unlock()

			var resp *http.Response
			var page string
			waitFor(t, "the waiting event's last error on the page", 30*time.Second, func() bool {
				var err error
				if resp, err = http.Get("http://" + inspectAddr + "/posts/" + id); err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				page = string(b)
				return strings.Contains(page, "busy, try later")
			})
			for _, want := range []string{"unknown panel", "has opted out", "is blocked", "duplicate_of", "gold"} {
				if !strings.Contains(page, want) {
					t.Errorf("the page does not show %q of the refusals:\n%s", want, page)
				}
			}
			if n := strings.Count(page, "refused with 400"); n != 4 {
				t.Errorf("the page shows %d refusals with 400, want 4:\n%s", n, page)
			}
			for _, v := range append(append(masked, other), named...) {
				if strings.Contains(page, v) {
					t.Errorf("the page shows the masked value %s:\n%s", v, page)
				}
			}
			if shown := strings.Contains(page, byPath); shown == c.pathMasked {
				t.Errorf("custom_params.user_email shown: %v, want %v (NETCORE_INSPECT_MASK=%q):\n%s", shown, !c.pathMasked, c.mask, page)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("the page may be framed by any site: Content-Security-Policy %q", csp)
			}
		})
	}
}
