package rawjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"testing"
)

// bigNumbers must come out of every walk byte for byte as they went in.
const bigNumbers = `12345678901234567890123,1.000000000000000000001,-0.0e+10`

func TestMembers(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want [][2]string // raw key, raw value
		err  error
	}{
		{name: "empty object", in: `{}`},
		{name: "empty object with whitespace", in: " \r\n{ \t\n}\n "},
		{name: "simple", in: `{"a":1,"b":"x"}`, want: [][2]string{{"a", "1"}, {"b", `"x"`}}},
		{
			name: "whitespace everywhere",
			in:   "\n { \"a\" \t:\r\n 1 ,\n\"b\" : [ 1 , 2 ] ,\"c\":\t{ } } \n",
			want: [][2]string{{"a", "1"}, {"b", "[ 1 , 2 ]"}, {"c", "{ }"}},
		},
		{
			name: "strings holding braces, brackets, commas and colons",
			in:   `{"a":"}{][,:","b":2}`,
			want: [][2]string{{"a", `"}{][,:"`}, {"b", "2"}},
		},
		{
			name: "escaped quotes and backslashes",
			in:   `{"a":"x\"}\\","b":"\\","c":"\\\"]"}`,
			want: [][2]string{{"a", `"x\"}\\"`}, {"b", `"\\"`}, {"c", `"\\\"]"`}},
		},
		{
			name: "nested objects and arrays",
			in:   `{"o":{"p":[{"q":"]"},[[]]],"r":{}},"s":null,"t":[{"u":"}"}]}`,
			want: [][2]string{{"o", `{"p":[{"q":"]"},[[]]],"r":{}}`}, {"s", "null"}, {"t", `[{"u":"}"}]`}},
		},
		{
			name: "duplicate keys reported in order",
			in:   `{"a":1,"b":true,"a":2,"a":false}`,
			want: [][2]string{{"a", "1"}, {"b", "true"}, {"a", "2"}, {"a", "false"}},
		},
		{
			name: "escaped keys left raw",
			in:   `{"\u0070anel":[],"a\"b":0,"c\\":1}`,
			want: [][2]string{{`\u0070anel`, "[]"}, {`a\"b`, "0"}, {`c\\`, "1"}},
		},
		{
			name: "numbers kept byte-exact",
			in:   `{"big":12345678901234567890123,"dec":1.000000000000000000001,"neg":-0.0e+10,"e":1E-7}`,
			want: [][2]string{{"big", "12345678901234567890123"}, {"dec", "1.000000000000000000001"}, {"neg", "-0.0e+10"}, {"e", "1E-7"}},
		},
		{name: "array", in: `[{"a":1}]`, err: ErrNotObject},
		{name: "string holding an object", in: `"{}"`, err: ErrNotObject},
		{name: "empty input", in: ``, err: ErrNotObject},
		{name: "only whitespace", in: " \n", err: ErrNotObject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got [][2]string
			err := Members([]byte(tt.in), func(k, v []byte) error {
				got = append(got, [2]string{string(k), string(v)})
				return nil
			})
			if !errors.Is(err, tt.err) {
				t.Fatalf("Members(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Members(%q) = %q, want %q", tt.in, got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("Members(%q) member %d = %q, want %q", tt.in, i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestElements(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
		err  error
	}{
		{name: "empty array", in: `[]`},
		{name: "empty array with whitespace", in: "\t[ \n ]\r\n"},
		{name: "every kind", in: `[1,"a",null,true,false,{},[]]`, want: []string{"1", `"a"`, "null", "true", "false", "{}", "[]"}},
		{
			name: "whitespace everywhere",
			in:   "\n[ 1 ,\n\t{ \"a\" : [ ] } ,\"x\" \r\n, -2 ]\n",
			want: []string{"1", `{ "a" : [ ] }`, `"x"`, "-2"},
		},
		{
			name: "strings holding brackets, escaped quotes and backslashes",
			in:   `["]", "[\"]\\", {"k":"}"}, "\\", "a,b"]`,
			want: []string{`"]"`, `"[\"]\\"`, `{"k":"}"}`, `"\\"`, `"a,b"`},
		},
		{name: "nested arrays", in: `[[[1],[2]],[3],[[]]]`, want: []string{"[[1],[2]]", "[3]", "[[]]"}},
		{name: "numbers kept byte-exact", in: "[" + bigNumbers + "]", want: []string{"12345678901234567890123", "1.000000000000000000001", "-0.0e+10"}},
		{name: "object", in: `{"a":[1]}`, err: ErrNotArray},
		{name: "string holding an array", in: `"[1]"`, err: ErrNotArray},
		{name: "empty input", in: ``, err: ErrNotArray},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := Elements([]byte(tt.in), func(i int, v []byte) error {
				if i != len(got) {
					t.Errorf("element %q has index %d, want %d", v, i, len(got))
				}
				got = append(got, string(v))
				return nil
			})
			if !errors.Is(err, tt.err) {
				t.Fatalf("Elements(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Elements(%q) = %q, want %q", tt.in, got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("Elements(%q) element %d = %q, want %q", tt.in, i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestMembersAndElementsStopEarly(t *testing.T) {
	stop := errors.New("enough")
	calls := 0
	err := Members([]byte(`{"a":1,"b":2,"c":3}`), func(k, _ []byte) error {
		calls++
		if string(k) == "b" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 2 {
		t.Errorf("Members: error %v after %d calls, want %v after 2", err, calls, stop)
	}

	calls = 0
	err = Elements([]byte(`[1,2,3]`), func(i int, _ []byte) error {
		calls++
		if i == 0 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Elements: error %v after %d calls, want %v after 1", err, calls, stop)
	}
}

func TestKey(t *testing.T) {
	tests := []struct {
		raw, want string
		wantErr   bool
	}{
		{raw: `panel`, want: "panel"},
		{raw: ``, want: ""},
		{raw: `café`, want: "café"},
		{raw: `\u0070anel`, want: "panel"},
		{raw: `a\"b`, want: `a"b`},
		{raw: `back\\slash`, want: `back\slash`},
		{raw: `tab\there\n`, want: "tab\there\n"},
		{raw: `\/`, want: "/"},
		{raw: `\ud83d\ude00`, want: "😀"},
		{raw: `bad\x`, wantErr: true},
		{raw: `short\u00`, wantErr: true},
	}
	for _, tt := range tests {
		got, err := Key([]byte(tt.raw))
		if (err != nil) != tt.wantErr {
			t.Errorf("Key(%q) error = %v, want error %v", tt.raw, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("Key(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func TestField(t *testing.T) {
	tests := []struct {
		name, in, field string
		want            string
		ok              bool
	}{
		{name: "present", in: `{"a":1,"b":"two"}`, field: "b", want: `"two"`, ok: true},
		{name: "absent", in: `{"a":1}`, field: "b"},
		{name: "empty object", in: `{}`, field: "a"},
		{name: "first of duplicates", in: `{"a":1,"a":2}`, field: "a", want: "1", ok: true},
		{name: "escaped key", in: `{"\u0070anel":[1]}`, field: "panel", want: "[1]", ok: true},
		{name: "key with escaped quote", in: `{"a\"b":true}`, field: `a"b`, want: "true", ok: true},
		{name: "nested keys not searched", in: `{"o":{"x":1}}`, field: "x"},
		{name: "key lookalike inside a string", in: `{"s":"\"x\":1","x":2}`, field: "x", want: "2", ok: true},
		{name: "whitespace kept in value", in: `{ "x" : { "y" : [ ] } }`, field: "x", want: `{ "y" : [ ] }`, ok: true},
		{name: "null value is present", in: `{"x":null}`, field: "x", want: "null", ok: true},
		{name: "big number byte-exact", in: `{"id":12345678901234567890123}`, field: "id", want: "12345678901234567890123", ok: true},
		{name: "not an object", in: `[{"x":1}]`, field: "x"},
	}
	for _, tt := range tests {
		got, ok := Field([]byte(tt.in), tt.field)
		if ok != tt.ok || string(got) != tt.want {
			t.Errorf("%s: Field(%q, %q) = %q, %v; want %q, %v", tt.name, tt.in, tt.field, got, ok, tt.want, tt.ok)
		}
	}
}

func TestKind(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, "nothing"},
		{`{}`, "object"},
		{`{"a":1}`, "object"},
		{`[]`, "array"},
		{`"x"`, "string"},
		{`true`, "boolean"},
		{`false`, "boolean"},
		{`null`, "null"},
		{`0`, "number"},
		{`-1.5e3`, "number"},
		{`12345678901234567890123`, "number"},
	}
	for _, tt := range tests {
		if got := KindOf([]byte(tt.in)).String(); got != tt.want {
			t.Errorf("KindOf(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAppendCompact(t *testing.T) {
	tests := map[string]string{
		"{}": "{}",
		" { \"a\" : 1 ,\n\t\"b\" : [ 1 , 2 ] }\r\n":      `{"a":1,"b":[1,2]}`,
		`{"s":"  spaces  \" and \\ \n kept "}`:           `{"s":"  spaces  \" and \\ \n kept "}`,
		`{"n": 12345678901234567890123 , "d": -0.0e+10}`: `{"n":12345678901234567890123,"d":-0.0e+10}`,
		`["a b", "c\\"]`: `["a b","c\\"]`,
	}
	for in, want := range tests {
		if got := string(AppendCompact([]byte("prefix:"), []byte(in))); got != "prefix:"+want {
			t.Errorf("AppendCompact(%q) = %q, want %q", in, got, "prefix:"+want)
		}
		var compacted bytes.Buffer
		if err := json.Compact(&compacted, []byte(in)); err == nil && compacted.String() != want {
			t.Errorf("test is wrong: json.Compact(%q) = %q", in, compacted.String())
		}
	}
}

// skipString finds the closing quote by searching for quotes and counting
// the backslashes before each; it must agree with reading byte by byte.
func TestSkipStringAgreesWithAByteByByteReading(t *testing.T) {
	byByte := func(v []byte, i int) int {
		for i++; i < len(v); i++ {
			switch v[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
		return len(v)
	}
	alphabet := []byte(`ab"\\ `)
	r := rand.New(rand.NewPCG(3, 4))
	for range 200000 {
		v := make([]byte, 1+r.IntN(12))
		v[0] = '"'
		for i := 1; i < len(v); i++ {
			v[i] = alphabet[r.IntN(len(alphabet))]
		}
		if got, want := skipString(v, 0), byByte(v, 0); got != want {
			t.Fatalf("skipString(%q) = %d, want %d", v, got, want)
		}
	}
}

func TestEnd(t *testing.T) {
	for v, want := range map[string]int{
		`{"a":"}]"} x`:    10,
		`[1,{"b":[2]}],3`: 13,
		`{"a":"\"}"}&b`:   11,
		`{"a":[1}`:        8, // cut short: all of it
		`{"a":"x`:         7,
	} {
		if got := End([]byte(v)); got != want {
			t.Errorf("End(%q) = %d, want %d", v, got, want)
		}
	}
}
