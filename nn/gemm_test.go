package nn

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// forEachBackend runs f as a subtest with every available backend installed
// as the package backend, restoring the previous one afterwards.
func forEachBackend(t *testing.T, f func(t *testing.T, g GEMM)) {
	t.Helper()
	prev := Backend()
	defer SetBackend(prev)
	for _, g := range Backends() {
		t.Run(backendKey(g), func(t *testing.T) {
			SetBackend(g)
			f(t, g)
		})
	}
}

func backendKey(g GEMM) string { return strings.Fields(g.Name())[0] }

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// refSgemm is the float64 reference; it also returns, per element of C, the
// sum of |a|·|b| + |beta·c| that bounds the rounding error.
func refSgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) (want, mag []float64) {
	want = make([]float64, m*n)
	mag = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, g float64
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
				g += math.Abs(float64(av) * float64(bv))
			}
			if beta != 0 {
				s += float64(beta) * float64(c[i*ldc+j])
				g += math.Abs(float64(beta) * float64(c[i*ldc+j]))
			}
			want[i*n+j], mag[i*n+j] = s, g
		}
	}
	return want, mag
}

// storeMatrix writes the rows×cols row-major matrix src into dst with
// leading dimension ld, transposed when trans, so that op(dst) is src.
func storeMatrix(dst []float32, ld int, src []float32, rows, cols int, trans bool) {
	for i := range rows {
		for j := range cols {
			if trans {
				dst[j*ld+i] = src[i*cols+j]
			} else {
				dst[i*ld+j] = src[i*cols+j]
			}
		}
	}
}

// TestSgemm checks every backend against the float64 reference for all
// transpose combinations, odd sizes, leading dimensions wider than the
// matrices, beta in {0, 1, -0.5}, and sizes that cross the packing blocks
// and the parallel split. Tolerance: |got-want| <= (k+2)·1.2e-7·Σ|a·b|+|β·c|
// (the classic float32 summation bound) + 1e-30.
func TestSgemm(t *testing.T) {
	sizes := [][3]int{
		{1, 1, 1}, {1, 17, 3}, {5, 1, 7}, {6, 16, 8}, {7, 13, 5}, {12, 32, 1},
		{37, 53, 129}, {64, 80, 257}, {131, 45, 300}, {3, 3110, 9}, {700, 9, 40},
		{130, 200, 64}, {64, 3136 / 4, 576 / 4},
	}
	if testing.Short() {
		sizes = sizes[:len(sizes)-2]
	}
	// The float64 reference is the slow part: compute it once per case and
	// check every backend against it.
	type sgemmCase struct {
		name          string
		m, n, k       int
		ta, tb        bool
		beta          float32
		a, b, c       []float32
		lda, ldb, ldc int
		want, mag     []float64
	}
	var cases []sgemmCase
	r := rand.New(rand.NewPCG(1, 2))
	for _, sz := range sizes {
		m, n, k := sz[0], sz[1], sz[2]
		// One logical op(A), op(B), C per size; each transpose variant
		// stores the same matrices differently, so the product is shared.
		opA, opB := randSlice(r, m*k), randSlice(r, k*n)
		c0 := randSlice(r, m*n)
		ab, abMag := refSgemm(false, false, m, n, k, opA, k, opB, n, 0, nil, n)
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			betas := []float32{0, 1, -0.5}
			if m*n*k > 50000 {
				betas = []float32{0, -0.5} // beta = 1 takes the same path as -0.5 once C is scaled
			}
			for _, beta := range betas {
				cs := sgemmCase{m: m, n: n, k: k, ta: tr[0], tb: tr[1], beta: beta}
				ar, ac := m, k
				if cs.ta {
					ar, ac = k, m
				}
				br, bc := k, n
				if cs.tb {
					br, bc = n, k
				}
				cs.lda, cs.ldb, cs.ldc = ac+3, bc+1, n+5
				cs.a = randSlice(r, (ar-1)*cs.lda+ac) // padding stays random
				cs.b = randSlice(r, (br-1)*cs.ldb+bc)
				cs.c = randSlice(r, (m-1)*cs.ldc+n+2)
				storeMatrix(cs.a, cs.lda, opA, m, k, cs.ta)
				storeMatrix(cs.b, cs.ldb, opB, k, n, cs.tb)
				cs.want, cs.mag = make([]float64, m*n), make([]float64, m*n)
				for i := 0; i < m; i++ {
					for j := 0; j < n; j++ {
						cv := c0[i*n+j]
						if beta == 0 {
							cv = float32(math.NaN()) // beta = 0 must not read C
						}
						cs.c[i*cs.ldc+j] = cv
						cs.want[i*n+j], cs.mag[i*n+j] = ab[i*n+j], abMag[i*n+j]
						if beta != 0 {
							cs.want[i*n+j] += float64(beta) * float64(cv)
							cs.mag[i*n+j] += math.Abs(float64(beta) * float64(cv))
						}
					}
				}
				cs.name = fmt.Sprintf("m=%d n=%d k=%d transA=%v transB=%v beta=%v", m, n, k, cs.ta, cs.tb, beta)
				cases = append(cases, cs)
			}
		}
	}
	forEachBackend(t, func(t *testing.T, g GEMM) {
		for _, cs := range cases {
			m, n, k, c, ldc := cs.m, cs.n, cs.k, cs.c, cs.ldc
			got := append([]float32(nil), c...)
			g.Sgemm(cs.ta, cs.tb, m, n, k, cs.a, cs.lda, cs.b, cs.ldb, cs.beta, got, ldc)
			bad := 0
			for i := 0; i < m; i++ {
				for j := 0; j < ldc && i*ldc+j < len(c); j++ {
					gv := got[i*ldc+j]
					if j >= n { // padding between rows must be untouched
						if !(gv == c[i*ldc+j] || (math.IsNaN(float64(gv)) && math.IsNaN(float64(c[i*ldc+j])))) {
							t.Fatalf("%s: wrote C[%d,%d] outside the matrix", cs.name, i, j)
						}
						continue
					}
					w := cs.want[i*n+j]
					tol := float64(k+2)*1.2e-7*cs.mag[i*n+j] + 1e-30
					if d := math.Abs(float64(gv) - w); !(d <= tol) {
						if bad++; bad <= 3 {
							t.Errorf("%s: C[%d,%d] = %g, want %g (diff %g > tol %g)", cs.name, i, j, gv, w, d, tol)
						}
					}
				}
			}
			if bad > 0 {
				t.Fatalf("%s: %d wrong elements", cs.name, bad)
			}
		}
	})
}

