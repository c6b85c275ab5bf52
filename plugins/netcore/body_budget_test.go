package netcore

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestBodyBudgetRefusesPastItsLimitAndTakesBack(t *testing.T) {
	b := &bodyBudget{limit: 100}
	if !b.take(60) || b.take(41) {
		t.Fatal("the budget of 100 did not take 60 and then refuse 41")
	}
	b.give(60)
	if !b.take(100) {
		t.Fatal("what was given back could not be taken again")
	}
}

func TestBudgetedReaderStopsWhenTheBudgetIsSpent(t *testing.T) {
	b := &bodyBudget{limit: 3 * budgetStep}
	br := &budgetedReader{r: bytes.NewReader(make([]byte, 10*budgetStep)), budget: b}
	got, err := io.ReadAll(br)
	if !errors.Is(err, errBudgetSpent) {
		t.Fatalf("reading 10 steps within a budget of 3: err %v, want errBudgetSpent", err)
	}
	if len(got) > 3*budgetStep || br.held > b.limit {
		t.Fatalf("read %d bytes holding %d, past the budget of %d", len(got), br.held, b.limit)
	}
	b.give(br.held)
	if b.used != 0 {
		t.Fatalf("%d bytes still held after giving back", b.used)
	}
}
