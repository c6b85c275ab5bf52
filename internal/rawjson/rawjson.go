// Package rawjson walks JSON that is already known to be valid, handing out
// members and elements as the exact bytes that were sent.
//
// Netcore posts carry numbers that must reach Meiro Events untouched (big
// identifiers, prices with many decimals), so events are never decoded into
// Go values: the walk only finds where each value starts and ends. Callers
// validate the whole document once before walking it; the walk itself does
// not re-check syntax.
//
// rawjson.go holds the walk (Members, Elements, Field, AppendCompact);
// valid.go holds ValidateParts, the check to run first, which answers as
// encoding/json's Valid does, faster, and finds the top two levels of values
// on the way.
package rawjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Kind is the JSON type of a value.
type Kind int

// The kinds, as KindOf tells them from a value's first byte.
const (
	Nothing Kind = iota // no value at all (empty input)
	Object
	Array
	String
	Boolean
	Null
	Number
)

var kindNames = [...]string{Nothing: "nothing", Object: "object", Array: "array", String: "string", Boolean: "boolean", Null: "null", Number: "number"}

// String is the kind's name as an error message says it: "a JSON array".
func (k Kind) String() string { return kindNames[k] }

// KindOf tells the JSON type of a valid value by its first byte.
func KindOf(v []byte) Kind {
	if len(v) == 0 {
		return Nothing
	}
	switch v[0] {
	case '{':
		return Object
	case '[':
		return Array
	case '"':
		return String
	case 't', 'f':
		return Boolean
	case 'n':
		return Null
	default:
		return Number
	}
}

// ErrNotObject and ErrNotArray are returned when a walk starts on the wrong
// kind of value.
var (
	ErrNotObject = errors.New("not a JSON object")
	ErrNotArray  = errors.New("not a JSON array")
)

// Members calls fn for each member of the object v, in document order, with
// the member's key as it appears between the quotes (escapes left in place:
// see Key) and its raw value. Duplicate keys are all reported. A non-nil
// error from fn stops the walk and is returned.
func Members(v []byte, fn func(rawKey, value []byte) error) error {
	i := skipSpace(v, 0)
	if i >= len(v) || v[i] != '{' {
		return ErrNotObject
	}
	i = skipSpace(v, i+1)
	if i < len(v) && v[i] == '}' {
		return nil
	}
	for i < len(v) {
		keyEnd := skipString(v, i)
		rawKey := v[i+1 : keyEnd-1]
		i = skipSpace(v, keyEnd)
		i = skipSpace(v, i+1) // past ':'
		end := skipValue(v, i)
		if err := fn(rawKey, v[i:end]); err != nil {
			return err
		}
		i = skipSpace(v, end)
		if i >= len(v) || v[i] == '}' {
			return nil
		}
		i = skipSpace(v, i+1) // past ','
	}
	return nil
}

// Elements calls fn for each element of the array v, in order, with its
// index and raw value. A non-nil error from fn stops the walk and is returned.
func Elements(v []byte, fn func(index int, value []byte) error) error {
	i := skipSpace(v, 0)
	if i >= len(v) || v[i] != '[' {
		return ErrNotArray
	}
	i = skipSpace(v, i+1)
	if i < len(v) && v[i] == ']' {
		return nil
	}
	for n := 0; i < len(v); n++ {
		end := skipValue(v, i)
		if err := fn(n, v[i:end]); err != nil {
			return err
		}
		i = skipSpace(v, end)
		if i >= len(v) || v[i] == ']' {
			return nil
		}
		i = skipSpace(v, i+1)
	}
	return nil
}

// Key turns a raw key from Members into its string value, resolving escapes
// such as \u0041 only when there are any.
func Key(rawKey []byte) (string, error) {
	for _, c := range rawKey {
		if c == '\\' {
			var s string
			quoted := make([]byte, 0, len(rawKey)+2)
			quoted = append(append(append(quoted, '"'), rawKey...), '"')
			if err := json.Unmarshal(quoted, &s); err != nil {
				return "", fmt.Errorf("decoding key %q: %w", rawKey, err)
			}
			return s, nil
		}
	}
	return string(rawKey), nil
}

// Field returns the raw value of the first member of object v whose key is
// name, and whether there was one.
func Field(v []byte, name string) ([]byte, bool) {
	var found []byte
	err := Members(v, func(rawKey, value []byte) error {
		if k, err := Key(rawKey); err == nil && k == name {
			found = value
			return errStop
		}
		return nil
	})
	return found, err == errStop
}

// errStop ends a walk early once Field has what it looks for.
var errStop = errors.New("stop")

// AppendCompact appends v to dst without the white space outside strings,
// leaving every other byte (numbers, escapes) exactly as it was. Unlike
// json.Compact it does not check syntax again: v must already be valid.
func AppendCompact(dst, v []byte) []byte {
	start := 0 // start of the run of bytes not yet copied
	for i := 0; i < len(v); {
		switch v[i] {
		case '"':
			i = skipString(v, i)
		case ' ', '\t', '\n', '\r':
			dst = append(dst, v[start:i]...)
			i = skipSpace(v, i)
			start = i
		default:
			i++
		}
	}
	return append(dst, v[start:]...)
}

func skipSpace(v []byte, i int) int {
	for i < len(v) {
		switch v[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string that opens at v[i].
// Strings are most of a post's bytes: the next quote is found with
// bytes.IndexByte (vectorised), and it closes the string unless an odd
// number of backslashes stands right before it.
func skipString(v []byte, i int) int {
	for i++; i < len(v); {
		q := bytes.IndexByte(v[i:], '"')
		if q < 0 {
			return len(v)
		}
		q += i
		escapes := 0
		for k := q - 1; k >= i && v[k] == '\\'; k-- {
			escapes++
		}
		if escapes%2 == 0 {
			return q + 1
		}
		i = q + 1
	}
	return len(v)
}

// End returns the index just past the value that v starts with, or len(v)
// when it is cut short. It does not check the value, only matches brackets
// outside strings: for finding where a value ends before checking it.
func End(v []byte) int { return skipValue(v, 0) }

// skipValue returns the index just past the value that starts at v[i].
func skipValue(v []byte, i int) int {
	if i >= len(v) {
		return i
	}
	switch v[i] {
	case '"':
		return skipString(v, i)
	case '{', '[':
		depth := 0
		for i < len(v) {
			switch v[i] {
			case '"':
				i = skipString(v, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(v)
	default:
		for i < len(v) {
			switch v[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}
