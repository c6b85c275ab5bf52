package claim

import (
	"context"
	"sync"
	"testing"
)

// Whichever of Take and Abandon comes first wins, every time, and both
// sides agree on it: never stored and abandoned, never neither.
func TestTakeAndAbandonNeverBothWin(t *testing.T) {
	var took, gaveUp int
	for range 10_000 {
		_, c := New(context.Background())
		var wg sync.WaitGroup
		var tk, ab bool
		wg.Add(2)
		go func() { defer wg.Done(); tk = c.Take() }()
		go func() { defer wg.Done(); ab = c.Abandon() }()
		wg.Wait()
		if tk == ab {
			t.Fatalf("Take %v and Abandon %v: exactly one must win", tk, ab)
		}
		if tk {
			took++
		} else {
			gaveUp++
		}
		// Asking again gives the same answer.
		if c.Take() != tk || c.Abandon() != ab {
			t.Fatal("a second Take or Abandon changed the outcome")
		}
	}
	t.Logf("taken %d times, abandoned %d times", took, gaveUp)
}

func TestAMessageWithoutAClaimIsStored(t *testing.T) {
	if c := From(context.Background()); c != nil || !c.Take() {
		t.Errorf("no claim in the context: From gave %v, and Take must be true", c)
	}
	ctx, c := New(context.Background())
	if From(ctx) != c {
		t.Error("From does not return the claim New put in the context")
	}
}
