package nn

import (
	"runtime"
	"sync"
)

// The pure-Go GEMM follows the usual BLIS/GotoBLAS structure: op(B) is
// packed in kc×nc blocks of 16-column panels, op(A) in mc×kc blocks of
// 6-row panels, and a 6×16 micro-kernel (AVX2+FMA assembly on amd64, plain
// Go elsewhere) multiplies one A panel by one B panel into a tile of C.
const (
	mr    = 6    // micro-tile rows
	nr    = 16   // micro-tile columns
	kcMax = 256  // depth of a packed block (A and B panels stay in L1/L2)
	mcMax = 120  // rows of a packed A block (L2)
	ncMax = 3072 // columns of a packed B block (L3)
)

// gemmScratch holds one goroutine's packing buffers.
type gemmScratch struct {
	a    []float32 // mcMax × kcMax, rounded up to whole panels
	b    []float32 // kcMax × ncMax
	tile [mr * nr]float32
}

// scratchFree keeps packing buffers between products. A plain free list
// rather than a sync.Pool: the buffers are megabytes, and a pool dropped at
// every GC would reallocate (and re-zero) them over and over.
var scratchFree struct {
	sync.Mutex
	list []*gemmScratch
}

func getScratch() *gemmScratch {
	scratchFree.Lock()
	if n := len(scratchFree.list); n > 0 {
		s := scratchFree.list[n-1]
		scratchFree.list = scratchFree.list[:n-1]
		scratchFree.Unlock()
		return s
	}
	scratchFree.Unlock()
	return &gemmScratch{
		a: make([]float32, (mcMax+mr)*kcMax),
		b: make([]float32, kcMax*(ncMax+nr)),
	}
}

// putScratch returns s to the free list, which keeps at most one buffer set
// per core (about 3.3 MB each); the rest are left to the GC.
func putScratch(s *gemmScratch) {
	scratchFree.Lock()
	if len(scratchFree.list) < runtime.GOMAXPROCS(0) {
		scratchFree.list = append(scratchFree.list, s)
	}
	scratchFree.Unlock()
}

// balance splits total into the fewest blocks of at most limit and returns
// the block size, rounded up to a multiple of unit.
func balance(total, limit, unit int) int {
	blocks := (total + limit - 1) / limit
	size := (total + blocks - 1) / blocks
	return (size + unit - 1) / unit * unit
}

// sgemmGo is the single-goroutine pure-Go product. Arguments are checked by
// the caller.
func sgemmGo(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemmCore(m, n, k, &matA{transA, a, lda}, 0, &matB{transB, b, ldb}, 0, beta, c, ldc)
}

// packedA is op(A) packed once, as ceil(m/mr) panels of k steps × mr values
// (rows past m are zero), so that a left operand used by many products (a
// convolution kernel applied to every image of a batch, every column block
// of a split product) is packed only once. Any kc block of a panel is a
// contiguous run, so the same packing serves every blocking.
type packedA struct {
	buf  *[]float32
	data []float32
	m, k int
}

// packAll packs op(A) (m×k) in parallel. Release the result with free.
func packAll(trans bool, a []float32, lda, m, k int) *packedA {
	panels := (m + mr - 1) / mr
	buf := getFloats(panels * mr * k)
	p := &packedA{buf: buf, data: *buf, m: m, k: k}
	p.fill(trans, a, lda)
	return p
}

// packAllArena is packAll into memory from a (released with a's marks;
// free is a no-op).
func packAllArena(a *Arena, trans bool, src []float32, lda, m, k int) *packedA {
	p := &packedA{data: a.Get(packedLen(m, k)).Data, m: m, k: k}
	p.fill(trans, src, lda)
	return p
}

// packedLen is the size of m×k packed into whole panels.
func packedLen(m, k int) int { return (m + mr - 1) / mr * mr * k }

func (p *packedA) fill(trans bool, a []float32, lda int) {
	panels := (p.m + mr - 1) / mr
	m, k := p.m, p.k
	if trans {
		// op(A) column q is row q of a: take blocks of transBlock rows (they
		// stay in cache) and fill every panel's run of those steps.
		const transBlock = 64
		blocks := (k + transBlock - 1) / transBlock
		ParallelFor(blocks, func(bi int) {
			q0, q1 := bi*transBlock, min(k, (bi+1)*transBlock)
			packTransRows(a[q0*lda:], lda, m, q0, q1, k, p.data)
		})
		return
	}
	parallelChunks(panels, max(1, 4096/max(k, 1)), func(lo, hi int) {
		i0, i1 := lo*mr, min(m, hi*mr)
		packA(trans, a, lda, i0, i1-i0, 0, k, p.data[lo*mr*k:])
	})
}

