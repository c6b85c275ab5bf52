package rawjson

import "encoding/binary"

// maxDepth is the deepest nesting of objects and arrays that ValidateParts
// accepts, encoding/json's own limit (maxNestingDepth in its scanner), so
// that the two agree on every input.
const maxDepth = 10000

// Part is a value of the top two levels of a document, as ValidateParts
// finds it: a member or element of the top-level value (depth 1), or of one
// of those (depth 2).
type Part struct {
	Depth int
	Key   []byte // an object member's key as Members gives it; nil in an array
	Value []byte
}

// ValidateParts reports whether data is exactly one JSON value, surrounded
// by white space at most: the answer of encoding/json's Valid for every input
// (the fuzz test FuzzValidAgreesWithEncodingJSON holds it to that), in one
// pass and several times faster. Validating is the largest part of reading a
// post, and encoding/json's scanner calls a function per byte; here the bytes
// inside strings, most of a post, are checked eight at a time. Like
// encoding/json it does not check that strings are UTF-8.
//
// In the same pass it says whether data is compact (no white space outside
// its strings, so that AppendCompact would copy each of its values
// unchanged; Netcore's posts are), and appends to parts the values of the top
// two levels, in order, each depth-2 part after the depth-1 part that holds
// it: a Netcore post's panels and their events, so that splitting the post
// does not read it again. What it appends is meaningful only if data is valid.
func ValidateParts(data []byte, parts []Part) (_ []Part, valid, compact bool) {
	valid, compact = validate(data, &parts)
	return parts, valid, compact
}

func validate(data []byte, parts *[]Part) (valid, compact bool) {
	var stackSpace [64]byte
	open := stackSpace[:0] // '{' or '[' for each object and array entered
	var spaced int         // non-zero once white space was skipped
	var key []byte         // the key of the member whose value starts next
	found := partList{parts: parts}
	i := skipSpace(data, 0)
	spaced |= i
	for {
		// A value starts at i.
		if i >= len(data) {
			return false, false
		}
		d := len(open)
		found.start(d, key, i)
		key = nil
		var ok bool
		if c := data[i]; c == '{' || c == '[' {
			if len(open) == maxDepth {
				return false, false
			}
			j := skipSpace(data, i+1)
			spaced |= j - (i + 1)
			if i = j; i >= len(data) || data[i] != closing(c) {
				open = append(open, c)
				if c == '{' {
					if key, i, ok = validKey(data, i, &spaced); !ok {
						return false, false
					}
				}
				continue // its first value
			}
			i++ // an empty object or array
		} else if i, ok = validScalar(data, i); !ok {
			return false, false
		}
		found.end(d, data, i)
		// After a value: close what ends here, then a comma or the end.
		for {
			j := skipSpace(data, i)
			spaced |= j - i
			if i = j; len(open) == 0 {
				return i == len(data), i == len(data) && spaced == 0
			}
			if i >= len(data) {
				return false, false
			}
			top, c := open[len(open)-1], data[i]
			if c == ',' {
				j := skipSpace(data, i+1)
				spaced |= j - (i + 1)
				if i = j; top == '{' {
					if key, i, ok = validKey(data, i, &spaced); !ok {
						return false, false
					}
				}
				break // the next value
			}
			if c != closing(top) {
				return false, false
			}
			open = open[:len(open)-1]
			i++
			found.end(len(open), data, i)
		}
	}
}

// partList appends the parts ValidateParts finds to *parts: only values at
// depths 1 and 2.
type partList struct {
	parts *[]Part
	at    [3]int // the index of the part under way at depths 1 and 2
	from  [3]int // where its value starts
}

// start begins the part of the value at data[i], at depth d.
func (l *partList) start(d int, key []byte, i int) {
	if d < 1 || d > 2 {
		return
	}
	l.at[d], l.from[d] = len(*l.parts), i
	*l.parts = append(*l.parts, Part{Depth: d, Key: key})
}

// end ends the part under way at depth d, its value ending at i.
func (l *partList) end(d int, data []byte, i int) {
	if d < 1 || d > 2 {
		return
	}
	(*l.parts)[l.at[d]].Value = data[l.from[d]:i]
}

