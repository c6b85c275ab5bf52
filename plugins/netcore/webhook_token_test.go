package netcore

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestParseTokensNeverQuotesThem(t *testing.T) {
	for _, bad := range []string{
		"s3cret",                     // too short
		"s3cret-with a-space-inside", // not URL-safe
		"s3cret-token-aaaaaaaa,s3cret-token-bbbbbbbb,s3cret-token-cccccccc", // three
		"s3cret-token-aaaaaaaa,",   // an empty second
		"s3cret-token-aaaaaaaa%2F", // would change in a URL
	} {
		_, err := parseTokens(bad, defaultTokenHeader)
		if err == nil {
			t.Errorf("%q passed", bad)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), wiFieldToken) {
			t.Errorf("the error does not name the field, or quotes the token: %v", err)
		}
	}
	if _, err := parseTokens("s3cret-token-aaaaaaaa", "X Token"); err == nil || !strings.Contains(err.Error(), wiFieldTokenHeader) {
		t.Errorf("a bad header name: %v", err)
	}
	if tokens, err := parseTokens("", defaultTokenHeader); tokens != nil || err != nil {
		t.Errorf("no token: %v %v, want no check", tokens, err)
	}
}

func TestTokensAdmitEitherOfARotation(t *testing.T) {
	const old, cur = "old-token-0123456789", "new-token-0123456789"
	tokens, err := parseTokens(old+" , "+cur, "X-Custom-Token")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, query, header, says string
	}{
		{"new in the header", "", cur, ""},
		{"old in the header", "", old, ""},
		{"new in the query", "token=" + cur, "", ""},
		{"old in the query, among others", "a=1&token=" + old + "&b=2", "", ""},
		{"none", "", "", "no token"},
		{"wrong in the header", "", cur + "x", "wrong token"},
		{"a prefix in the query", "token=" + cur[:10], "", "wrong token"},
		{"both in one", "token=" + old + "," + cur, "", "wrong token"},
		{"in another parameter", "key=" + cur, "", "no token"},
	} {
		r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1/netcore?"+c.query, nil)
		if c.header != "" {
			r.Header.Set("X-Custom-Token", c.header)
		}
		got := tokens.refusal(r)
		if (c.says == "") != (got == "") || !strings.Contains(got, c.says) {
			t.Errorf("%s: refusal %q, want %q", c.name, got, c.says)
		}
		if strings.Contains(got, old) || strings.Contains(got, cur[:10]) {
			t.Errorf("%s: the refusal quotes a token: %q", c.name, got)
		}
	}
}

func TestShownURLHidesEveryToken(t *testing.T) {
	const tok = "s3cret-token-0123456789"
	tokens, err := parseTokens(tok, defaultTokenHeader)
	if err != nil {
		t.Fatal(err)
	}
	for raw, want := range map[string]string{
		"/netcore?token=" + tok:                "/netcore?token=REDACTED",
		"/netcore?a=1&token=wrong-one&b=2":     "/netcore?a=1&token=REDACTED&b=2",
		"/netcore?tok%65n=" + tok + "&token=x": "/netcore?tok%65n=REDACTED&token=REDACTED",
		"/netcore/" + tok + "?key=" + tok:      "/netcore/REDACTED?key=REDACTED",
		"/netcore?token":                       "/netcore?token=REDACTED",
		"/netcore":                             "/netcore",
		// Written percent-encoded, a token is still the token.
		"/netcore/s3cret%2Dtoken-0123456789":              "/netcore/REDACTED",
		"/netcore?key=s3cret%2dtoken-0123456789":          "/netcore?key=REDACTED",
		"/netcore?key=before-s3cret-token-0123456789-end": "/netcore?key=REDACTED",
		"/netcore?s3cret%2Dtoken-0123456789=1":            "/netcore?REDACTED=1",
		// A key that is token in any case, or that does not parse.
		"/netcore?Token=wrong-one":   "/netcore?Token=REDACTED",
		"/netcore?TOK%45N=wrong-one": "/netcore?TOK%45N=REDACTED",
		"/netcore?x;token=wrong-one": "/netcore?x;token=REDACTED",
		"/netcore?a=%zz" + tok:       "/netcore?a=REDACTED",
		"/netcore?a=1&b=two&c":       "/netcore?a=1&b=two&c",
	} {
		u, err := url.ParseRequestURI(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := tokens.shownURL(u); got != want {
			t.Errorf("%s shown as %s, want %s", raw, got, want)
		}
		// Without a token set, a token parameter is hidden all the same.
		var none *webhookTokens
		if got := none.shownURL(u); strings.Contains(got, "wrong-one") {
			t.Errorf("%s shown as %s with no token set", raw, got)
		}
	}
}

// A custom header name, through the real input: the token in it is taken,
// the default header is then not, and the URL check needs none.
func TestWebhookTokenInACustomHeader(t *testing.T) {
	const tok = "s3cret-token-0123456789"
	c := &consumer{}
	target, _ := startWebhook(t, "token: "+tok+"\ntoken_header: X-Journey-Key", c)
	send := func(method, header string) reply {
		body := `{"p":[{"a":1}]}`
		if method != http.MethodPost {
			body = "" // a URL check has no body; one with a body is refused
		}
		r := mustRequest(t, method, target, "application/json", body)
		if header != "" {
			r.Header.Set(header, tok)
		}
		return do(t, nil, r)
	}
	if r := send(http.MethodPost, "X-Journey-Key"); r.status != http.StatusOK {
		t.Errorf("token in the custom header: got %d %s", r.status, r.body)
	}
	if r := send(http.MethodPost, defaultTokenHeader); r.status != http.StatusUnauthorized || !strings.Contains(r.body, "X-Journey-Key") {
		t.Errorf("token in the default header: got %d %s, want 401 naming X-Journey-Key", r.status, r.body)
	}
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		if r := send(method, ""); r.status != http.StatusOK {
			t.Errorf("%s without a token: got %d %s, want 200", method, r.status, r.body)
		}
	}
	if n := len(c.received()); n != 1 {
		t.Errorf("the pipeline got %d events, want the 1 of the post with the token", n)
	}
}