// packTransRows writes columns q0..q1-1 of a transposed left operand
// (column q of op(A) is row q-q0 of a, m values) into steps q0..q1-1 of
// every panel of data (depth k).
func packTransRows(a []float32, lda, m, q0, q1, k int, data []float32) {
	i := packTransFull(a, lda, m, q0, q1, k, data) * mr
	for ; i+mr <= m; i += mr {
		d := data[i*k:]
		for q := q0; q < q1; q++ {
			v := *(*[mr]float32)(a[(q-q0)*lda+i:])
			*(*[mr]float32)(d[q*mr:]) = v
		}
	}
	if i < m {
		d := data[i*k:]
		for q := q0; q < q1; q++ {
			t := d[q*mr : q*mr+mr]
			copy(t, a[(q-q0)*lda+i:(q-q0)*lda+m])
			clear(t[m-i:])
		}
	}
}

func (p *packedA) free() {
	if p.buf != nil {
		putFloats(p.buf)
	}
}

// aSource gives blocks of a product's left operand as packed panels: rows
// [i0, i0+mb) × depth [p0, p0+kb) as ceil(mb/mr) panels of kb steps × mr
// values, stride values apart (rows past mb zero), packed into scratch
// unless the operand is packed already.
type aSource interface {
	panels(i0, mb, p0, kb int, scratch []float32) (ap []float32, stride int)
}

// bSource packs blocks of a product's right operand: depth [p0, p0+kb) ×
// columns [j0, j0+nb) as ceil(nb/nr) panels of kb steps × nr values
// (columns past nb zero).
type bSource interface {
	packB(p0, kb, j0, nb int, dst []float32)
}

// matA is a row-major matrix (or its transpose) as a left operand.
type matA struct {
	trans bool
	a     []float32
	lda   int
}

func (s *matA) panels(i0, mb, p0, kb int, scratch []float32) ([]float32, int) {
	packA(s.trans, s.a, s.lda, i0, mb, p0, kb, scratch)
	return scratch, mr * kb
}

// panels of a pre-packed operand are slices of it (i0 a multiple of mr: any
// kc block of a panel is a contiguous run).
func (p *packedA) panels(i0, _, p0, _ int, _ []float32) ([]float32, int) {
	return p.data[i0/mr*mr*p.k+p0*mr:], mr * p.k
}

// matB is a row-major matrix (or its transpose) as a right operand.
type matB struct {
	trans bool
	b     []float32
	ldb   int
}

func (s *matB) packB(p0, kb, j0, nb int, dst []float32) {
	packB(s.trans, s.b, s.ldb, p0, kb, j0, nb, dst)
}

// gemmCore computes C (+)= A·B on one goroutine for the m×n block of the
// product whose top-left element is (i0, j0) in the sources' coordinates; c
// points at that block's C[0,0]. Every product of this package runs here:
// plain matrices, pre-packed kernels, and operands packed straight from
// tensors (convPacker, patchRows, patchCols).
func gemmCore(m, n, k int, as aSource, i0 int, bs bSource, j0 int, beta float32, c []float32, ldc int) {
	gemmCoreLayout(m, n, k, as, i0, bs, j0, beta, c, ldc, cLayout{})
}

// cLayout places the columns of C: the zero value is a plain matrix; with
// pix > 0 (a multiple of nr) the columns come in images of pix, image i's
// block starting i·img values after image 0's (C straight into NCHW output:
// rows are channels, pix apart).
type cLayout struct{ pix, img int }

// col is the offset of column j from column 0 (j a multiple of nr when
// images are split).
func (l cLayout) col(j int) int {
	if l.pix == 0 {
		return j
	}
	return j/l.pix*l.img + j%l.pix
}