// TestSgemmZeroK checks C = beta·C when k = 0 (nothing to multiply).
func TestSgemmZeroK(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g GEMM) {
		for _, beta := range []float32{0, 2} {
			c := []float32{1, 2, 3, 4, 5, 6}
			g.Sgemm(false, false, 2, 3, 0, nil, 1, nil, 3, beta, c, 3)
			for i, v := range c {
				if want := beta * float32(i+1); v != want {
					t.Fatalf("beta=%v: c[%d] = %v, want %v", beta, i, v, want)
				}
			}
		}
	})
}

// TestSgemmBadArgs checks that every backend rejects arguments that would
// read or write outside the slices (with a panic naming the problem) rather
// than corrupting memory.
func TestSgemmBadArgs(t *testing.T) {
	cases := []struct {
		name         string
		m, n, k      int
		la, lb, lc   int
		lda, ldb, ld int
		want         string
	}{
		{"short a", 4, 4, 4, 15, 16, 16, 4, 4, 4, "a has 15 elements"},
		{"short c", 4, 4, 4, 16, 16, 12, 4, 4, 4, "c has 12 elements"},
		{"small ldb", 4, 4, 4, 16, 16, 16, 4, 3, 4, "ldb=3"},
		{"negative", -1, 4, 4, 16, 16, 16, 4, 4, 4, "negative size"},
	}
	forEachBackend(t, func(t *testing.T, g GEMM) {
		for _, tc := range cases {
			msg := func() (msg string) {
				defer func() { msg = fmt.Sprint(recover()) }()
				g.Sgemm(false, false, tc.m, tc.n, tc.k, make([]float32, tc.la), tc.lda, make([]float32, tc.lb), tc.ldb, 0, make([]float32, tc.lc), tc.ld)
				return ""
			}()
			if !strings.Contains(msg, tc.want) || !strings.HasPrefix(msg, "nn: ") {
				t.Errorf("%s: panic %q, want one containing %q", tc.name, msg, tc.want)
			}
		}
	})
}

