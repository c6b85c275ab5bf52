package postgres

import "testing"

func TestHasEscapedNUL(t *testing.T) {
	for doc, want := range map[string]bool{
		`{"a":"x\u0000y"}`:  true,
		`{"a":"\\u0000"}`:   false, // the text \u0000, not a NUL
		`{"a":"\\\u0000"}`:  true,  // a backslash, then a NUL
		`{"a":"\u00001"}`:   true,
		`{"a":"\u0001"}`:    false,
		`{"u0000":1}`:       false,
		`{"a":"x\"\u0000"}`: true,
	} {
		if got := hasEscapedNUL([]byte(doc)); got != want {
			t.Errorf("hasEscapedNUL(%s) = %v, want %v", doc, got, want)
		}
	}
}