// gemmCoreLayout is gemmCore with C laid out by l: with images split, c is
// row i0 of image 0's block and block column j goes to column j0+j.
func gemmCoreLayout(m, n, k int, as aSource, i0 int, bs bSource, j0 int, beta float32, c []float32, ldc int, l cLayout) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || (beta != 0 && beta != 1) {
		if l.pix != 0 {
			panic("nn: gemm: scaling an image-split C")
		}
		scaleC(m, n, beta, c, ldc)
		if k == 0 {
			return
		}
		beta = 1
	}
	s := getScratch()
	defer putScratch(s)
	kcb := balance(k, kcMax, 1)
	mcb := balance(m, mcMax, mr)
	ncb := balance(n, ncMax, nr)
	for jc := 0; jc < n; jc += ncb {
		nb := min(ncb, n-jc)
		for pc := 0; pc < k; pc += kcb {
			kb := min(kcb, k-pc)
			bs.packB(pc, kb, j0+jc, nb, s.b)
			acc := pc > 0 || beta != 0
			for ic := 0; ic < m; ic += mcb {
				mb := min(mcb, m-ic)
				ap, stride := as.panels(i0+ic, mb, pc, kb, s.a)
				if l.pix == 0 {
					macroKernel(mb, nb, kb, ap, stride, s.b, c[ic*ldc+jc:], ldc, l, 0, acc, &s.tile)
				} else {
					macroKernel(mb, nb, kb, ap, stride, s.b, c[ic*ldc+l.col(j0+jc):], ldc, l, j0+jc, acc, &s.tile)
				}
			}
		}
	}
}

// scaleC sets C = beta·C (C = 0 when beta is 0, whatever C held).
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// macroKernel multiplies a packed mb×kb block of A (panels aStride apart)
// by a packed kb×nb block of B into C, whose top-left element is c[0]: the
// block's column jr lies l.col(jbase+jr)-l.col(jbase) values from it.
// Where the 512-bit kernel runs, full tiles take two B panels at a time.
func macroKernel(mb, nb, kb int, pa []float32, aStride int, pb, c []float32, ldc int, l cLayout, jbase int, acc bool, tile *[mr * nr]float32) {
	jr := 0
	if hasWideKernel {
		for ; jr+2*nr <= nb; jr += 2 * nr {
			bp := pb[jr*kb:]
			c1, c2 := l.col(jbase+jr)-l.col(jbase), l.col(jbase+jr+nr)-l.col(jbase)
			for ir := 0; ir < mb; ir += mr {
				ap := pa[ir/mr*aStride:]
				if mb-ir >= mr {
					microKernel2(kb, ap, bp, c[ir*ldc+c1:], c[ir*ldc+c2:], ldc, acc)
					continue
				}
				// The last rows: the wide kernel into a scratch tile.
				var wide [mr * 2 * nr]float32
				microKernel2(kb, ap, bp, wide[:], wide[nr:], 2*nr, false)
				for r := 0; r < mb-ir; r++ {
					for h, off := range [2]int{c1, c2} {
						src := wide[r*2*nr+h*nr : r*2*nr+(h+1)*nr]
						dst := c[(ir+r)*ldc+off:][:nr]
						if acc {
							for j, v := range src {
								dst[j] += v
							}
						} else {
							copy(dst, src)
						}
					}
				}
			}
		}
	}
	for ; jr < nb; jr += nr {
		nn := min(nr, nb-jr)
		bp := pb[jr*kb:]
		c1 := l.col(jbase+jr) - l.col(jbase)
		for ir := 0; ir < mb; ir += mr {
			mm := min(mr, mb-ir)
			ap := pa[ir/mr*aStride:]
			if mm == mr && nn == nr {
				cc := c[ir*ldc+c1:]
				_ = cc[(mr-1)*ldc+nr-1] // the kernel writes this far
				microKernel(kb, ap, bp, cc, ldc, acc)
				continue
			}
			edgeTile(mm, nn, kb, ap, bp, c[ir*ldc+c1:], ldc, acc, tile)
		}
	}
}

// edgeTile computes a partial mm×nn tile through the scratch tile.
func edgeTile(mm, nn, kb int, ap, bp, c []float32, ldc int, acc bool, tile *[mr * nr]float32) {
	microKernel(kb, ap, bp, tile[:], nr, false)
	for r := 0; r < mm; r++ {
		src := tile[r*nr : r*nr+nn]
		dst := c[r*ldc:][:nn]
		if acc {
			for j, v := range src {
				dst[j] += v
			}
		} else {
			copy(dst, src)
		}
	}
}

