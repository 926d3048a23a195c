package openblas

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/internal/testenv"
)

// openOrSkip loads the library, failing when BITRUN_REQUIRE_OPENBLAS=1 and
// skipping (with the reason) otherwise when it is not installed.
func openOrSkip(t *testing.T) *Lib {
	t.Helper()
	return testenv.Open(t, "BITRUN_REQUIRE_OPENBLAS", "OpenBLAS", Open)
}

func TestOpen(t *testing.T) {
	l := openOrSkip(t)
	if _, err := os.Stat(l.Path()); err != nil {
		t.Errorf("Path() = %q is not a file: %v", l.Path(), err)
	}
	if cfg := l.Config(); cfg != "" && !strings.Contains(cfg, "OpenBLAS") {
		t.Errorf("Config() = %q, want an OpenBLAS build description", cfg)
	}
	t.Logf("loaded %s: %s", l.Path(), l.Config())
}

// TestSgemm multiplies small matrices with every transpose combination,
// leading dimensions wider than the matrices and beta 0/1/2, against a
// float64 loop (tolerance 1e-5 relative: k is at most 5).
func TestSgemm(t *testing.T) {
	l := openOrSkip(t)
	l.SetThreads(1)
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			for _, beta := range []float32{0, 1, 2} {
				m, n, k := 3, 4, 5
				ar, ac := m, k
				if ta {
					ar, ac = k, m
				}
				br, bc := k, n
				if tb {
					br, bc = n, k
				}
				lda, ldb, ldc := ac+2, bc+1, n+3
				a := make([]float32, ar*lda)
				b := make([]float32, br*ldb)
				c := make([]float32, m*ldc)
				for i := range a {
					a[i] = float32(i%7) - 3
				}
				for i := range b {
					b[i] = float32(i%5)*0.5 - 1
				}
				for i := range c {
					c[i] = float32(i%3) + 1
				}
				want := make([]float64, len(c))
				for i := range c {
					want[i] = float64(c[i])
				}
				for i := 0; i < m; i++ {
					for j := 0; j < n; j++ {
						var s float64
						for p := 0; p < k; p++ {
							ai, bi := i*lda+p, p*ldb+j
							if ta {
								ai = p*lda + i
							}
							if tb {
								bi = j*ldb + p
							}
							av, bv := a[ai], b[bi]
							s += float64(av) * float64(bv)
						}
						want[i*ldc+j] = s + float64(beta)*float64(c[i*ldc+j])
					}
				}
				l.Sgemm(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc)
				for i, v := range c {
					if d := math.Abs(float64(v) - want[i]); d > 1e-5*(1+math.Abs(want[i])) {
						t.Fatalf("transA=%v transB=%v beta=%v: c[%d] = %g, want %g", ta, tb, beta, i, v, want[i])
					}
				}
			}
		}
	}
}

func TestThreads(t *testing.T) {
	l := openOrSkip(t)
	if !l.SetThreads(1) {
		t.Skip("library has no openblas_set_num_threads")
	}
	if got := l.Threads(); got != 1 {
		t.Fatalf("Threads() = %d after SetThreads(1)", got)
	}
	if l.SetThreads(0) {
		t.Fatal("SetThreads(0) accepted")
	}
}

func TestClose(t *testing.T) {
	l := openOrSkip(t)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if l.SetThreads(1) || l.Threads() != 0 || l.Config() != "" {
		t.Fatal("closed library still answers")
	}
	defer func() {
		if r := fmt.Sprint(recover()); !strings.Contains(r, "closed") {
			t.Fatalf("Sgemm after Close: panic %q, want one about the closed library", r)
		}
	}()
	l.Sgemm(false, false, 1, 1, 1, []float32{1}, 1, []float32{1}, 1, 0, []float32{0}, 1)
}

func TestOpenErrors(t *testing.T) {
	if !cgoEnabled {
		t.Skip("without cgo every open fails; see TestNoCgo")
	}
	_, err := OpenPath("/nonexistent/libopenblas.so.0")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "/nonexistent/libopenblas.so.0") {
		t.Errorf("missing file: %v", err)
	}
	// A real library without cblas_sgemm must be refused (and unloaded).
	_, err = OpenPath("libm.so.6")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "cblas_sgemm") {
		t.Errorf("library without cblas_sgemm: %v", err)
	}
	if _, err := OpenPath(""); !errors.Is(err, ErrUnavailable) {
		t.Errorf("empty path: %v", err)
	}
	// An explicit $BITRUN_OPENBLAS_LIB is the only candidate: a wrong one is
	// an error, not a silent fallback to the system library.
	t.Setenv(EnvLib, "/nonexistent/custom-openblas.so")
	if c := Candidates(); len(c) != 1 || c[0] != "/nonexistent/custom-openblas.so" {
		t.Errorf("Candidates() = %v", c)
	}
	_, err = Open()
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "custom-openblas.so") || !strings.Contains(err.Error(), EnvLib) {
		t.Errorf("Open with a bad %s: %v", EnvLib, err)
	}
}

func TestCheckSgemm(t *testing.T) {
	cases := []struct {
		name                               string
		ta, tb                             bool
		m, n, k, la, lda, lb, ldb, lc, ldc int
		want                               string
	}{
		{"ok", false, false, 2, 3, 4, 8, 4, 12, 3, 6, 3, ""},
		{"ok transposed", true, true, 2, 3, 4, 8, 2, 12, 4, 6, 3, ""},
		{"ok padded rows", false, false, 2, 3, 4, 9, 5, 12, 3, 6, 3, ""},
		{"short a", false, false, 2, 3, 4, 7, 4, 12, 3, 6, 3, "a has 7 elements"},
		{"lda too small", false, false, 2, 3, 4, 8, 3, 12, 3, 6, 3, "lda=3"},
		{"transposed lda", true, false, 2, 3, 4, 8, 1, 12, 3, 6, 3, "lda=1"},
		{"short c", false, false, 2, 3, 4, 8, 4, 12, 3, 5, 3, "c has 5 elements"},
		{"negative", false, false, 2, -3, 4, 8, 4, 12, 3, 6, 3, "negative"},
		{"empty is fine", false, false, 0, 0, 0, 0, 1, 0, 1, 0, 1, ""},
		{"too big", false, false, 1 << 31, 1, 1, 1 << 31, 1, 1, 1, 1 << 31, 1, "32-bit"},
	}
	for _, tc := range cases {
		err := CheckSgemm(tc.ta, tc.tb, tc.m, tc.n, tc.k, tc.la, tc.lda, tc.lb, tc.ldb, tc.lc, tc.ldc)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "openblas: ") {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
