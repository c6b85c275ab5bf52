package netcore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/netcore-connect/netcore-connect/internal/rawjson"
)

// Post is one Netcore post, decoded and checked once on the request path:
// the JSON of its data field and that JSON split into panels of raw events.
type Post struct {
	Data   []byte
	Panels []Panel
	// Compact says Data has no white space outside its strings, as Netcore
	// sends it: each event is then compact JSON as it stands, and
	// rawjson.AppendCompact would only copy it.
	Compact bool
}

// Panel is one key of a post: a panel (journey) name and its events, each
// the exact bytes of one JSON object as Netcore sent it.
type Panel struct {
	Name   string
	Events [][]byte
}

// EventCount is the number of events across all panels.
func (p *Post) EventCount() int {
	n := 0
	for _, panel := range p.Panels {
		n += len(panel.Events)
	}
	return n
}

// RejectError is a post the receiver refuses, with the HTTP status and a
// message that tells the sender what is wrong.
type RejectError struct {
	Status int
	Reason string
}

func (e *RejectError) Error() string { return e.Reason }

func badRequest(format string, args ...any) *RejectError {
	return &RejectError{Status: http.StatusBadRequest, Reason: fmt.Sprintf(format, args...)}
}

// DecodeBody reads a request body as Netcore posts it: a form with the JSON
// in its data field, or the JSON itself. The content type picks the format;
// without one (or with text/plain or application/octet-stream) the body is
// sniffed: JSON when it starts with '{', a form otherwise.
//
// A form whose data field does not decode to valid JSON, while the body is
// "data=" followed by valid JSON, is taken as a sender that forgot to
// percent-encode (a raw '&' inside a value splits such a form): the JSON after
// "data=" is used as it stands.
func DecodeBody(contentType string, body []byte) (*Post, error) {
	switch bodyFormat(contentType, body) {
	case formatJSON:
		return DecodeData(body)
	case formatForm:
		data, err := formData(body)
		if err == nil {
			post, valid, decodeErr := decodeData(data)
			if valid {
				return post, decodeErr // the data field is the JSON, whatever its shape
			}
			err = decodeErr
		}
		if raw, ok := bytes.CutPrefix(body, []byte("data=")); ok {
			if post, valid, rawErr := decodeData(raw); valid {
				return post, rawErr
			}
		}
		return nil, err
	default:
		return nil, &RejectError{
			Status: http.StatusUnsupportedMediaType,
			Reason: fmt.Sprintf("unsupported content type %q: post application/x-www-form-urlencoded with a data field, or application/json", contentType),
		}
	}
}

// DecodeData checks that data is a Netcore payload, a JSON object whose
// every member is an array of objects, and splits it into panels: checking
// the JSON finds them, in one pass (rawjson.ValidateParts).
func DecodeData(data []byte) (*Post, error) {
	post, _, err := decodeData(data)
	return post, err
}

// decodeData is DecodeData, and says whether data was valid UTF-8 and JSON
// (a refusal then is of its shape).
func decodeData(data []byte) (post *Post, valid bool, err error) {
	if !utf8.Valid(data) {
		return nil, false, badRequest("data is not valid UTF-8 (first bad byte at offset %d)", firstInvalidUTF8(data))
	}
	parts, valid, compact := rawjson.ValidateParts(data, nil)
	if !valid {
		return nil, false, badRequest("data is not valid JSON: %s", syntaxError(data))
	}
	post, err = splitPanels(data, parts, compact)
	return post, true, err
}

// splitPanels makes the post of data, already checked to be valid JSON,
// from its parts: the panels (depth 1) and their events (depth 2).
func splitPanels(data []byte, parts []rawjson.Part, compact bool) (*Post, error) {
	if kind := rawjson.KindOf(bytes.TrimLeft(data, " \t\r\n")); kind != rawjson.Object {
		return nil, badRequest("data is a JSON %s, not an object of panels like {\"panel\": [event, ...]}", kind)
	}
	post := &Post{Data: data, Compact: compact}
	for i := 0; i < len(parts); {
		name, err := rawjson.Key(parts[i].Key)
		if err != nil {
			return nil, badRequest("panel name %q: %s", parts[i].Key, err)
		}
		if kind := rawjson.KindOf(parts[i].Value); kind != rawjson.Array {
			return nil, badRequest("panel %q is a JSON %s, not an array of events", name, kind)
		}
		panel := Panel{Name: name}
		for i++; i < len(parts) && parts[i].Depth == 2; i++ {
			if kind := rawjson.KindOf(parts[i].Value); kind != rawjson.Object {
				return nil, badRequest("panel %q event %d is a JSON %s, not an object", name, len(panel.Events), kind)
			}
			panel.Events = append(panel.Events, parts[i].Value)
		}
		post.Panels = append(post.Panels, panel)
	}
	return post, nil
}

type format int

const (
	formatUnsupported format = iota
	formatForm
	formatJSON
)

func bodyFormat(contentType string, body []byte) format {
	mediaType := ""
	if contentType != "" {
		// An unparsable header is treated like a missing one: the body decides.
		mediaType, _, _ = mime.ParseMediaType(contentType)
	}
	switch {
	case mediaType == "application/x-www-form-urlencoded":
		return formatForm
	case mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"):
		return formatJSON
	case mediaType == "" || mediaType == "text/plain" || mediaType == "application/octet-stream":
		if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '{' {
			return formatJSON
		}
		return formatForm
	default:
		return formatUnsupported
	}
}

// formData returns the decoded value of the single data field of a form.
// Other fields are ignored; a second data field is refused rather than
// silently dropping one of them.
func formData(body []byte) ([]byte, error) {
	var data []byte
	found := false
	for pair := range bytes.SplitSeq(body, []byte("&")) {
		key, value, _ := bytes.Cut(pair, []byte("="))
		if k, err := queryUnescape(nil, key); err != nil || string(k) != "data" {
			continue
		}
		if found {
			return nil, badRequest("form has more than one data field")
		}
		v, err := queryUnescape(make([]byte, 0, len(value)), value)
		if err != nil {
			return nil, badRequest("data field has invalid percent-encoding: %s", err)
		}
		data, found = v, true
	}
	if !found {
		return nil, badRequest("form has no data field: Netcore posts data=<JSON>")
	}
	return data, nil
}

// queryUnescape appends the form-decoded s to dst: "+" is a space, "%XX" a
// byte. It is url.QueryUnescape without its string copies, which cost as
// much as the rest of decoding on large posts.
func queryUnescape(dst, s []byte) ([]byte, error) {
	// The result is never longer than s: room for it is made once and
	// written by index (a whole post's body goes through here).
	j := len(dst)
	dst = slices.Grow(dst, len(s))[:j+len(s)]
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				end := min(i+3, len(s))
				return nil, fmt.Errorf("invalid URL escape %q at byte %d", s[i:end], i)
			}
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		}
		dst[j] = c
		j++
	}
	return dst[:j], nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// syntaxError explains why data is not valid JSON; only called once json.Valid
// said no, so the cost stays off the path of good posts.
func syntaxError(data []byte) string {
	var v json.RawMessage
	err := json.Unmarshal(data, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
	}
	if err != nil {
		return err.Error()
	}
	return "unknown error"
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return -1
}
