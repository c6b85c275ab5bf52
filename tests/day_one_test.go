package tests

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sendAs sends a request to the webhook as a sender would, from client (nil:
// the tests' own address, 127.0.0.1), and returns the status, the answer and
// the request id.
func sendAs(t *testing.T, client *http.Client, method, target, contentType, body string, header http.Header) (int, string, string) {
	t.Helper()
	req := newRequest(t, method, target, contentType, strings.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	return send(t, client, req)
}

const formType = "application/x-www-form-urlencoded"

// TestDayOneURLCheckPasses sends what a sender sends when its URL is saved:
// a HEAD, a GET, and the empty posts (an empty body, an empty or empty-array
// data field, an empty object, an empty JSON array). Each is answered 200
// with 0 events, counted, logged as empty and stored nowhere; a non-empty
// array stays 400, and an address not allowed still gets 403.
func TestDayOneURLCheckPasses(t *testing.T) {
	m := newMeiro(t)
	env := m.env()
	env["NETCORE_ALLOWED_IPS"] = "127.0.0.1/32" // not 127.0.0.2, fromOtherAddress
	p := startProcess(t, options{env: env})

	if status, answer, _ := sendAs(t, nil, http.MethodHead, p.webhook, "", "", nil); status != http.StatusOK {
		t.Errorf("HEAD: got %d %s, want 200", status, answer)
	}
	status, answer, _ := sendAs(t, nil, http.MethodGet, p.webhook, "", "", nil)
	if status != http.StatusOK || !strings.Contains(answer, "Netcore webhook receiver") || !strings.Contains(answer, "POST") {
		t.Errorf("GET: got %d %q, want 200 saying this is a Netcore webhook receiver to POST to", status, answer)
	}
	if strings.Count(strings.TrimSpace(answer), "\n") != 0 || strings.Contains(answer, "127.0.0") || strings.Contains(answer, p.dataDir) {
		t.Errorf("GET: %q is not one line saying nothing of the configuration", answer)
	}

	empties := []struct{ name, contentType, body string }{
		{"empty body", "", ""},
		{"empty form body", formType, ""},
		{"data= with nothing", formType, "data="},
		{"data=[]", formType, "data=[]"},
		{"data=[] encoded", formType, "data=%5B%5D"},
		{"data={}", formType, "data=%7B%7D"},
		{"{} as JSON", "application/json", "{}"},
		{"[] as JSON", "application/json", "[]"},
	}
	for _, e := range empties {
		if status, answer, _ := sendAs(t, nil, http.MethodPost, p.webhook, e.contentType, e.body, nil); status != http.StatusOK || !strings.Contains(answer, `"events":0`) {
			t.Errorf("%s: got %d %s, want 200 with 0 events", e.name, status, answer)
		}
	}
	for _, body := range []string{`data=[{"a":1}]`, "data=%5B%7B%7D%5D"} {
		if status, answer, _ := sendAs(t, nil, http.MethodPost, p.webhook, formType, body, nil); status != http.StatusBadRequest || !strings.Contains(answer, "data is a JSON array") {
			t.Errorf("%s: got %d %s, want 400 saying data is a JSON array", body, status, answer)
		}
	}
	for _, method := range []string{http.MethodHead, http.MethodGet, http.MethodPost} {
		if status, answer, _ := sendAs(t, fromOtherAddress(), method, p.webhook, "", "", nil); status != http.StatusForbidden {
			t.Errorf("%s from an address not allowed: got %d %s, want 403", method, status, answer)
		}
	}
	if status, answer, _ := sendAs(t, nil, http.MethodPut, p.webhook, "", "", nil); status != http.StatusMethodNotAllowed {
		t.Errorf("PUT: got %d %s, want 405", status, answer)
	}

	// A real post after the empty ones: once it is delivered, the empty
	// ones would have been before it, had they been stored.
	if status, answer, _ := sendAs(t, nil, http.MethodPost, p.webhook, "application/json", `{"p":[{"after":"the check"}]}`, nil); status != http.StatusOK {
		t.Fatalf("a real post: got %d %s", status, answer)
	}
	waitFor(t, "the real post delivered", 10*time.Second, func() bool { return m.receivedCount() == 1 })
	if got := m.received(); len(got) != 1 || !strings.Contains(string(got[0]), "the check") {
		t.Errorf("Meiro Events received %q, want the one real event", got)
	}

	metrics := scrape(t, p)
	if got := sumMetric(metrics, "netcore_empty_posts_total", ""); got != float64(len(empties)) {
		t.Errorf("netcore_empty_posts_total %v, want %d", got, len(empties))
	}
	if got := sumMetric(metrics, "netcore_posts_total", `status="200"`); got != float64(2+len(empties)+1) {
		t.Errorf(`netcore_posts_total{status="200"} %v, want %d (HEAD, GET, the empty posts and the real one)`, got, 2+len(empties)+1)
	}
	if got := sumMetric(metrics, "netcore_events_received_total", ""); got != 1 {
		t.Errorf("netcore_events_received_total %v, want the 1 real event", got)
	}
	// Empty posts are logged without log_posts, but as refusals are: one
	// line per client every 10 s, not one per post, which a client could
	// repeat as fast as it likes.
	if logs := p.stdout.String(); strings.Count(logs, "Netcore post empty") < 1 || strings.Count(logs, "Netcore post empty") >= len(empties) {
		t.Errorf("want the %d empty posts logged in at least 1 line, rate-limited to fewer than %d:\n%s", len(empties), len(empties), logs)
	}
}

// The two tokens of a rotation, and one that is neither.
const (
	dayOneOldToken   = "old-token-4f1c9a7e2b"
	dayOneNewToken   = "new-token-8d3e6b0a5c"
	dayOneWrongToken = "wrong-token-77aa99"
)

// TestDayOneSharedToken sets NETCORE_WEBHOOK_TOKEN to two tokens (a
// rotation): a post carrying either, in the header or in the URL's query,
// is stored; a missing or wrong one gets 401 before its body is read. No
// token, right or wrong, is found afterwards in the output, the data
// directory, the inspector or the metrics, though the URL is logged.
func TestDayOneSharedToken(t *testing.T) {
	m := newMeiro(t)
	inspect := freeAddr(t)
	env := m.env()
	env["NETCORE_WEBHOOK_TOKEN"] = dayOneOldToken + "," + dayOneNewToken
	env["NETCORE_INSPECT_ADDRESS"] = inspect
	env["NETCORE_ALLOWED_IPS"] = "127.0.0.1/32" // not 127.0.0.2, fromOtherAddress
	p := startProcess(t, options{env: env})
	var ids []string

	for _, c := range []struct {
		name, target string
		header       http.Header
		status       int
	}{
		{"new token in the header", p.webhook, http.Header{"X-Netcore-Token": {dayOneNewToken}}, 200},
		{"old token in the header", p.webhook, http.Header{"X-Netcore-Token": {dayOneOldToken}}, 200},
		{"new token in the query", p.webhook + "?token=" + dayOneNewToken, nil, 200},
		{"old token in the query", p.webhook + "?journey=a&token=" + dayOneOldToken, nil, 200},
		// First of the 401s: refusals are logged one per client and status
		// every 10 s, so only this one's URL is logged.
		{"wrong token in the query", p.webhook + "?token=" + dayOneWrongToken, nil, 401},
		{"no token", p.webhook, nil, 401},
		{"wrong token in the header", p.webhook, http.Header{"X-Netcore-Token": {dayOneWrongToken}}, 401},
		{"both tokens in one", p.webhook + "?token=" + dayOneOldToken + "," + dayOneNewToken, nil, 401},
		{"token in another query field", p.webhook + "?key=" + dayOneNewToken, nil, 401},
	} {
		// Each post its own event: the queue would take a repeat as one.
		event := `{"p":[{"case":"` + c.name + `"}]}`
		status, answer, id := sendAs(t, nil, http.MethodPost, c.target, "application/json", event, c.header)
		if status != c.status {
			t.Errorf("%s: got %d %s, want %d", c.name, status, answer, c.status)
		}
		ids = append(ids, id)
	}
	waitFor(t, "the 4 posts with a token delivered", 10*time.Second, func() bool { return m.receivedCount() == 4 })

	// The URL check needs no token; an address not allowed still gets 403
	// first, token or not.
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		if status, answer, _ := sendAs(t, nil, method, p.webhook, "", "", nil); status != http.StatusOK {
			t.Errorf("%s without a token: got %d %s, want 200", method, status, answer)
		}
	}
	if status, _, _ := sendAs(t, fromOtherAddress(), http.MethodPost, p.webhook+"?token="+dayOneNewToken, "application/json", `{"p":[{}]}`, nil); status != http.StatusForbidden {
		t.Errorf("an address not allowed, with the token: got %d, want 403", status)
	}
	// Requests that are logged with their URL, or kept: a bad body (kept in
	// the rejected file) and another path, each with a token in the URL.
	for _, c := range []struct {
		target string
		status int
	}{
		{p.webhook + "?token=" + dayOneNewToken, 400},
		{p.webhook + "?token=" + dayOneWrongToken, 401},
		{strings.TrimSuffix(p.webhook, "/netcore") + "/other?token=" + dayOneOldToken, 404},
	} {
		status, answer, id := sendAs(t, nil, http.MethodPost, c.target, "application/json", `{"p":[`, nil)
		if status != c.status {
			t.Errorf("%s: got %d %s, want %d", c.target, status, answer, c.status)
		}
		ids = append(ids, id)
	}

	// 401 before the body is read: the answer comes while the body the
	// headers announce was never sent.
	conn, err := net.Dial("tcp", webhookAddr(p))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "POST /netcore HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 12)
	if _, err := io.ReadFull(conn, head); err != nil || string(head) != "HTTP/1.1 401" {
		t.Errorf("a post without a token whose body is not sent: got %q %v, want a 401 at once", head, err)
	}

	waitFor(t, "the rejected post kept", 5*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(p.dataDir, "rejected", "posts.jsonl"))
		return len(b) > 0
	})
	// Everything a user could look at afterwards.
	seen := map[string]string{"output": p.stdout.String() + p.stderr.String(), "metrics": scrape(t, p)}
	for _, page := range append([]string{"/"}, ids...) {
		if page != "/" {
			page = "/posts/" + page
		}
		resp, err := http.Get("http://" + inspect + page)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen["inspector "+page] = string(b)
	}
	err = filepath.Walk(p.dataDir, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			seen[path] = string(readFile(t, path))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	refusedLine := ""
	for line := range strings.SplitSeq(seen["output"], "\n") {
		if strings.Contains(line, "status=401") && strings.Contains(line, "url=") {
			refusedLine = line
			break
		}
	}
	if !strings.Contains(refusedLine, "/netcore?token=REDACTED") {
		t.Errorf("the post refused for a wrong token in its URL is not logged with the token replaced: %q in\n%s", refusedLine, seen["output"])
	}
	for where, text := range seen {
		for _, token := range []string{dayOneOldToken, dayOneNewToken, dayOneWrongToken} {
			if strings.Contains(text, token) {
				t.Errorf("%s holds the token %s", where, token)
			}
		}
	}
}

