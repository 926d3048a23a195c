package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime/multipart"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/bitrun/bitrun/internal/testwait"
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

// A raw image body is decoded where readBody put it: no second copy, so
// nothing more is charged to the body budget (its bytes were charged once,
// by readBody); a multipart part is copied out and charged.
func TestDecodeUploadRawNoCopy(t *testing.T) {
	body := bytes.Repeat([]byte("z"), 64<<10)
	empty := &bodyBudget{limit: 0}
	lim := uploadLimits{maxBody: 1 << 20, maxPixels: 1 << 20, maxImages: 4, budget: empty}
	ups, err := decodeUpload("image/png", body, lim, func(b []byte) (bool, error) {
		return len(b) == len(body) && &b[0] == &body[0], nil
	})
	if err != nil || len(ups) != 1 || !ups[0].val {
		t.Fatalf("raw body: %v %v; want the body's own bytes decoded with nothing charged", ups, err)
	}
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	w, _ := mw.CreateFormFile("file", "a.png")
	w.Write(body)
	mw.Close()
	if _, err := decodeUpload(mw.FormDataContentType(), mp.Bytes(), lim, func(b []byte) (bool, error) { return true, nil }); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("multipart part with an empty budget: %v, want ErrQueueFull (the part copy is charged)", err)
	}
	lim.maxBody = 1 << 10
	if _, err := decodeUpload("", body, lim, func(b []byte) (bool, error) { return true, nil }); !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("raw body over maxBody: %v, want ErrBodyTooLarge", err)
	}
}

// With the body budget full, gRPC health calls are admitted through
// grpcProbeSlots slots of their own and no more; other calls are refused;
// a call's slot (or reservation) comes back when its stream ends.
func TestGRPCProbeSlots(t *testing.T) {
	s, err := NewServer(Config{MaxBody: 1 << 20, MaxBodyMemory: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	code := func(err error) codes.Code { return status.Code(err) }
	receive := func(method string) (context.CancelFunc, error) {
		ctx, end := context.WithCancel(context.Background()) // the stream's context
		_, err := s.grpcReceive(ctx, &tap.Info{FullMethodName: "/inference.GRPCInferenceService/" + method})
		return end, err
	}
	var ends []context.CancelFunc
	for range 2 { // fill the budget
		end, err := receive("ModelInfer")
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, end)
	}
	if _, err := receive("ServerMetadata"); code(err) != codes.ResourceExhausted {
		t.Fatalf("a call with the budget full: %v", err)
	}
	for i := range grpcProbeSlots {
		end, err := receive([]string{"ServerLive", "ServerReady"}[i%2])
		if err != nil {
			t.Fatalf("health call %d with the budget full: %v", i, err)
		}
		ends = append(ends, end)
	}
	if _, err := receive("ServerLive"); code(err) != codes.ResourceExhausted {
		t.Fatalf("a health call past its %d slots: %v", grpcProbeSlots, err)
	}
	ends[len(ends)-1]() // a health call ends: its slot comes back
	testwait.Until(t, 5*time.Second, time.Millisecond, func() error {
		end, err := receive("ServerReady")
		if err == nil {
			ends[len(ends)-1] = end
		}
		return err
	})
	for _, end := range ends {
		end()
	}
	testwait.Until(t, 5*time.Second, time.Millisecond, func() error {
		if used := s.bodies.used.Load(); used != 0 || len(s.probes) != 0 {
			return fmt.Errorf("%d bytes and %d probe slots still held after every stream ended", used, len(s.probes))
		}
		return nil
	})
}
