package rawjson

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// validCases are inputs where a validator is most likely to differ from
// encoding/json: every kind of value, each rule of the number grammar, the
// escapes, control characters, white space, and what may follow a value.
var validCases = []string{
	``, ` `, `{}`, `[]`, ` { } `, `[ ]`, `{"a":1}`, `{"a" : [1, 2.5, -3e+4, "x", true, false, null, {}]}`,
	`{"a":1,}`, `[1,]`, `[,1]`, `{,"a":1}`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{1:1}`, `{"a":1 "b":2}`,
	`[1 2]`, `[1,,2]`, `{"a":1}}`, `[[]`, `[]]`, `{]`, `[}`, `"a"`, `"a`, `a"`, `""`, `"\"`, `"\\"`,
	`"\/\b\f\n\r\t"`, `"\u00e9\uD83D\uDE00"`, `"\u00g0"`, `"\u00"`, `"\x"`, `"\'"`, "\"a\x01b\"", "\"a\x1fb\"",
	"\"a\x7fb\"", "\"\xff\xfe\"", "\"tab\there\"", `0`, `-0`, `01`, `-01`, `1.`, `.5`, `1.5`, `1e5`, `1E-5`,
	`1e`, `1e+`, `-`, `--1`, `+1`, `0x10`, `1.5.5`, `12345678901234567890123`, `1.0e+0010`, `Infinity`,
	`NaN`, `true`, `tru`, `truex`, `false`, `fals`, `null`, `nul`, `nullnull`, `True`, "\t\n\r 1 \r\n\t",
	"\v1", "1\x00", `[1]x`, `{} {}`, `1 2`, `"a" "b"`, `[true,false,null]`, `[truefalse]`,
	`{"a":{"b":{"c":[[["deep"]]]}}}`, `{"a":"b\\"}`, `{"a":"b\\\"c"}`, `["\\\\"]`, `["\\\\\"]`,
	`{"email_open":[{"channel":"email","msgid":"301","event_params":{"ts":240302090200}}]}`,
	`{"a":"1234567\"", "b":"12345678\\"}`, `"12345678901234567890"`, "\"1234567\x1f\"",
}

func TestValidAgreesWithEncodingJSON(t *testing.T) {
	compacts := 0
	for _, c := range validCases {
		if err := checkValidate([]byte(c)); err != nil {
			t.Error(err)
		}
		if _, _, compact := ValidateParts([]byte(c), nil); compact {
			compacts++
		}
	}
	if compacts == 0 || compacts == len(validCases) {
		t.Errorf("%d of %d cases are compact: the cases test only one answer", compacts, len(validCases))
	}
}

// checkValidate holds ValidateParts to encoding/json: valid as json.Valid,
// and compact exactly when json.Compact leaves data as it is; and its parts
// to a walk with Members and Elements.
func checkValidate(data []byte) error {
	parts, valid, compact := ValidateParts(data, nil)
	if valid {
		if got, want := describeParts(parts), describeParts(partsByWalking(data)); got != want {
			return fmt.Errorf("ValidateParts(%q) found\n%s\nwant\n%s", data, got, want)
		}
	}
	if want := json.Valid(data); valid != want {
		return fmt.Errorf("ValidateParts(%q) says valid %v, encoding/json says %v", data, valid, want)
	}
	var compacted bytes.Buffer
	want := valid && json.Compact(&compacted, data) == nil && bytes.Equal(compacted.Bytes(), data)
	if compact != want {
		return fmt.Errorf("ValidateParts(%q) says compact %v, json.Compact says %v", data, compact, want)
	}
	return nil
}

// Nesting is limited as encoding/json limits it (10,000 levels, empty
// objects and arrays counted), so that a post neither passes here and fails
// there nor the other way round.
func TestValidLimitsNestingAsEncodingJSON(t *testing.T) {
	for _, depth := range []int{maxDepth - 1, maxDepth, maxDepth + 1} {
		for _, inner := range []string{"", "1", "[]", "{}"} {
			doc := strings.Repeat("[", depth) + inner + strings.Repeat("]", depth)
			if _, got, _ := ValidateParts([]byte(doc), nil); got != json.Valid([]byte(doc)) {
				t.Errorf("%d arrays around %q: ValidateParts says %v, encoding/json the opposite", depth, inner, got)
			}
			obj := strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
			if _, got, _ := ValidateParts([]byte(obj), nil); got != json.Valid([]byte(obj)) {
				t.Errorf("%d objects: ValidateParts says %v, encoding/json the opposite", depth, got)
			}
		}
	}
}

// plain's bit tests stand for a byte-by-byte look at eight bytes; checked
// here against that look on words made mostly of the bytes that matter.
func TestPlainAgreesWithAByteByByteLook(t *testing.T) {
	interesting := []byte{'"', '\\', 0, 0x1f, ' ', '!', 0x21, 0x5b, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff, 'a', 0x01, 0x20}
	rng := rand.New(rand.NewPCG(1, 2))
	var word [8]byte
	for range 1_000_000 {
		want := true
		for k := range word {
			if rng.IntN(2) == 0 {
				word[k] = interesting[rng.IntN(len(interesting))]
			} else {
				word[k] = byte(rng.IntN(256))
			}
			if c := word[k]; c == '"' || c == '\\' || c < ' ' {
				want = false
			}
		}
		if got := plain(binary.LittleEndian.Uint64(word[:])); got != want {
			t.Fatalf("plain(% x) = %v, want %v", word, got, want)
		}
	}
}

func describeParts(parts []Part) string {
	var b strings.Builder
	for _, p := range parts {
		fmt.Fprintf(&b, "%d %q %q\n", p.Depth, p.Key, p.Value)
	}
	return b.String()
}

// partsByWalking finds the parts of a valid document as ValidateParts
// should: the members or elements of the top-level value, each followed by
// its own.
func partsByWalking(data []byte) []Part {
	var parts []Part
	var walk func(v []byte, depth int)
	add := func(depth int, key, v []byte) {
		parts = append(parts, Part{Depth: depth, Key: key, Value: v})
		if depth < 2 {
			walk(v, depth+1)
		}
	}
	walk = func(v []byte, depth int) {
		switch KindOf(v) {
		case Object:
			_ = Members(v, func(key, value []byte) error { add(depth, key, value); return nil })
		case Array:
			_ = Elements(v, func(_ int, value []byte) error { add(depth, nil, value); return nil })
		}
	}
	walk(bytes.TrimLeft(data, " \t\r\n"), 1)
	return parts
}

func FuzzValidAgreesWithEncodingJSON(f *testing.F) {
	for _, c := range validCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := checkValidate(data); err != nil {
			t.Fatal(err)
		}
	})
}