// packA copies op(A)[i0:i0+mb, p0:p0+kb] into dst as ceil(mb/mr) panels, each
// kb steps of mr values (rows past mb are zero).
func packA(trans bool, a []float32, lda, i0, mb, p0, kb int, dst []float32) {
	for ir := 0; ir < mb; ir += mr {
		mm := min(mr, mb-ir)
		panel := dst[ir*kb : ir*kb+mr*kb]
		if trans {
			// op(A)[i,p] = a[p*lda+i]: each step reads mm contiguous values
			// (through a local array: a pointer-to-array copy would be a
			// memmove call for possibly overlapping memory).
			if mm == mr {
				for p := 0; p < kb; p++ {
					v := *(*[mr]float32)(a[(p0+p)*lda+i0+ir:])
					*(*[mr]float32)(panel[p*mr:]) = v
				}
				continue
			}
			for p := 0; p < kb; p++ {
				src := a[(p0+p)*lda+i0+ir:][:mm]
				d := panel[p*mr : p*mr+mr]
				copy(d, src)
				clear(d[mm:])
			}
			continue
		}
		if mm == mr {
			base := (i0+ir)*lda + p0
			r0 := a[base:][:kb]
			r1 := a[base+lda:][:kb]
			r2 := a[base+2*lda:][:kb]
			r3 := a[base+3*lda:][:kb]
			r4 := a[base+4*lda:][:kb]
			r5 := a[base+5*lda:][:kb]
			for p := pack6Rows(panel, a[base:], lda, kb); p < kb; p++ {
				d := panel[p*mr : p*mr+mr : p*mr+mr]
				d[0], d[1], d[2], d[3], d[4], d[5] = r0[p], r1[p], r2[p], r3[p], r4[p], r5[p]
			}
			continue
		}
		clear(panel)
		for r := 0; r < mm; r++ {
			row := a[(i0+ir+r)*lda+p0:][:kb]
			for p, v := range row {
				panel[p*mr+r] = v
			}
		}
	}
}

// packB copies op(B)[p0:p0+kb, j0:j0+nb] into dst as ceil(nb/nr) panels, each
// kb steps of nr values (columns past nb are zero).
func packB(trans bool, b []float32, ldb, p0, kb, j0, nb int, dst []float32) {
	full := nb / nr * nr
	if !trans {
		// op(B)[p,j] = b[p*ldb+j]: take packRows rows of B at a time (a few
		// contiguous read streams) and write each panel's share of them as
		// one contiguous run.
		const packRows = 8
		for pb := 0; pb < kb; pb += packRows {
			rows := min(packRows, kb-pb)
			for jr := 0; jr < full; jr += nr {
				d := dst[jr*kb+pb*nr:]
				src := b[(p0+pb)*ldb+j0+jr:]
				for p := 0; p < rows; p++ {
					*(*[nr]float32)(d[p*nr:]) = *(*[nr]float32)(src[p*ldb:])
				}
			}
			if full < nb {
				for p := pb; p < pb+rows; p++ {
					t := dst[full*kb+p*nr : full*kb+p*nr+nr]
					copy(t, b[(p0+p)*ldb+j0+full:][:nb-full])
					clear(t[nb-full:])
				}
			}
		}
		return
	}
	// op(B)[p,j] = b[j*ldb+p]: column j of a panel is a contiguous row of b.
	if full < nb {
		clear(dst[full*kb : full*kb+nr*kb])
	}
	for jr := 0; jr < nb; jr += nr {
		nn := min(nr, nb-jr)
		panel := dst[jr*kb : jr*kb+nr*kb]
		for j := 0; j < nn; j++ {
			row := b[(j0+jr+j)*ldb+p0:][:kb]
			for p, v := range row {
				panel[p*nr+j] = v
			}
		}
	}
}

// microKernelGo is the portable micro-kernel: C[0:mr,0:nr] (+)= A·B for a
// packed A panel and B panel of depth k.
func microKernelGo(k int, a, b, c []float32, ldc int, acc bool) {
	var t [mr][nr]float32
	a = a[:k*mr]
	b = b[:k*nr]
	for p := 0; p < k; p++ {
		bp := (*[nr]float32)(b[p*nr:])
		ap := (*[mr]float32)(a[p*mr:])
		for r := 0; r < mr; r++ {
			av := ap[r]
			row := &t[r]
			for j := 0; j < nr; j++ {
				row[j] += av * bp[j]
			}
		}
	}
	for r := 0; r < mr; r++ {
		dst := c[r*ldc : r*ldc+nr]
		if acc {
			for j := range dst {
				dst[j] += t[r][j]
			}
		} else {
			copy(dst, t[r][:])
		}
	}
}
