package netcore

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

const (
	// defaultTokenHeader is the header that carries the token unless
	// token_header names another.
	defaultTokenHeader = "X-Netcore-Token"
	// tokenQueryParam is the query parameter of the URL Netcore is given
	// that may carry the token, for senders that cannot set a header.
	tokenQueryParam = "token"
	// hiddenToken replaces a token wherever a URL or path is shown.
	hiddenToken = "REDACTED"
	// maxTokens is one token, or two while one replaces the other.
	maxTokens = 2
	// minTokenLen keeps a token out of reach of guessing: 16 characters
	// of letters and digits are over 80 bits.
	minTokenLen = 16
)

// tokenChars are the characters a token may hold: those a URL carries as
// they are, so that the token is the same in a header and in a query.
var tokenChars = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)

// headerName is what an HTTP header name may be made of, kept to the usual.
var headerName = regexp.MustCompile(`^[A-Za-z0-9-]+$`)

// webhookTokens are the shared secrets a post must carry when token is set.
// Netcore does not sign its posts, but its webhook settings can add a header
// and every URL it is given can carry a query string.
type webhookTokens struct {
	header string
	sums   [][sha256.Size]byte // compared, so that no comparison depends on a token's length
	plain  []string            // only to hide them in what is shown
}

// CheckTokens checks the value of the token field (NETCORE_WEBHOOK_TOKEN)
// without ever quoting it: one token, or two separated by a comma.
func CheckTokens(value string) error {
	_, err := parseTokens(value, defaultTokenHeader)
	return err
}

// CheckHeaderName checks the value of the token_header field
// (NETCORE_WEBHOOK_TOKEN_HEADER).
func CheckHeaderName(header string) error {
	if !headerName.MatchString(header) {
		return fmt.Errorf("%s %q is not a header name: use letters, digits and -", wiFieldTokenHeader, header)
	}
	return nil
}

// parseTokens reads the token field; an empty one turns the check off (nil).
// Its errors never quote the value.
func parseTokens(value, header string) (*webhookTokens, error) {
	if value == "" {
		return nil, nil
	}
	if err := CheckHeaderName(header); err != nil {
		return nil, err
	}
	parts := strings.Split(value, ",")
	if len(parts) > maxTokens {
		return nil, fmt.Errorf("%s holds %d tokens: give one, or two separated by a comma while Netcore moves from one to the other", wiFieldToken, len(parts))
	}
	t := &webhookTokens{header: header}
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if len(p) < minTokenLen || !tokenChars.MatchString(p) {
			return nil, fmt.Errorf("%s: token %d of %d (not shown) must be at least %d characters of letters, digits, '-', '.', '_' and '~', which a URL carries unchanged: make one with `openssl rand -hex 16`", wiFieldToken, i+1, len(parts), minTokenLen)
		}
		t.sums = append(t.sums, sha256.Sum256([]byte(p)))
		t.plain = append(t.plain, p)
	}
	return t, nil
}

// refusal is why r does not carry a token, or "" when it does (or when no
// token is set). The header is read first, then the query; each value is
// compared with every token in constant time.
func (t *webhookTokens) refusal(r *http.Request) string {
	if t == nil {
		return ""
	}
	given, found := r.Header.Get(t.header), false
	if given == "" {
		given = r.URL.Query().Get(tokenQueryParam)
	}
	sum := sha256.Sum256([]byte(given))
	for _, want := range t.sums {
		found = subtle.ConstantTimeCompare(sum[:], want[:]) == 1 || found
	}
	switch {
	case found:
		return ""
	case given == "":
		return fmt.Sprintf("no token: send it in the %s header, or as the %s query parameter of the URL", t.header, tokenQueryParam)
	default:
		return fmt.Sprintf("wrong token in the %s header or the %s query parameter", t.header, tokenQueryParam)
	}
}

// hide replaces every token in s, for a path shown in a message.
func (t *webhookTokens) hide(s string) string {
	if t == nil {
		return s
	}
	for _, p := range t.plain {
		s = strings.ReplaceAll(s, p, hiddenToken)
	}
	return s
}

// shownURL is the request's path and query as logged. Each path segment,
// query key and query value is decoded before it is looked at, since a
// sender may percent-encode any character of a token. Hidden are: the value
// of every token parameter, whatever its case (right or wrong: a wrong one
// may be an old token, or a typo of the right one), any part that holds a
// token once decoded, and any part that does not decode, which cannot be
// looked into.
func (t *webhookTokens) shownURL(u *url.URL) string {
	segments := strings.Split(u.EscapedPath(), "/")
	for i, seg := range segments {
		if t.holdsToken(seg, url.PathUnescape) {
			segments[i] = hiddenToken
		}
	}
	shown := strings.Join(segments, "/")
	if u.RawQuery != "" {
		shown += "?" + t.hideQuery(u.RawQuery)
	}
	return shown
}

// hideQuery hides what shownURL says in a raw query, leaving the rest as
// sent.
func (t *webhookTokens) hideQuery(query string) string {
	pairs := strings.Split(query, "&")
	for i, pair := range pairs {
		key, value, hasValue := strings.Cut(pair, "=")
		if tokenKey(key) || t.holdsToken(value, url.QueryUnescape) {
			value, hasValue = hiddenToken, true
		}
		if t.holdsToken(key, url.QueryUnescape) {
			key = hiddenToken
		}
		if hasValue {
			key += "=" + value
		}
		pairs[i] = key
	}
	return strings.Join(pairs, "&")
}

// tokenKey says a raw query key names the token parameter in any case, or
// does not parse (Go's query parser drops such a pair, but a proxy in front
// may not).
func tokenKey(raw string) bool {
	key, err := url.QueryUnescape(raw)
	return err != nil || strings.Contains(key, ";") || strings.EqualFold(key, tokenQueryParam)
}

// holdsToken says raw holds a token once decoded, or does not decode.
func (t *webhookTokens) holdsToken(raw string, unescape func(string) (string, error)) bool {
	decoded, err := unescape(raw)
	if err != nil {
		return true
	}
	return t != nil && t.hide(decoded) != decoded
}
