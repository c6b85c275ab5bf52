package inspector

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// unescape is the text of a JSON string, given without its quotes, read
// leniently, as the JSON a refusal quotes may be cut short or sloppy: an
// escape cut short by the end is dropped, one JSON does not know is kept as
// written, and a lone surrogate is read as encoding/json reads it (U+FFFD).
func unescape(raw string) string {
	if !strings.Contains(raw, `\`) {
		return raw
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			b.WriteByte(raw[i])
			continue
		}
		if i++; i == len(raw) {
			break
		}
		switch c := raw[i]; c {
		case 'b', 'f', 'n', 'r', 't':
			b.WriteByte("\b\f\n\r\t"[strings.IndexByte("bfnrt", c)])
		case '"', '\\', '/':
			b.WriteByte(c)
		case 'u':
			r, ok := hex4(raw[i+1:])
			if !ok && len(raw)-i-1 < 4 {
				return b.String()
			}
			if !ok {
				b.WriteString(`\u`)
				continue
			}
			i += 4
			if utf16.IsSurrogate(r) && strings.HasPrefix(raw[i+1:], `\u`) {
				if low, ok := hex4(raw[i+3:]); ok && utf16.DecodeRune(r, low) != utf8.RuneError {
					r, i = utf16.DecodeRune(r, low), i+6
				}
			}
			b.WriteRune(r)
		default:
			b.WriteByte('\\')
			b.WriteByte(c)
		}
	}
	return b.String()
}

// hex4 reads the four hex digits of a \u escape at the start of s.
func hex4(s string) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(s[:4], 16, 16)
	return rune(n), err == nil
}

// jsonQuote writes text as a JSON string, quotes and all. <, > and & are
// kept as they are: the page escapes its text as HTML anyway, and the
// refusal reads as it was written.
func jsonQuote(text string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(text) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// asciiEscaped is v as JSON writes it when keeping to ASCII, as Python's
// json.dumps does by default: each character beyond ASCII as \u and four
// hex digits (a surrogate pair beyond U+FFFF). The hex is lower-case, as
// Python writes it; upper-case (Jackson's) is matched too, as values are
// masked in any case. A value all ASCII is returned as it is: JSON escapes
// only its quotes, backslashes and controls, and those are masked as the
// event itself wrote them.
func asciiEscaped(v string) string {
	if !hasNonASCII(v) {
		return v
	}
	quoted := jsonQuote(v)
	var b strings.Builder
	for _, r := range quoted[1 : len(quoted)-1] {
		switch {
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		case r > 0xFFFF:
			high, low := utf16.EncodeRune(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, high, low)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

func hasNonASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return true
		}
	}
	return false
}
