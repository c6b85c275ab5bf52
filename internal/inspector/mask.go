package inspector

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/netcore-connect/netcore-connect/internal/rawjson"
)

// DefaultMaskFields are the fields the inspector masks unless told others:
// Netcore's identity fields of event_params, wherever they are, and all of
// att_params (its contact attributes).
var DefaultMaskFields = []string{"identity", "foreignkey", "email", "mobile", "phone", "att_params"}

// Mask is the fields whose values the inspector hides, each a path of
// lower-cased names. A rule matches a value whose path of keys ends with it
// (so "identity" matches at any depth, and "custom_params.user_email" under
// any custom_params), and lists do not count in paths: event_params sent
// as a list of objects is masked as event_params sent as an object.
type Mask [][]string

// ParseMask reads mask_fields: names or dotted paths, several to an
// entry when separated by commas (as an environment variable gives them).
func ParseMask(entries []string) (Mask, error) {
	var rules Mask
	for _, entry := range entries {
		for field := range strings.SplitSeq(entry, ",") {
			field = strings.TrimSpace(field)
			if field == "" {
				continue
			}
			rule := strings.Split(strings.ToLower(field), ".")
			if slices.Contains(rule, "") {
				return nil, fmt.Errorf("%q has an empty name between dots: write a name (identity) or a path of names (custom_params.user_email)", field)
			}
			rules = append(rules, rule)
		}
	}
	return rules, nil
}

// cover says whether a value at path (lower-cased keys) is to be masked.
func (r Mask) cover(path []string) bool {
	for _, rule := range r {
		if len(rule) <= len(path) && slices.Equal(rule, path[len(path)-len(rule):]) {
			return true
		}
	}
	return false
}

// CatalogMask masks an example at a catalog path (keys joined by dots, []
// for elements, each as the event wrote it, escapes and all) as events are
// masked: when the path, or an object holding it, is a masked field (its
// keys read unescaped, as in events); otherwise the masked fields of any
// JSON quoted in the value (a string holding a serialised object). Nil
// rules: masking is off.
func (r Mask) CatalogMask() func(path string, value []byte) string {
	if r == nil {
		return nil
	}
	return func(path string, value []byte) string {
		var keys []string
		for key := range strings.SplitSeq(path, ".") {
			keys = append(keys, strings.ToLower(unescape(strings.TrimRight(key, "[]"))))
			if r.cover(keys) {
				return masked
			}
		}
		return r.maskText(string(value), nil)
	}
}

const masked = "•••"

// maskedJSON replaces a masked value: still JSON, so that a masked event
// can be pretty-printed.
const maskedJSON = `"` + masked + `"`

// show pretty-prints an event, masking the values of masked fields when
// masking is on, and returns those values, to be masked wherever else they
// appear (in a refusal that quotes the event). Numbers keep their exact
// text, and keys their order.
func (in *Inspector) show(event []byte) (string, []string) {
	var values []string
	if in.mask != nil {
		w := maskWalk{rules: in.mask, s: string(event)}
		if !w.value() || strings.TrimSpace(w.s[w.pos:]) != "" {
			return "(event not shown: it could not be masked)", nil
		}
		event, values = []byte(w.masked()), w.values
	}
	var out bytes.Buffer
	if json.Indent(&out, rawjson.AppendCompact(nil, event), "", "  ") != nil {
		return string(event), values
	}
	return out.String(), values
}

// minQuotedValueBytes is the shortest value of a masked field that is
// masked wherever it appears in a refusal: a shorter one ("M", "IN", "12")
// identifies nobody, and masking it everywhere would leave no refusal to
// read.
const minQuotedValueBytes = 4

// maskText masks a refusal or an error text, which may quote the event
// whole or in part, as JSON (an API echoing what it refused, cut short by
// the excerpt an error keeps) or as words ("contact x@example.com has
// opted out"). Two rules, because neither alone covers both: the values of
// masked fields in any JSON found in the text, from the keys, also JSON
// serialised again into a string (this covers other events quoted too, and
// values cut short); and every value the event itself had in a masked
// field, wherever it appears, in any case, as it reads, as the event wrote
// it and escaped to ASCII (this covers the values quoted without their
// keys).
func (r Mask) maskText(text string, values []string) string {
	w := maskWalk{rules: r, s: text, event: values}
	return w.text()
}

// maskValues masks each of values (of at least minQuotedValueBytes)
// wherever it appears in text, in any case.
func maskValues(text string, values []string) string {
	if len(values) == 0 {
		return text
	}
	// Most errors quote nothing of the event ("connection refused"): the
	// regular expression is only built for the values found in the text.
	lower := strings.ToLower(text)
	var quoted []string
	for _, v := range values {
		if len(v) >= minQuotedValueBytes && strings.Contains(lower, strings.ToLower(v)) {
			quoted = append(quoted, regexp.QuoteMeta(asRegexpReadsIt(v)))
		}
	}
	if len(quoted) == 0 {
		return text
	}
	// The longest first, as the leftmost alternative that matches wins.
	slices.SortFunc(quoted, func(a, b string) int { return len(b) - len(a) })
	return regexp.MustCompile("(?i)"+strings.Join(quoted, "|")).ReplaceAllLiteralString(text, masked)
}

// asRegexpReadsIt is v with each byte that is not UTF-8 replaced by
// U+FFFD, as a regular expression reads such a byte in the text it
// searches (and cannot have it in its pattern); strings.Map replaces each
// such byte alone.
func asRegexpReadsIt(v string) string {
	return strings.Map(func(r rune) rune { return r }, v)
}