func TestBackendNamed(t *testing.T) {
	for _, key := range []string{"go", "GO", "gonum", "auto", ""} {
		g, err := BackendNamed(key)
		if err != nil || g == nil {
			t.Fatalf("BackendNamed(%q) = %v, %v", key, g, err)
		}
	}
	if _, err := BackendNamed("cuda"); !errors.Is(err, ErrBackend) || !strings.Contains(err.Error(), `"cuda"`) {
		t.Fatalf("BackendNamed(cuda): err = %v, want ErrBackend naming it", err)
	}
	g, err := BackendNamed("openblas")
	if err != nil {
		if os.Getenv("BITRUN_REQUIRE_OPENBLAS") == "1" {
			t.Fatalf("BITRUN_REQUIRE_OPENBLAS=1 but: %v", err)
		}
		if !errors.Is(err, ErrBackend) {
			t.Fatalf("openblas error %v does not wrap ErrBackend", err)
		}
		if auto, _ := BackendNamed("auto"); backendKey(auto) != "go" {
			t.Fatalf("auto without OpenBLAS gave %s, want go", auto.Name())
		}
		t.Logf("openblas unavailable (checked the fallback): %v", err)
		return
	}
	if !strings.HasPrefix(g.Name(), "openblas (") {
		t.Fatalf("openblas backend name %q", g.Name())
	}
	want := g
	if hasWideKernel {
		want = PureGo{} // the AVX-512 kernel beats OpenBLAS
	}
	if auto, _ := BackendNamed("auto"); auto != want {
		t.Fatalf("auto picked %s, want %s", auto.Name(), want.Name())
	}
}

// TestBackendEnv runs this test binary as a child process with different
// $BITRUN_GEMM / $BITRUN_OPENBLAS_LIB values (the backend is chosen once per
// process) and checks which backend it picked and what BackendError says.
func TestBackendEnv(t *testing.T) {
	if os.Getenv("NN_BACKEND_CHILD") == "1" {
		fmt.Printf("backend=%s\nerr=%v\nisErrBackend=%v\n", Backend().Name(), BackendError(), errors.Is(BackendError(), ErrBackend))
		return
	}
	_, obErr := BackendNamed("openblas")
	autoName := "openblas ("
	if hasWideKernel {
		autoName = "go ("
	}
	cases := []struct {
		name, gemm, lib string
		wantName        string // prefix of Backend().Name()
		wantErr         string // substring of BackendError ("" = nil)
	}{
		{"forced go", "go", "", "go (", ""},
		{"gonum", "gonum", "", "gonum", ""},
		{"unknown", "cuda", "", "go (", `unknown gemm backend "cuda"`},
		{"forced openblas missing", "openblas", "/nonexistent/libopenblas.so", "go (", "/nonexistent/libopenblas.so"},
		{"auto without openblas", "", "/nonexistent/libopenblas.so", "go (", ""},
	}
	if obErr == nil {
		cases = append(cases,
			struct{ name, gemm, lib, wantName, wantErr string }{"auto", "auto", "", autoName, ""},
			struct{ name, gemm, lib, wantName, wantErr string }{"forced openblas", "openblas", "", "openblas (", ""})
	}
	for _, tc := range cases {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBackendEnv$", "-test.count=1")
		cmd.Env = append(os.Environ(), "NN_BACKEND_CHILD=1", "BITRUN_GEMM="+tc.gemm)
		if tc.lib != "" {
			cmd.Env = append(cmd.Env, "BITRUN_OPENBLAS_LIB="+tc.lib)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: child failed: %v\n%s", tc.name, err, out)
		}
		got := string(out)
		if !strings.Contains(got, "backend="+tc.wantName) {
			t.Errorf("%s: want backend %q..., child said:\n%s", tc.name, tc.wantName, got)
		}
		switch {
		case tc.wantErr == "" && !strings.Contains(got, "err=<nil>"):
			t.Errorf("%s: want no error, child said:\n%s", tc.name, got)
		case tc.wantErr != "" && (!strings.Contains(got, tc.wantErr) || !strings.Contains(got, "isErrBackend=true") || !strings.Contains(got, "BITRUN_GEMM=")):
			t.Errorf("%s: want an ErrBackend error naming %q and BITRUN_GEMM, child said:\n%s", tc.name, tc.wantErr, got)
		}
	}
}