// TestDayOneTokenIsSecret: echo does not print the token, and a bad one
// stops the start with an error that names the variable, not its value.
func TestDayOneTokenIsSecret(t *testing.T) {
	cmd := exec.Command(binary, "echo", filepath.Join(repoRoot(t), "config", "netcore-to-meiro.yaml"))
	cmd.Env = append(os.Environ(), "MEIRO_EVENTS_URL=http://127.0.0.1:1/collect", "NETCORE_WEBHOOK_TOKEN="+dayOneNewToken)
	out, err := runWithin(cmd, 20*time.Second)
	if err != nil || !strings.Contains(string(out), "token:") || strings.Contains(string(out), dayOneNewToken) {
		t.Errorf("echo (err %v) shows the token, or no token field:\n%s", err, out)
	}

	bad := "has a space " + dayOneWrongToken
	cmd = exec.Command(binary, "run")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "MEIRO_EVENTS_URL=http://127.0.0.1:1/collect", "NETCORE_ADDRESS=127.0.0.1:0",
		"NETCORE_ADMIN_ADDRESS=127.0.0.1:0", "NETCORE_WEBHOOK_TOKEN="+bad)
	out, err = runWithin(cmd, 20*time.Second)
	if _, exited := err.(*exec.ExitError); !exited || !strings.Contains(string(out), "NETCORE_WEBHOOK_TOKEN") || strings.Contains(string(out), dayOneWrongToken) {
		t.Errorf("a bad token: err %v, want an exit naming NETCORE_WEBHOOK_TOKEN without its value:\n%s", err, out)
	}
}
