package digest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestSHA256(t *testing.T) {
	data := bytes.Repeat([]byte("bitrun"), 400_000) // 2.4 MB: three reads
	want := sha256.Sum256(data)
	var calls int
	var last int64
	sum, n, err := SHA256(context.Background(), bytes.NewReader(data), int64(len(data)), func(done, total int64) {
		calls++
		if done <= last || total != int64(len(data)) {
			t.Errorf("progress(%d, %d) after %d", done, total, last)
		}
		last = done
	})
	if err != nil || sum != hex.EncodeToString(want[:]) || n != int64(len(data)) {
		t.Fatalf("SHA256 = %s, %d, %v; want %x, %d", sum, n, err, want, len(data))
	}
	if calls != 3 || last != n {
		t.Errorf("progress called %d times ending at %d; want 3 ending at %d", calls, last, n)
	}
	if sum, n, err := SHA256(context.Background(), bytes.NewReader(nil), 0, nil); err != nil || n != 0 || sum != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("empty input: %s, %d, %v", sum, n, err)
	}
	boom := errors.New("boom")
	if _, _, err := SHA256(context.Background(), iotest.ErrReader(boom), 0, nil); !errors.Is(err, boom) {
		t.Errorf("read error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &cancelAfter{r: bytes.NewReader(data), cancel: cancel}
	if _, n, err := SHA256(ctx, r, 0, nil); !errors.Is(err, context.Canceled) || n != 1<<20 {
		t.Errorf("cancelled after one read: n %d, err %v; want %d, context.Canceled", n, err, 1<<20)
	}
}

// cancelAfter cancels its context after the first read.
type cancelAfter struct {
	r      io.Reader
	cancel func()
}

func (c *cancelAfter) Read(b []byte) (int, error) {
	defer c.cancel()
	return c.r.Read(b)
}
