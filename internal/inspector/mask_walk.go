package inspector

import "strings"

// maskWalk walks JSON that may be cut short or sit inside other text (a
// refusal quoting an event), finding the values of masked fields: where
// they are, to be replaced, and their numbers and strings, to be masked
// wherever else they appear. It is lenient, as a refusal's JSON may be
// anything: it stops at the first thing that is not JSON, keeping what it
// found before, and a masked value cut short by the end of the text is
// masked to the end. A string that quotes JSON is walked too, unquoted.
type maskWalk struct {
	rules  Mask
	s      string
	pos    int
	path   []string // the keys down to the value being walked, lower-cased
	depth  int
	inMask bool       // inside a masked value, whose scalars are collected
	spans  []maskSpan // the masked values, in order
	values []string   // the values of masked fields found
	event  []string   // in a text: the event's values, masked wherever they appear
}

// maskSpan is a part of the walked text to be written as with.
type maskSpan struct {
	start, end int
	with       string
}

// maxMaskDepth bounds the nesting walked, and so the recursion: deeper
// JSON is not walked (an event that deep is not shown).
const maxMaskDepth = 512

// masked is s with every masked value replaced.
func (w *maskWalk) masked() string {
	var b strings.Builder
	last := 0
	for _, span := range w.spans {
		b.WriteString(w.s[last:span.start])
		b.WriteString(span.with)
		last = span.end
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
		w.spans = append(w.spans, maskSpan{start, w.pos, maskedJSON})
	}
	return ok
}

// text walks s as a text that may quote JSON anywhere (see maskText), and
// returns it masked.
func (w *maskWalk) text() string {
	for w.pos < len(w.s) {
		start := w.pos
		switch w.s[w.pos] {
		case '{', '[':
			w.path = w.path[:0]
			w.value()
		case '"':
			w.member()
		}
		if w.pos == start {
			w.pos++
		}
	}
	return maskValues(w.masked(), w.event)
}

// member walks a key and its value outside any object, as a text may quote
// them ("identity": "x"), or else a string that quotes JSON; when neither
// is there (a stray quote: the JSON may follow it), pos stays.
func (w *maskWalk) member() {
	start := w.pos
	w.path = w.path[:0]
	if w.key() {
		w.value()
		w.path = w.path[:0]
		return
	}
	w.pos = start
	spans := len(w.spans)
	w.quotedJSON(start, w.str())
	if len(w.spans) == spans {
		w.pos = start
	}
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
		if w.inMask && ok {
			w.collectString(w.s[start:w.pos])
		} else if !w.inMask {
			w.quotedJSON(start, ok)
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
	name := unescape(w.s[start+1 : w.pos-1])
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

// collectString keeps a masked string as it reads, as the event wrote it
// when escaped, and escaped to ASCII, as a refusal may quote any of them.
func (w *maskWalk) collectString(quoted string) {
	raw := quoted[1 : len(quoted)-1]
	v := unescape(raw)
	w.values = append(w.values, v)
	for _, form := range []string{raw, asciiEscaped(v)} {
		if form != v && form != w.values[len(w.values)-1] {
			w.values = append(w.values, form)
		}
	}
}

// quotedJSON masks a string that quotes JSON, from start to pos (closed:
// with its closing quote), as an API may answer with the refused event
// serialised again into a string ({"detail":"{\"identity\":...}"}). The
// string's text, unquoted, is masked as a refusal's text is, by both rules
// (so twice serialised too), and, if anything in it was masked, written
// again as a JSON string in its place, cut short as it was. Written again,
// not masked whole: the rest of it (what the API found wrong) is what the
// operator opens the page for. A string with nothing masked keeps its text.
func (w *maskWalk) quotedJSON(start int, closed bool) {
	end := w.pos
	if closed {
		end--
	}
	raw := w.s[start+1 : end]
	if !strings.ContainsAny(raw, "{[") {
		return
	}
	text := unescape(raw)
	// The depth goes on from here, bounding the recursion; each string
	// quoted inside a string costs its quotes twice the escapes, so a text
	// of n bytes nests no more than log2(n) of them.
	inner := maskWalk{rules: w.rules, s: text, depth: w.depth, event: w.event}
	masked := inner.text()
	w.values = append(w.values, inner.values...)
	if masked == text {
		return
	}
	with := jsonQuote(masked)
	if !closed {
		with = with[:len(with)-1]
	}
	w.spans = append(w.spans, maskSpan{start, w.pos, with})
}

func (w *maskWalk) space() {
	for w.pos < len(w.s) && strings.IndexByte(" \t\r\n", w.s[w.pos]) >= 0 {
		w.pos++
	}
}

func (w *maskWalk) at(c byte) bool { return w.pos < len(w.s) && w.s[w.pos] == c }
