package netcore

import (
	"encoding/json"
	"strings"
)

// maskWalk walks JSON that may be cut short or sit inside other text (a
// refusal quoting an event), finding the values of masked fields: where
// they are, to be replaced, and their numbers and strings, to be masked
// wherever else they appear. It is lenient, as a refusal's JSON may be
// anything: it stops at the first thing that is not JSON, keeping what it
// found before, and a masked value cut short by the end of the text is
// masked to the end.
type maskWalk struct {
	rules  maskRules
	s      string
	pos    int
	path   []string // the keys down to the value being walked, lower-cased
	depth  int
	inMask bool     // inside a masked value, whose scalars are collected
	spans  [][2]int // the masked values, in order
	values []string
}

// maxMaskDepth bounds the nesting walked, and so the recursion: deeper
// JSON is not walked (an event that deep is not shown).
const maxMaskDepth = 512

// masked is s with every masked value replaced.
func (w *maskWalk) masked() string {
	var b strings.Builder
	last := 0
	for _, span := range w.spans {
		b.WriteString(w.s[last:span[0]])
		b.WriteString(maskedJSON)
		last = span[1]
	}
	b.WriteString(w.s[last:])
	return b.String()
}

// value walks the value at pos; false if it is not JSON, or cut short.
func (w *maskWalk) value() bool {
	w.space()
	if w.inMask || !w.rules.cover(w.path) {
		return w.bare()
	}
	start := w.pos
	w.inMask = true
	ok := w.bare()
	w.inMask = false
	if w.pos > start {
		w.spans = append(w.spans, [2]int{start, w.pos})
	}
	return ok
}

// member walks a key and its value outside any object, as a text may quote
// them ("identity": "x"); when no colon follows the string, pos stays.
func (w *maskWalk) member() {
	start := w.pos
	w.path = w.path[:0]
	if !w.key() {
		w.pos = start
		return
	}
	w.value()
	w.path = w.path[:0]
}

func (w *maskWalk) bare() bool {
	if w.pos >= len(w.s) {
		return false
	}
	switch w.s[w.pos] {
	case '{':
		return w.container('}', w.key)
	case '[':
		return w.container(']', nil)
	case '"':
		start := w.pos
		ok := w.str()
		if ok && w.inMask {
			w.collectString(w.s[start:w.pos])
		}
		return ok
	}
	return w.scalar()
}

// container walks an object (with key, which reads each member's key) or
// an array (key nil), up to and with its close.
func (w *maskWalk) container(close byte, key func() bool) bool {
	if w.depth == maxMaskDepth {
		return false
	}
	w.depth++
	defer func() { w.depth-- }()
	w.pos++
	w.space()
	if w.at(close) {
		w.pos++
		return true
	}
	for {
		if key != nil {
			if !key() {
				return false
			}
			ok := w.value()
			w.path = w.path[:len(w.path)-1]
			if !ok {
				return false
			}
		} else if !w.value() {
			return false
		}
		w.space()
		switch {
		case w.at(','):
			w.pos++
		case w.at(close):
			w.pos++
			return true
		default:
			return false
		}
	}
}

// key reads a member's key and its colon, and adds the key to path.
func (w *maskWalk) key() bool {
	w.space()
	start := w.pos
	if !w.at('"') || !w.str() {
		return false
	}
	name := unquoted(w.s[start:w.pos])
	w.space()
	if !w.at(':') {
		return false
	}
	w.pos++
	w.path = append(w.path, strings.ToLower(name))
	return true
}

// str reads a string, its quotes and all.
func (w *maskWalk) str() bool {
	for i := w.pos + 1; i < len(w.s); i++ {
		switch w.s[i] {
		case '\\':
			i++
		case '"':
			w.pos = i + 1
			return true
		}
	}
	w.pos = len(w.s)
	return false
}

// scalar reads a number, true, false or null; only numbers are collected
// (a true or a null is no one's).
func (w *maskWalk) scalar() bool {
	start := w.pos
	for w.pos < len(w.s) && strings.IndexByte("+-.0123456789eE", w.s[w.pos]) >= 0 {
		w.pos++
	}
	if w.pos > start && strings.IndexByte("-0123456789", w.s[start]) >= 0 {
		if w.inMask {
			w.values = append(w.values, w.s[start:w.pos])
		}
		return true
	}
	w.pos = start
	for _, literal := range []string{"true", "false", "null"} {
		if strings.HasPrefix(w.s[w.pos:], literal) {
			w.pos += len(literal)
			return true
		}
	}
	return false
}

// collectString keeps a masked string as it reads, and as it is written
// when escaped, as a refusal may quote either.
func (w *maskWalk) collectString(quoted string) {
	v := unquoted(quoted)
	w.values = append(w.values, v)
	if raw := quoted[1 : len(quoted)-1]; raw != v {
		w.values = append(w.values, raw)
	}
}

// unquoted is a JSON string's value, or its text between the quotes if it
// is not valid JSON.
func unquoted(quoted string) string {
	raw := quoted[1 : len(quoted)-1]
	if !strings.Contains(raw, `\`) {
		return raw
	}
	var v string
	if json.Unmarshal([]byte(quoted), &v) != nil {
		return raw
	}
	return v
}

func (w *maskWalk) space() {
	for w.pos < len(w.s) && strings.IndexByte(" \t\r\n", w.s[w.pos]) >= 0 {
		w.pos++
	}
}

func (w *maskWalk) at(c byte) bool { return w.pos < len(w.s) && w.s[w.pos] == c }