// The empty posts of a URL check are answered 200 with no events and never
// reach the pipeline; a GET says what it is in one line.
func TestWebhookURLCheck(t *testing.T) {
	c := &consumer{}
	target, _ := startWebhook(t, "", c)
	r := do(t, nil, mustRequest(t, http.MethodGet, target, "", ""))
	if r.status != http.StatusOK || r.body != urlCheckText {
		t.Errorf("GET: got %d %q", r.status, r.body)
	}
	for _, e := range []struct{ contentType, body string }{
		{"", ""}, {"", " \n"}, {"", "[]"}, {"application/x-www-form-urlencoded", ""}, {"application/json", "[ ]"}, {"application/json", "{}"},
		{"application/x-www-form-urlencoded", "data="}, {"application/x-www-form-urlencoded", "data"},
		{"application/x-www-form-urlencoded", "data=[]&x=1"}, {"application/x-www-form-urlencoded", "data=%5B+%5D"},
		{"application/x-www-form-urlencoded", "data=%7B%7D"}, {"application/json", `{"p":[]}`},
	} {
		r := do(t, nil, mustRequest(t, http.MethodPost, target, e.contentType, e.body))
		if r.status != http.StatusOK || !strings.Contains(r.body, `"status":"empty","events":0`) {
			t.Errorf("%q as %q: got %d %s, want 200 empty", e.body, e.contentType, r.status, r.body)
		}
	}
	for _, e := range []struct{ contentType, body, says string }{
		{"application/json", `[{}]`, "data is a JSON array"},
		{"application/json", "", "not valid JSON"}, // JSON declared, none sent
		{"application/x-www-form-urlencoded", "data=%5B1%5D", "data is a JSON array"},
		{"application/x-www-form-urlencoded", "x=1", "no data field"},
		{"application/x-www-form-urlencoded", "data=+x", "not valid JSON"},
	} {
		r := do(t, nil, mustRequest(t, http.MethodPost, target, e.contentType, e.body))
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, e.says) {
			t.Errorf("%q as %q: got %d %s, want 400 saying %q", e.body, e.contentType, r.status, r.body, e.says)
		}
	}
	if n := len(c.received()); n != 0 {
		t.Errorf("the pipeline got %d messages from empty posts", n)
	}
}

// A GET or HEAD that carries a body is not a URL check: answering it 200
// would drop the body, so it is refused with 405 like any other method.
func TestWebhookURLCheckWithABodyIsRefused(t *testing.T) {
	c := &consumer{}
	target, _ := startWebhook(t, "", c)
	const body = `{"p":[{"a":1}]}`
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		sized := mustRequest(t, method, target, "application/json", body)
		chunked := mustRequest(t, method, target, "application/json", "")
		chunked.Body, chunked.ContentLength = io.NopCloser(strings.NewReader(body)), -1
		for name, r := range map[string]*http.Request{"Content-Length": sized, "chunked": chunked} {
			if got := do(t, nil, r); got.status != http.StatusMethodNotAllowed {
				t.Errorf("%s with a body (%s): got %d %s, want 405", method, name, got.status, got.body)
			}
		}
	}
	if n := len(c.received()); n != 0 {
		t.Errorf("the pipeline got %d messages", n)
	}
}

func mustRequest(t *testing.T, method, target, contentType, body string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

// A monitor polling the URL with HEAD or GET would push the real posts out
// of the inspector's short list, so URL checks are not listed; an empty
// post, which a sender makes once, is.
func TestInspectorDoesNotListURLChecks(t *testing.T) {
	c := &consumer{}
	inspect := freeAddr(t)
	target, _ := startWebhook(t, "inspect:\n  address: "+inspect, c)
	waitListening(t, inspect)
	for _, body := range []string{`{"p":[{"a":1}]}`, `{}`} {
		if r := do(t, nil, mustRequest(t, http.MethodPost, target, "application/json", body)); r.status != http.StatusOK {
			t.Fatalf("post %s: got %d %s", body, r.status, r.body)
		}
	}
	for _, method := range []string{http.MethodHead, http.MethodGet, http.MethodHead, http.MethodGet} {
		if r := do(t, nil, mustRequest(t, method, target, "", "")); r.status != http.StatusOK {
			t.Fatalf("%s: got %d %s", method, r.status, r.body)
		}
	}
	page := do(t, nil, mustRequest(t, http.MethodGet, "http://"+inspect+"/", "", ""))
	if n := strings.Count(page.body, `<tr class="`); page.status != http.StatusOK || n != 2 {
		t.Errorf("the inspector lists %d requests, want the post and the empty post:\n%s", n, page.body)
	}
}