// validScalar checks the string, number, true, false or null that starts at
// data[i] and returns the index just past it.
func validScalar(data []byte, i int) (int, bool) {
	switch data[i] {
	case '"':
		return validString(data, i)
	case 't':
		return validLiteral(data, i, "true")
	case 'f':
		return validLiteral(data, i, "false")
	case 'n':
		return validLiteral(data, i, "null")
	default:
		return validNumber(data, i)
	}
}

func closing(open byte) byte {
	if open == '{' {
		return '}'
	}
	return ']'
}

// validKey checks a member's key and its colon, and returns the key (as
// Members gives it: between its quotes, escapes as written) and where its
// value starts; white space skipped around
// the colon is added to spaced.
func validKey(data []byte, i int, spaced *int) (key []byte, valueAt int, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return nil, i, false
	}
	end, ok := validString(data, i)
	if !ok {
		return nil, end, false
	}
	key = data[i+1 : end-1]
	j := skipSpace(data, end)
	*spaced |= j - end
	if j >= len(data) || data[j] != ':' {
		return nil, j, false
	}
	k := skipSpace(data, j+1)
	*spaced |= k - (j + 1)
	return key, k, true
}

func validLiteral(data []byte, i int, word string) (int, bool) {
	return i + len(word), len(data)-i >= len(word) && string(data[i:i+len(word)]) == word
}

// Bytes with every lane set to one value, for the eight-at-a-time tests.
const (
	lanes01    = 0x0101010101010101
	lanes80    = 0x8080808080808080
	lanesQuote = '"' * lanes01
	lanesSlash = '\\' * lanes01
	lanesSpace = ' ' * lanes01 // control characters are the bytes below it
)

// plain reports whether none of the eight bytes in w ends or escapes a
// string or is a control character, which a JSON string may not hold raw.
// Each test is exact: (x - 0x01…) &^ x & 0x80… is non-zero if and only if
// some byte of x is zero (or, with 0x20…, below 0x20).
func plain(w uint64) bool {
	quote := w ^ lanesQuote
	slash := w ^ lanesSlash
	special := (quote - lanes01) &^ quote
	special |= (slash - lanes01) &^ slash
	special |= (w - lanesSpace) &^ w
	return special&lanes80 == 0
}

// validString checks the string that opens at data[i] and returns the index
// just past its closing quote.
func validString(data []byte, i int) (int, bool) {
	for i++; ; {
		for len(data)-i >= 8 && plain(binary.LittleEndian.Uint64(data[i:])) {
			i += 8
		}
		if i >= len(data) {
			return i, false
		}
		switch c := data[i]; {
		case c == '"':
			return i + 1, true
		case c == '\\':
			n, ok := validEscape(data, i)
			if !ok {
				return i, false
			}
			i += n
		case c < ' ':
			return i, false
		default:
			i++
		}
	}
}

// validEscape checks the escape that starts at data[i] (a backslash) and
// returns its length.
func validEscape(data []byte, i int) (int, bool) {
	if i+1 >= len(data) {
		return 0, false
	}
	switch data[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, true
	case 'u':
		if len(data)-i < 6 {
			return 0, false
		}
		for _, h := range data[i+2 : i+6] {
			if !isHex(h) {
				return 0, false
			}
		}
		return 6, true
	}
	return 0, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// validNumber checks the number that starts at data[i], JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, and returns the index
// just past it. What follows it is the caller's to check.
func validNumber(data []byte, i int) (int, bool) {
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && '1' <= data[i] && data[i] <= '9':
		i = skipDigits(data, i+1)
	default:
		return i, false
	}
	if i < len(data) && data[i] == '.' {
		end := skipDigits(data, i+1)
		if end == i+1 {
			return i, false
		}
		i = end
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		end := skipDigits(data, i)
		if end == i {
			return i, false
		}
		i = end
	}
	return i, true
}

func skipDigits(data []byte, i int) int {
	for i < len(data) && '0' <= data[i] && data[i] <= '9' {
		i++
	}
	return i
}
