package netcorepost

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

// PanelList names each panel with its event count, as format (a %s for
// the name, a %d for the count), joined by sep: for logs and the inspector.
func (p *Post) PanelList(format, sep string) string {
	parts := make([]string, len(p.Panels))
	for i, panel := range p.Panels {
		parts[i] = fmt.Sprintf(format, panel.Name, len(panel.Events))
	}
	return strings.Join(parts, sep)
}

// RejectError is a post the receiver refuses, with the HTTP status and a
// message that tells the sender what is wrong.
type RejectError struct {
	Status int
	Reason string
}

func (e *RejectError) Error() string { return e.Reason }

// BadRequest is a 400 refusal, its reason formatted as by fmt.Sprintf.
func BadRequest(format string, args ...any) *RejectError {
	return &RejectError{Status: http.StatusBadRequest, Reason: fmt.Sprintf(format, args...)}
}

// DecodeBody reads a request body as Netcore posts it: a form with the JSON
// in its data field, or the JSON itself. The content type picks the format;
// without one (or with text/plain or application/octet-stream) the body is
// sniffed: JSON when it starts with '{', a form otherwise.
func DecodeBody(contentType string, body []byte) (*Post, error) {
	switch bodyFormat(contentType, body) {
	case formatJSON:
		return DecodeData(body)
	case formatForm:
		data, raw, err := formData(body)
		if err != nil {
			return nil, err
		}
		post, valid, err := decodeData(data)
		if !valid && raw {
			// Most likely a value encoded in part: say how it was read.
			err = BadRequest("%s; the data field starts with a raw %q, so it is read as JSON as it stands: percent-encode all of it, or none", err, data[0])
		}
		return post, err
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
		return nil, false, BadRequest("data is not valid UTF-8 (first bad byte at offset %d)", firstInvalidUTF8(data))
	}
	parts, valid, compact := rawjson.ValidateParts(data, nil)
	if !valid {
		return nil, false, BadRequest("data is not valid JSON: %s", syntaxError(data))
	}
	post, err = splitPanels(data, parts, compact)
	return post, true, err
}

// splitPanels makes the post of data, already checked to be valid JSON,
// from its parts: the panels (depth 1) and their events (depth 2).
func splitPanels(data []byte, parts []rawjson.Part, compact bool) (*Post, error) {
	if kind := rawjson.KindOf(bytes.TrimLeft(data, " \t\r\n")); kind != rawjson.Object {
		return nil, BadRequest("data is a JSON %s, not an object of panels like {\"panel\": [event, ...]}", kind)
	}
	post := &Post{Data: data, Compact: compact}
	for i := 0; i < len(parts); {
		name, err := rawjson.Key(parts[i].Key)
		if err != nil {
			return nil, BadRequest("panel name %q: %s", parts[i].Key, err)
		}
		if kind := rawjson.KindOf(parts[i].Value); kind != rawjson.Array {
			return nil, BadRequest("panel %q is a JSON %s, not an array of events", name, kind)
		}
		panel := Panel{Name: name}
		for i++; i < len(parts) && parts[i].Depth == 2; i++ {
			if kind := rawjson.KindOf(parts[i].Value); kind != rawjson.Object {
				return nil, BadRequest("panel %q event %d is a JSON %s, not an object", name, len(panel.Events), kind)
			}
			panel.Events = append(panel.Events, parts[i].Value)
		}
		post.Panels = append(post.Panels, panel)
	}
	return post, nil
}

// EmptyPost says whether a body that DecodeBody refused is one of the empty
// posts senders make to check a URL when it is saved (Netcore's email
// webhooks post an empty array when a HEAD fails): no body (as a form, or
// with no content type), a data field with nothing or an empty array in it,
// or an empty JSON array. An empty
// object is no refusal: it decodes to a post of no events. Called only once
// DecodeBody refused the body, so that good posts are not read twice.
func EmptyPost(contentType string, body []byte) bool {
	switch bodyFormat(contentType, body) {
	case formatJSON:
		// No body is no JSON: only a form, or a body with no content type,
		// may be empty.
		return emptyArray(body)
	case formatForm:
		if len(bytes.Trim(body, jsonSpace)) == 0 || emptyArray(body) {
			return true
		}
		data, _, err := formData(body)
		return err == nil && (len(bytes.Trim(data, jsonSpace)) == 0 || emptyArray(data))
	default:
		return false
	}
}

// emptyArray says whether b is the JSON [], white space allowed.
func emptyArray(b []byte) bool {
	b = bytes.Trim(b, jsonSpace)
	return len(b) >= 2 && b[0] == '[' && b[len(b)-1] == ']' && len(bytes.Trim(b[1:len(b)-1], jsonSpace)) == 0
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

// formData returns the value of the single data field of a form: the JSON
// as it stands when the sender did not percent-encode it (see unencoded),
// percent-decoded otherwise. Other fields are ignored; a second data field
// is refused rather than silently dropping one of them.
func formData(body []byte) (data []byte, raw bool, err error) {
	found := false
	for start := 0; start <= len(body); {
		end := bytes.IndexByte(body[start:], '&')
		if end < 0 {
			end = len(body)
		} else {
			end += start
		}
		next := end + 1 // where the next field starts
		key, value, hasValue := bytes.Cut(body[start:end], []byte("="))
		if k, err := queryUnescape(nil, key); err == nil && string(k) == "data" {
			if found {
				return nil, false, BadRequest("form has more than one data field")
			}
			found = true
			if valueAt := start + len(key) + 1; hasValue && unencoded(body[valueAt:]) {
				// A raw '&' inside its strings does not end it: its JSON does.
				raw = true
				data, next, err = unencodedJSON(body, valueAt)
			} else {
				data, err = queryUnescape(make([]byte, 0, len(value)), value)
				if err != nil {
					err = BadRequest("data field has invalid percent-encoding: %s", err)
				}
			}
			if err != nil {
				return nil, false, err
			}
		}
		start = next
	}
	if !found {
		return nil, false, BadRequest("form has no data field: Netcore posts data=<JSON>")
	}
	return data, raw, nil
}

// unencoded says whether a form value was sent as it stands rather than
// form-encoded: it starts (after any white space, which an encoder writes
// as '+' or %20) with a raw '{' or '[', which every form encoder writes as
// %7B or %5B. Such a value is JSON byte for byte: decoding it would turn
// its '+' into spaces and its %XX into bytes.
func unencoded(value []byte) bool {
	v := bytes.TrimLeft(value, jsonSpace)
	return len(v) > 0 && (v[0] == '{' || v[0] == '[')
}

// jsonSpace is the white space JSON allows between values.
const jsonSpace = " \t\r\n"

// unencodedJSON is the JSON value of an unencoded data field that starts at
// body[at], up to where that value ends (white space around it trimmed),
// and where the next field starts: the value must be followed by the end of
// the body or by '&'. The JSON is checked by the caller.
func unencodedJSON(body []byte, at int) (data []byte, next int, err error) {
	v := body[at:]
	begin := len(v) - len(bytes.TrimLeft(v, jsonSpace))
	end := begin + rawjson.End(v[begin:])
	after := len(v) - len(bytes.TrimLeft(v[end:], jsonSpace))
	if after < len(v) && v[after] != '&' {
		// Counted in the body, not the value: the sender has the body.
		return nil, 0, BadRequest("data field is not percent-encoded (it starts with a raw %q), so it is read as JSON as it stands, and that JSON ends %d bytes into the body, followed by %.20q: percent-encode the whole value, or none of it",
			v[begin], at+end, v[after:])
	}
	return v[begin:end], at + after + 1, nil
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
