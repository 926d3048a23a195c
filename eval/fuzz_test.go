package eval

import (
	"errors"
	"testing"
)

// FuzzResolvePreprocess feeds arbitrary model metadata (an untrusted model's
// metadata_props) through preprocessing resolution: it must never panic, and
// whatever it accepts must be within the documented limits.
func FuzzResolvePreprocess(f *testing.F) {
	f.Add("128", "0.5,0.5,0.5", "0.5,0.5,0.5", `["a","b"]`, int64(-1), int64(-1))
	f.Add("32", "[0.485, 0.456, 0.406]", "[0.229,0.224,0.225]", "cat\ndog\n", int64(3), int64(224))
	f.Add("-5", "nan,1,2", "0,0,0", `["a",`, int64(1), int64(0))
	f.Add("99999999999999999999", "1e40", "-1", "", int64(7), int64(-3))
	f.Fuzz(func(t *testing.T, res, mean, std, labels string, ch, size int64) {
		md := map[string]string{MetaResolution: res, MetaMean: mean, MetaStd: std, MetaLabels: labels}
		p, err := ResolvePreprocess([]int64{-1, ch, size, size}, md, Overrides{})
		if err != nil {
			if !errors.Is(err, ErrPreprocess) {
				t.Fatalf("error does not wrap ErrPreprocess: %v", err)
			}
		} else {
			if p.Channels != 1 && p.Channels != 3 {
				t.Fatalf("accepted %d channels", p.Channels)
			}
			if p.Size < 1 || p.Size > 8192 {
				t.Fatalf("accepted size %d", p.Size)
			}
			for _, s := range p.Norm.Std {
				if !(s > 0) {
					t.Fatalf("accepted std %v", p.Norm.Std)
				}
			}
		}
		_, _ = ParseLabels(labels)
		_, _ = ParseFloats(mean)
	})
}
