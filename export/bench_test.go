package export

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/bitrun/bitrun/model"
)

// benchExport measures Export of arch with random weights (fixed seed).
func benchExport(b *testing.B, arch string, opts Options) {
	cfg, err := model.Arch(arch, 1000)
	if err != nil {
		b.Fatal(err)
	}
	params := randomParams(cfg, 1)
	dir := b.TempDir()
	b.ReportAllocs()
	b.SetBytes(4 * params.Count())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Export(context.Background(), filepath.Join(dir, "m.onnx"), cfg, params, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExport(b *testing.B) {
	for _, c := range []struct {
		name, arch string
		opts       Options
	}{
		{"tiny", "tiny", Options{}},
		{"R50x1", "R50x1", Options{}},
		{"R50x1-external", "R50x1", Options{External: ExternalAlways}},
		{"R50x1-trainable", "R50x1", Options{Trainable: true}},
	} {
		b.Run(c.name, func(b *testing.B) { benchExport(b, c.arch, c.opts) })
	}
}
