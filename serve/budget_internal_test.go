package serve

import (
	"bytes"
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

// A body read into a buffer reused from the pool is charged like any
// other: the pool's spare capacity is not free room past the budget.
func TestReadCappedPooledBuffer(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 1<<20)
	_, release, err := readCapped(bytes.NewReader(big), 4<<20, -1, nil) // leaves a 1 MiB+ buffer in the pool
	if err != nil {
		t.Fatal(err)
	}
	release()
	budget := &bodyBudget{limit: 100 << 10}
	if _, rel, err := readCapped(bytes.NewReader(big), 4<<20, -1, budget); err == nil {
		rel()
		t.Fatal("a 1 MiB body read within a 100 KiB budget")
	}
	if used := budget.used.Load(); used != 0 {
		t.Errorf("%d bytes still charged after a refused read", used)
	}
	small := bytes.Repeat([]byte("y"), 10<<10)
	b, rel, err := readCapped(bytes.NewReader(small), 4<<20, -1, budget)
	if err != nil || !bytes.Equal(b, small) {
		t.Fatalf("10 KiB body: %v", err)
	}
	rel()
}
