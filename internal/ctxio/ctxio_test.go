package ctxio

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	r, w := Reader(ctx, strings.NewReader("abcdef")), Writer(ctx, &out)
	b := make([]byte, 3)
	if n, err := r.Read(b); n != 3 || err != nil {
		t.Fatalf("read before cancel: %d %v", n, err)
	}
	if n, err := w.Write(b); n != 3 || err != nil {
		t.Fatalf("write before cancel: %d %v", n, err)
	}
	cancel()
	if _, err := r.Read(b); !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel: %v, want context.Canceled", err)
	}
	if _, err := io.Copy(w, strings.NewReader("xyz")); !errors.Is(err, context.Canceled) || out.String() != "abc" {
		t.Fatalf("write after cancel: %v, wrote %q", err, out.String())
	}
}
