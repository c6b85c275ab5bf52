package stage

import (
	"errors"
	"fmt"
	"testing"
)

// TestRefusedForGoodReadsTheStatusNotTheText: a refusal is decided by the
// status an answer carried, through any wrapping, and never by what an
// error's text quotes.
func TestRefusedForGoodReadsTheStatusNotTheText(t *testing.T) {
	quoting := errors.New(`upstream: HTTP request returned unexpected response code (400): Bad Request`)
	for _, tt := range []struct {
		name    string
		err     error
		status  int
		refused bool
	}{
		{"a 422", &StatusError{Status: 422, Err: quoting}, 422, true},
		{"a 400, wrapped", fmt.Errorf("stopped: %w", &StatusError{Status: 400, Err: quoting}), 400, true},
		{"a 503 quoting a 400", &StatusError{Status: 503, Err: quoting}, 503, false},
		{"text quoting a 400, no answer", quoting, 0, false},
		{"a timeout", &TimeoutError{Err: errors.New(TimedOut)}, 0, false},
		{"nil", nil, 0, false},
	} {
		if got := StatusOf(tt.err); got != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, got, tt.status)
		}
		if got := RefusedForGood(tt.err); got != tt.refused {
			t.Errorf("%s: refused for good %v, want %v", tt.name, got, tt.refused)
		}
	}
}

// TestIsTimeoutReadsTheType: a timeout is told by its type, through any
// wrapping, not by its words.
func TestIsTimeoutReadsTheType(t *testing.T) {
	if !IsTimeout(fmt.Errorf("x: %w", &TimeoutError{Err: errors.New("late")})) {
		t.Error("a wrapped TimeoutError is not a timeout")
	}
	if IsTimeout(errors.New(TimedOut)) || IsTimeout(nil) {
		t.Error("an error that only says the words is a timeout")
	}
}
