package zoo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

var benchSizes = []int{1 << 20, 64 << 20}

// benchBySize runs fn as a sub-benchmark per size with a fixed-seed payload.
func benchBySize(b *testing.B, fn func(b *testing.B, data []byte)) {
	for _, n := range benchSizes {
		data := make([]byte, n)
		r := rand.New(rand.NewPCG(1, 2))
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		b.Run(fmt.Sprintf("%dMiB", n>>20), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			fn(b, data)
		})
	}
}

// BenchmarkHashFile is the cost of verifying a cached file on every Pull.
func BenchmarkHashFile(b *testing.B) {
	benchBySize(b, func(b *testing.B, data []byte) {
		p := filepath.Join(b.TempDir(), "f")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, _, err := hashFile(context.Background(), p, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDownload is the downloader's throughput from a local server into
// a .part file (no checkpoint check).
func BenchmarkDownload(b *testing.B) {
	benchBySize(b, func(b *testing.B, data []byte) {
		s := newServer(b, map[string][]byte{"f.npz": data})
		dir := b.TempDir()
		o := s.opts(b, dir)
		p := &puller{o: o.withDefaults(), c: cache{dir: dir}, e: testEntry()}
		j := job{name: "bench", file: "f.npz", url: s.base() + "f.npz", maxSize: int64(len(data))}
		for b.Loop() {
			_ = os.Remove(p.c.part(j.file))
			_ = os.Remove(p.c.meta(j.file))
			if _, err := p.download(context.Background(), j); err != nil {
				b.Fatal(err)
			}
		}
	})
}
