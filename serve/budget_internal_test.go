package serve

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A waitBudget taker waits for bytes given back, and gives up when its
// context ends; what it takes is bounded by the limit at any time.
func TestWaitBudget(t *testing.T) {
	b := newWaitBudget(100)
	ctx := context.Background()
	if err := b.take(ctx, 60); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- b.take(ctx, 60) }()
	select {
	case err := <-got:
		t.Fatalf("took 60 of the 40 bytes left: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	b.give(60)
	if err := <-got; err != nil {
		t.Fatalf("after the give: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := b.take(short, 50); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("taking past the limit until the deadline: %v", err)
	}
	if err := b.take(ctx, 40); err != nil { // 100 - 60 held
		t.Fatalf("what is left: %v", err)
	}
}
