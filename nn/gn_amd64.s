//go:build amd64 && !purego

#include "textflag.h"

// GroupNorm backward loops (AVX-512F). n is a multiple of 16 (the Go callers
// do the tail). The ReLU mask, when relu is set, is y > 0.

// func gnSumsAVX512(dy, x, y *float32, n int, mu float64, relu bool) (sdy, sdyx float64)
// sdy = Σ m·dy, sdyx = Σ m·dy·(x-mu), accumulated in float64.
TEXT ·gnSumsAVX512(SB), NOSPLIT, $0-64
	MOVQ    dy+0(FP), SI
	MOVQ    x+8(FP), DI
	MOVQ    y+16(FP), R8
	MOVQ    n+24(FP), CX
	VBROADCASTSD mu+32(FP), Z30
	MOVBLZX relu+40(FP), AX
	VXORPD  Z31, Z31, Z31
	VXORPD  Z10, Z10, Z10
	VXORPD  Z11, Z11, Z11
	VXORPD  Z12, Z12, Z12
	VXORPD  Z13, Z13, Z13
	SHRQ    $4, CX
	JZ      sumsdone
	TESTL   AX, AX
	JNZ     sumsrelu

sumsloop:
	VCVTPS2PD   (SI), Z0
	VCVTPS2PD   32(SI), Z1
	VCVTPS2PD   (DI), Z2
	VCVTPS2PD   32(DI), Z3
	VSUBPD      Z30, Z2, Z2
	VSUBPD      Z30, Z3, Z3
	VADDPD      Z0, Z10, Z10
	VADDPD      Z1, Z11, Z11
	VFMADD231PD Z0, Z2, Z12
	VFMADD231PD Z1, Z3, Z13
	ADDQ        $64, SI
	ADDQ        $64, DI
	DECQ        CX
	JNZ         sumsloop
	JMP         sumsdone

sumsrelu:
	VCVTPS2PD   (SI), Z0
	VCVTPS2PD   32(SI), Z1
	VCVTPS2PD   (DI), Z2
	VCVTPS2PD   32(DI), Z3
	VCVTPS2PD   (R8), Z4
	VCVTPS2PD   32(R8), Z5
	VSUBPD      Z30, Z2, Z2
	VSUBPD      Z30, Z3, Z3
	VCMPPD      $14, Z31, Z4, K1
	VCMPPD      $14, Z31, Z5, K2
	VADDPD      Z0, Z10, K1, Z10
	VADDPD      Z1, Z11, K2, Z11
	VFMADD231PD Z0, Z2, K1, Z12
	VFMADD231PD Z1, Z3, K2, Z13
	ADDQ        $64, SI
	ADDQ        $64, DI
	ADDQ        $64, R8
	DECQ        CX
	JNZ         sumsrelu

sumsdone:
	VADDPD        Z11, Z10, Z10
	VADDPD        Z13, Z12, Z12
	VEXTRACTF64X4 $1, Z10, Y1
	VADDPD        Y1, Y10, Y10
	VEXTRACTF128  $1, Y10, X1
	VADDPD        X1, X10, X10
	VHADDPD       X10, X10, X10
	VEXTRACTF64X4 $1, Z12, Y1
	VADDPD        Y1, Y12, Y12
	VEXTRACTF128  $1, Y12, X1
	VADDPD        X1, X12, X12
	VHADDPD       X12, X12, X12
	VZEROUPPER
	MOVSD         X10, sdy+48(FP)
	MOVSD         X12, sdyx+56(FP)
	RET

// func gnApplyAVX512(out, dy, x, y *float32, n int, mu, a, b, c float32, relu bool)
// out = m·a·dy + b·(x-mu) + c.
TEXT ·gnApplyAVX512(SB), NOSPLIT, $0-57
	MOVQ         out+0(FP), DX
	MOVQ         dy+8(FP), SI
	MOVQ         x+16(FP), DI
	MOVQ         y+24(FP), R8
	MOVQ         n+32(FP), CX
	VBROADCASTSS mu+40(FP), Z8
	VBROADCASTSS a+44(FP), Z5
	VBROADCASTSS b+48(FP), Z6
	VBROADCASTSS c+52(FP), Z7
	MOVBLZX      relu+56(FP), AX
	VXORPS       Z31, Z31, Z31
	SHRQ         $4, CX
	JZ           applydone
	TESTL        AX, AX
	JNZ          applyrelu

applyloop:
	VMOVUPS     (DI), Z1
	VSUBPS      Z8, Z1, Z1
	VFMADD213PS Z7, Z6, Z1
	VMOVUPS     (SI), Z0
	VFMADD231PS Z0, Z5, Z1
	VMOVUPS     Z1, (DX)
	ADDQ        $64, SI
	ADDQ        $64, DI
	ADDQ        $64, DX
	DECQ        CX
	JNZ         applyloop
	JMP         applydone

applyrelu:
	VMOVUPS     (DI), Z1
	VSUBPS      Z8, Z1, Z1
	VFMADD213PS Z7, Z6, Z1
	VMOVUPS     (SI), Z0
	VMOVUPS     (R8), Z4
	VCMPPS      $14, Z31, Z4, K1
	VFMADD231PS Z0, Z5, K1, Z1
	VMOVUPS     Z1, (DX)
	ADDQ        $64, SI
	ADDQ        $64, DI
	ADDQ        $64, DX
	ADDQ        $64, R8
	DECQ        CX
	JNZ         applyrelu

applydone:
	VZEROUPPER
	RET

// Column loops of the weight standardisation (AVX-512F): one call per row
// of a [rows, n] matrix, n a multiple of 16, vectors of per-column values.

// func colAffineAVX512(out, gv, w, a, b, c *float32, n int, acc bool)
// out[j] (+)= gv[j]·a[j] + w[j]·b[j] + c[j].
TEXT ·colAffineAVX512(SB), NOSPLIT, $0-57
	MOVQ    out+0(FP), DX
	MOVQ    gv+8(FP), SI
	MOVQ    w+16(FP), R8
	MOVQ    a+24(FP), R9
	MOVQ    b+32(FP), R10
	MOVQ    c+40(FP), R11
	MOVQ    n+48(FP), CX
	MOVBLZX acc+56(FP), AX
	SHRQ    $4, CX
	JZ      affdone

affloop:
	VMOVUPS     (R11), Z0
	VMOVUPS     (SI), Z1
	VFMADD231PS (R9), Z1, Z0
	VMOVUPS     (R8), Z2
	VFMADD231PS (R10), Z2, Z0
	TESTL       AX, AX
	JZ          affstore
	VADDPS      (DX), Z0, Z0

affstore:
	VMOVUPS Z0, (DX)
	ADDQ    $64, DX
	ADDQ    $64, SI
	ADDQ    $64, R8
	ADDQ    $64, R9
	ADDQ    $64, R10
	ADDQ    $64, R11
	DECQ    CX
	JNZ     affloop

affdone:
	VZEROUPPER
	RET

// func transpose16AVX512(dst, src *float32, ld, n int)
// dst[p*16+j] = src[j*ld+p] for j < 16 and p < n (n a multiple of 16): 16
// rows ld apart become n steps of 16 values, one 16×16 block in registers
// at a time.
TEXT ·transpose16AVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), R8
	SHLQ $2, R8
	MOVQ n+24(FP), CX
	SHRQ $4, CX
	JZ   trdone

trloop:
	MOVQ SI, AX
	VMOVUPS (AX), Z0
	ADDQ R8, AX
	VMOVUPS (AX), Z1
	ADDQ R8, AX
	VMOVUPS (AX), Z2
	ADDQ R8, AX
	VMOVUPS (AX), Z3
	ADDQ R8, AX
	VMOVUPS (AX), Z4
	ADDQ R8, AX
	VMOVUPS (AX), Z5
	ADDQ R8, AX
	VMOVUPS (AX), Z6
	ADDQ R8, AX
	VMOVUPS (AX), Z7
	ADDQ R8, AX
	VMOVUPS (AX), Z8
	ADDQ R8, AX
	VMOVUPS (AX), Z9
	ADDQ R8, AX
	VMOVUPS (AX), Z10
	ADDQ R8, AX
	VMOVUPS (AX), Z11
	ADDQ R8, AX
	VMOVUPS (AX), Z12
	ADDQ R8, AX
	VMOVUPS (AX), Z13
	ADDQ R8, AX
	VMOVUPS (AX), Z14
	ADDQ R8, AX
	VMOVUPS (AX), Z15
	VUNPCKLPS Z1, Z0, Z16
	VUNPCKHPS Z1, Z0, Z17
	VUNPCKLPS Z3, Z2, Z18
	VUNPCKHPS Z3, Z2, Z19
	VUNPCKLPS Z5, Z4, Z20
	VUNPCKHPS Z5, Z4, Z21
	VUNPCKLPS Z7, Z6, Z22
	VUNPCKHPS Z7, Z6, Z23
	VUNPCKLPS Z9, Z8, Z24
	VUNPCKHPS Z9, Z8, Z25
	VUNPCKLPS Z11, Z10, Z26
	VUNPCKHPS Z11, Z10, Z27
	VUNPCKLPS Z13, Z12, Z28
	VUNPCKHPS Z13, Z12, Z29
	VUNPCKLPS Z15, Z14, Z30
	VUNPCKHPS Z15, Z14, Z31
	VUNPCKLPD Z18, Z16, Z0
	VUNPCKHPD Z18, Z16, Z1
	VUNPCKLPD Z19, Z17, Z2
	VUNPCKHPD Z19, Z17, Z3
	VUNPCKLPD Z22, Z20, Z4
	VUNPCKHPD Z22, Z20, Z5
	VUNPCKLPD Z23, Z21, Z6
	VUNPCKHPD Z23, Z21, Z7
	VUNPCKLPD Z26, Z24, Z8
	VUNPCKHPD Z26, Z24, Z9
	VUNPCKLPD Z27, Z25, Z10
	VUNPCKHPD Z27, Z25, Z11
	VUNPCKLPD Z30, Z28, Z12
	VUNPCKHPD Z30, Z28, Z13
	VUNPCKLPD Z31, Z29, Z14
	VUNPCKHPD Z31, Z29, Z15
	VSHUFF32X4 $0x88, Z4, Z0, Z16
	VSHUFF32X4 $0xDD, Z4, Z0, Z17
	VSHUFF32X4 $0x88, Z12, Z8, Z24
	VSHUFF32X4 $0xDD, Z12, Z8, Z25
	VSHUFF32X4 $0x88, Z5, Z1, Z18
	VSHUFF32X4 $0xDD, Z5, Z1, Z19
	VSHUFF32X4 $0x88, Z13, Z9, Z26
	VSHUFF32X4 $0xDD, Z13, Z9, Z27
	VSHUFF32X4 $0x88, Z6, Z2, Z20
	VSHUFF32X4 $0xDD, Z6, Z2, Z21
	VSHUFF32X4 $0x88, Z14, Z10, Z28
	VSHUFF32X4 $0xDD, Z14, Z10, Z29
	VSHUFF32X4 $0x88, Z7, Z3, Z22
	VSHUFF32X4 $0xDD, Z7, Z3, Z23
	VSHUFF32X4 $0x88, Z15, Z11, Z30
	VSHUFF32X4 $0xDD, Z15, Z11, Z31
	VSHUFF32X4 $0x88, Z24, Z16, Z0
	VSHUFF32X4 $0xDD, Z24, Z16, Z8
	VSHUFF32X4 $0x88, Z25, Z17, Z4
	VSHUFF32X4 $0xDD, Z25, Z17, Z12
	VSHUFF32X4 $0x88, Z26, Z18, Z1
	VSHUFF32X4 $0xDD, Z26, Z18, Z9
	VSHUFF32X4 $0x88, Z27, Z19, Z5
	VSHUFF32X4 $0xDD, Z27, Z19, Z13
	VSHUFF32X4 $0x88, Z28, Z20, Z2
	VSHUFF32X4 $0xDD, Z28, Z20, Z10
	VSHUFF32X4 $0x88, Z29, Z21, Z6
	VSHUFF32X4 $0xDD, Z29, Z21, Z14
	VSHUFF32X4 $0x88, Z30, Z22, Z3
	VSHUFF32X4 $0xDD, Z30, Z22, Z11
	VSHUFF32X4 $0x88, Z31, Z23, Z7
	VSHUFF32X4 $0xDD, Z31, Z23, Z15
	VMOVUPS Z0, 0(DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	VMOVUPS Z4, 256(DI)
	VMOVUPS Z5, 320(DI)
	VMOVUPS Z6, 384(DI)
	VMOVUPS Z7, 448(DI)
	VMOVUPS Z8, 512(DI)
	VMOVUPS Z9, 576(DI)
	VMOVUPS Z10, 640(DI)
	VMOVUPS Z11, 704(DI)
	VMOVUPS Z12, 768(DI)
	VMOVUPS Z13, 832(DI)
	VMOVUPS Z14, 896(DI)
	VMOVUPS Z15, 960(DI)
	ADDQ $64, SI
	ADDQ $1024, DI
	DECQ CX
	JNZ  trloop

trdone:
	VZEROUPPER
	RET

// func wsGradSumsAVX512(sav, sbv *float64, g0, g1, w, scale, shift *float32, rows, ldb, n int, two bool)
// For each column j < n (a multiple of 16) of the rows×n blocks (rows ldb
// bytes apart): with gs = g0 (+ g1 when two) and ws = w·scale + shift (one
// FMA), sav[j] += Σ gs and sbv[j] += Σ gs·ws, in float64, 16 columns at a
// time with the sums in registers.
TEXT ·wsGradSumsAVX512(SB), NOSPLIT, $0-81
	MOVQ sav+0(FP), DI
	MOVQ sbv+8(FP), R9
	MOVQ g0+16(FP), SI
	MOVQ g1+24(FP), R13
	MOVQ w+32(FP), R8
	MOVQ scale+40(FP), R14
	MOVQ shift+48(FP), R12
	MOVQ n+72(FP), CX
	SHRQ $4, CX
	JZ   wgsdone
	MOVQ rows+56(FP), DX
	TESTQ DX, DX
	JZ   wgsdone

wgscol:
	VMOVUPD (DI), Z0
	VMOVUPD 64(DI), Z1
	VMOVUPD (R9), Z2
	VMOVUPD 64(R9), Z3
	VMOVUPS (R14), Z10
	VMOVUPS (R12), Z11
	MOVQ    SI, R11
	MOVQ    R13, AX
	MOVQ    R8, BX
	MOVQ    rows+56(FP), DX

wgsrow:
	VMOVUPS (R11), Z4
	CMPB    two+80(FP), $0
	JEQ     wgsone
	VADDPS  (AX), Z4, Z4

wgsone:
	VMOVAPS       Z11, Z5
	VFMADD231PS   (BX), Z10, Z5
	VCVTPS2PD     Y4, Z6
	VEXTRACTF64X4 $1, Z4, Y7
	VCVTPS2PD     Y7, Z7
	VCVTPS2PD     Y5, Z8
	VEXTRACTF64X4 $1, Z5, Y9
	VCVTPS2PD     Y9, Z9
	VADDPD        Z6, Z0, Z0
	VADDPD        Z7, Z1, Z1
	VFMADD231PD   Z6, Z8, Z2
	VFMADD231PD   Z7, Z9, Z3
	MOVQ          ldb+64(FP), R10
	ADDQ          R10, R11
	ADDQ          R10, AX
	ADDQ          R10, BX
	DECQ          DX
	JNZ           wgsrow

	VMOVUPD Z0, (DI)
	VMOVUPD Z1, 64(DI)
	VMOVUPD Z2, (R9)
	VMOVUPD Z3, 64(R9)
	ADDQ    $128, DI
	ADDQ    $128, R9
	ADDQ    $64, SI
	ADDQ    $64, R13
	ADDQ    $64, R8
	ADDQ    $64, R14
	ADDQ    $64, R12
	DECQ    CX
	JNZ     wgscol

wgsdone:
	VZEROUPPER
	RET

// func wsSGDAVX512(w, v, g0, g1, scale, shift, b, c *float32, n int, mu, lr, wd float32, two bool)
// One row of n values (a multiple of 16) of the fused standardisation
// backward and momentum SGD: gs = g0 (+ g1 when two), ws = w·scale + shift,
// d = gs·scale + ws·b + c (two FMAs, as colAffineAVX512), v ← (mu·v + d) +
// wd·w, w ← w − lr·v (separate roundings, as the Go SGD loop).
TEXT ·wsSGDAVX512(SB), NOSPLIT, $0-85
	MOVQ         w+0(FP), DI
	MOVQ         v+8(FP), SI
	MOVQ         g0+16(FP), R8
	MOVQ         g1+24(FP), R9
	MOVQ         scale+32(FP), R10
	MOVQ         shift+40(FP), R11
	MOVQ         b+48(FP), R12
	MOVQ         c+56(FP), R13
	MOVQ         n+64(FP), CX
	VBROADCASTSS mu+72(FP), Z28
	VBROADCASTSS lr+76(FP), Z29
	VBROADCASTSS wd+80(FP), Z30
	MOVBLZX      two+84(FP), AX
	SHRQ         $4, CX
	JZ           sgddone

sgdloop:
	VMOVUPS     (R8), Z0
	TESTL       AX, AX
	JZ          sgdone
	VADDPS      (R9), Z0, Z0

sgdone:
	VMOVUPS     (DI), Z1
	VMOVUPS     (R11), Z2
	VFMADD231PS (R10), Z1, Z2
	VMOVUPS     (R13), Z3
	VFMADD231PS (R10), Z0, Z3
	VFMADD231PS (R12), Z2, Z3
	VMULPS      (SI), Z28, Z4
	VADDPS      Z3, Z4, Z4
	VMULPS      Z1, Z30, Z5
	VADDPS      Z5, Z4, Z4
	VMOVUPS     Z4, (SI)
	VMULPS      Z4, Z29, Z6
	VSUBPS      Z6, Z1, Z1
	VMOVUPS     Z1, (DI)
	ADDQ        $64, DI
	ADDQ        $64, SI
	ADDQ        $64, R8
	ADDQ        $64, R9
	ADDQ        $64, R10
	ADDQ        $64, R11
	ADDQ        $64, R12
	ADDQ        $64, R13
	DECQ        CX
	JNZ         sgdloop

sgddone:
	VZEROUPPER
	RET

// func packTrans6AVX512(dst, src *float32, ldb, rows, panels, stride int)
// For each of panels panels p (columns 6p..6p+5 of the rows×(6·panels) block
// src, rows ldb bytes apart): copies row q's 6 values to dst + p·stride +
// 24q bytes: the mr = 6 panels of a transposed left operand, two rows per
// 48-byte store pair.
TEXT ·packTrans6AVX512(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ldb+16(FP), R8
	MOVQ panels+32(FP), CX
	MOVQ stride+40(FP), R9
	MOVQ $0x3f, AX
	KMOVW AX, K1
	TESTQ CX, CX
	JZ   pt6done

pt6panel:
	MOVQ SI, R10
	MOVQ DI, R11
	MOVQ rows+24(FP), DX

pt6row:
	VMOVUPS.Z (R10), K1, Y0
	VMOVUPS   Y0, K1, (R11)
	ADDQ      R8, R10
	ADDQ      $24, R11
	DECQ      DX
	JNZ       pt6row

	ADDQ $24, SI
	ADDQ R9, DI
	DECQ CX
	JNZ  pt6panel

pt6done:
	VZEROUPPER
	RET

// func pack6RowsAVX512(dst, src *float32, ldb, n int)
// Interleaves 6 rows of src (ldb bytes apart) into n steps of 6 values,
// dst[6p+r] = row r [p], 8 steps at a time (n a multiple of 8): an 8x8
// transpose of the 6 rows (the last two lanes unused) and one masked 6-value
// store per step.
TEXT ·pack6RowsAVX512(SB), NOSPLIT, $0-32
	MOVQ  dst+0(FP), DI
	MOVQ  src+8(FP), SI
	MOVQ  ldb+16(FP), R8
	MOVQ  n+24(FP), CX
	SHRQ  $3, CX
	JZ    p6done
	MOVQ  $0x3f, AX
	KMOVW AX, K1
	LEAQ  (SI)(R8*1), R9
	LEAQ  (SI)(R8*2), R10
	LEAQ  (R10)(R8*1), R11
	LEAQ  (R10)(R8*2), R12
	LEAQ  (R12)(R8*1), R13

p6loop:
	VMOVUPS    (SI), Y0
	VMOVUPS    (R9), Y1
	VMOVUPS    (R10), Y2
	VMOVUPS    (R11), Y3
	VMOVUPS    (R12), Y4
	VMOVUPS    (R13), Y5
	VUNPCKLPS  Y1, Y0, Y8
	VUNPCKHPS  Y1, Y0, Y9
	VUNPCKLPS  Y3, Y2, Y10
	VUNPCKHPS  Y3, Y2, Y11
	VUNPCKLPS  Y5, Y4, Y12
	VUNPCKHPS  Y5, Y4, Y13
	VSHUFPS    $0x44, Y10, Y8, Y0
	VSHUFPS    $0xEE, Y10, Y8, Y1
	VSHUFPS    $0x44, Y11, Y9, Y2
	VSHUFPS    $0xEE, Y11, Y9, Y3
	VSHUFPS    $0x44, Y12, Y12, Y4
	VSHUFPS    $0xEE, Y12, Y12, Y5
	VSHUFPS    $0x44, Y13, Y13, Y6
	VSHUFPS    $0xEE, Y13, Y13, Y7
	VPERM2F128 $0x20, Y4, Y0, Y8
	VPERM2F128 $0x20, Y5, Y1, Y9
	VPERM2F128 $0x20, Y6, Y2, Y10
	VPERM2F128 $0x20, Y7, Y3, Y11
	VPERM2F128 $0x31, Y4, Y0, Y12
	VPERM2F128 $0x31, Y5, Y1, Y13
	VPERM2F128 $0x31, Y6, Y2, Y14
	VPERM2F128 $0x31, Y7, Y3, Y15
	VMOVUPS    Y8, K1, (DI)
	VMOVUPS    Y9, K1, 24(DI)
	VMOVUPS    Y10, K1, 48(DI)
	VMOVUPS    Y11, K1, 72(DI)
	VMOVUPS    Y12, K1, 96(DI)
	VMOVUPS    Y13, K1, 120(DI)
	VMOVUPS    Y14, K1, 144(DI)
	VMOVUPS    Y15, K1, 168(DI)
	ADDQ       $32, SI
	ADDQ       $32, R9
	ADDQ       $32, R10
	ADDQ       $32, R11
	ADDQ       $32, R12
	ADDQ       $32, R13
	ADDQ       $192, DI
	DECQ       CX
	JNZ        p6loop

p6done:
	VZEROUPPER
	RET

// func gatherRowsAVX512(dst, x *float32, tbl *int32, rows *int32, n int)
// For each of n panel rows p (rows holds two int32 per row: the byte offset
// of its tap's 16 offsets in tbl, and its channel's first element in x):
// dst[16p+j] = x[base+off[j]] where off[j] >= 0, else 0. One masked gather
// per row.
TEXT ·gatherRowsAVX512(SB), NOSPLIT, $0-40
	MOVQ  dst+0(FP), DI
	MOVQ  x+8(FP), SI
	MOVQ  tbl+16(FP), R8
	MOVQ  rows+24(FP), R9
	MOVQ  n+32(FP), CX
	TESTQ CX, CX
	JZ    grdone

grloop:
	MOVLQSX   (R9), AX
	MOVLQSX   4(R9), BX
	VMOVDQU32 (R8)(AX*1), Z1
	VPMOVD2M  Z1, K1
	KNOTW     K1, K1
	LEAQ      (SI)(BX*4), DX
	VPXORD    Z2, Z2, Z2
	VPGATHERDD (DX)(Z1*4), K1, Z2
	VMOVDQU32 Z2, (DI)
	ADDQ      $64, DI
	ADDQ      $8, R9
	DECQ      CX
	JNZ       grloop

grdone:
	VZEROUPPER
	RET

// Lane permutations of gatherPanelAVX512: output vector k of a group of 16
// steps holds panel values 16k..16k+15, value v being step v/6, row v%6.
DATA gpperm<>+0(SB)/4, $0
DATA gpperm<>+4(SB)/4, $0
DATA gpperm<>+8(SB)/4, $0
DATA gpperm<>+12(SB)/4, $0
DATA gpperm<>+16(SB)/4, $0
DATA gpperm<>+20(SB)/4, $0
DATA gpperm<>+24(SB)/4, $1
DATA gpperm<>+28(SB)/4, $1
DATA gpperm<>+32(SB)/4, $1
DATA gpperm<>+36(SB)/4, $1
DATA gpperm<>+40(SB)/4, $1
DATA gpperm<>+44(SB)/4, $1
DATA gpperm<>+48(SB)/4, $2
DATA gpperm<>+52(SB)/4, $2
DATA gpperm<>+56(SB)/4, $2
DATA gpperm<>+60(SB)/4, $2
DATA gpperm<>+64(SB)/4, $2
DATA gpperm<>+68(SB)/4, $2
DATA gpperm<>+72(SB)/4, $3
DATA gpperm<>+76(SB)/4, $3
DATA gpperm<>+80(SB)/4, $3
DATA gpperm<>+84(SB)/4, $3
DATA gpperm<>+88(SB)/4, $3
DATA gpperm<>+92(SB)/4, $3
DATA gpperm<>+96(SB)/4, $4
DATA gpperm<>+100(SB)/4, $4
DATA gpperm<>+104(SB)/4, $4
DATA gpperm<>+108(SB)/4, $4
DATA gpperm<>+112(SB)/4, $4
DATA gpperm<>+116(SB)/4, $4
DATA gpperm<>+120(SB)/4, $5
DATA gpperm<>+124(SB)/4, $5
DATA gpperm<>+128(SB)/4, $5
DATA gpperm<>+132(SB)/4, $5
DATA gpperm<>+136(SB)/4, $5
DATA gpperm<>+140(SB)/4, $5
DATA gpperm<>+144(SB)/4, $6
DATA gpperm<>+148(SB)/4, $6
DATA gpperm<>+152(SB)/4, $6
DATA gpperm<>+156(SB)/4, $6
DATA gpperm<>+160(SB)/4, $6
DATA gpperm<>+164(SB)/4, $6
DATA gpperm<>+168(SB)/4, $7
DATA gpperm<>+172(SB)/4, $7
DATA gpperm<>+176(SB)/4, $7
DATA gpperm<>+180(SB)/4, $7
DATA gpperm<>+184(SB)/4, $7
DATA gpperm<>+188(SB)/4, $7
DATA gpperm<>+192(SB)/4, $8
DATA gpperm<>+196(SB)/4, $8
DATA gpperm<>+200(SB)/4, $8
DATA gpperm<>+204(SB)/4, $8
DATA gpperm<>+208(SB)/4, $8
DATA gpperm<>+212(SB)/4, $8
DATA gpperm<>+216(SB)/4, $9
DATA gpperm<>+220(SB)/4, $9
DATA gpperm<>+224(SB)/4, $9
DATA gpperm<>+228(SB)/4, $9
DATA gpperm<>+232(SB)/4, $9
DATA gpperm<>+236(SB)/4, $9
DATA gpperm<>+240(SB)/4, $10
DATA gpperm<>+244(SB)/4, $10
DATA gpperm<>+248(SB)/4, $10
DATA gpperm<>+252(SB)/4, $10
DATA gpperm<>+256(SB)/4, $10
DATA gpperm<>+260(SB)/4, $10
DATA gpperm<>+264(SB)/4, $11
DATA gpperm<>+268(SB)/4, $11
DATA gpperm<>+272(SB)/4, $11
DATA gpperm<>+276(SB)/4, $11
DATA gpperm<>+280(SB)/4, $11
DATA gpperm<>+284(SB)/4, $11
DATA gpperm<>+288(SB)/4, $12
DATA gpperm<>+292(SB)/4, $12
DATA gpperm<>+296(SB)/4, $12
DATA gpperm<>+300(SB)/4, $12
DATA gpperm<>+304(SB)/4, $12
DATA gpperm<>+308(SB)/4, $12
DATA gpperm<>+312(SB)/4, $13
DATA gpperm<>+316(SB)/4, $13
DATA gpperm<>+320(SB)/4, $13
DATA gpperm<>+324(SB)/4, $13
DATA gpperm<>+328(SB)/4, $13
DATA gpperm<>+332(SB)/4, $13
DATA gpperm<>+336(SB)/4, $14
DATA gpperm<>+340(SB)/4, $14
DATA gpperm<>+344(SB)/4, $14
DATA gpperm<>+348(SB)/4, $14
DATA gpperm<>+352(SB)/4, $14
DATA gpperm<>+356(SB)/4, $14
DATA gpperm<>+360(SB)/4, $15
DATA gpperm<>+364(SB)/4, $15
DATA gpperm<>+368(SB)/4, $15
DATA gpperm<>+372(SB)/4, $15
DATA gpperm<>+376(SB)/4, $15
DATA gpperm<>+380(SB)/4, $15
GLOBL gpperm<>(SB), RODATA|NOPTR, $384

// func gatherPanelAVX512(dst, x *float32, cols, rows *int32, groups, h, w int)
// Packs an A panel of 6 rows over 16·groups steps (columns) with masked
// gathers: dst[6t+r] = x[cb[t]+off[r]] when 0 <= cy[t]+ky[r] < h and
// 0 <= cx[t]+kx[r] < w, else 0. cols holds, per group of 16 steps, the
// 16 cb, then the 16 cy, then the 16 cx; rows holds the lane patterns of
// off, ky and kx for the 6 output vectors (3 × 6 × 16 int32: off for
// vector k at 64k bytes, ky at 384+64k, kx at 768+64k).
TEXT ·gatherPanelAVX512(SB), NOSPLIT, $0-56
	MOVQ         dst+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         cols+16(FP), R8
	MOVQ         rows+24(FP), R9
	MOVQ         groups+32(FP), CX
	VPBROADCASTD h+40(FP), Z30
	VPBROADCASTD w+48(FP), Z31
	LEAQ         gpperm<>(SB), R10
	VMOVDQU32    (R10), Z20
	VMOVDQU32    64(R10), Z21
	VMOVDQU32    128(R10), Z22
	VMOVDQU32    192(R10), Z23
	VMOVDQU32    256(R10), Z24
	VMOVDQU32    320(R10), Z25
	TESTQ        CX, CX
	JZ           gpdone

gpgroup:
	VMOVDQU32 (R8), Z10
	VMOVDQU32 64(R8), Z11
	VMOVDQU32 128(R8), Z12

#define GPVEC(perm, k) \
	VPERMD     Z10, perm, Z0; \
	VPERMD     Z11, perm, Z1; \
	VPERMD     Z12, perm, Z2; \
	VPADDD     (384+64*k)(R9), Z1, Z1; \
	VPADDD     (768+64*k)(R9), Z2, Z2; \
	VPADDD     (64*k)(R9), Z0, Z0; \
	VPCMPUD    $1, Z30, Z1, K1; \
	VPCMPUD    $1, Z31, Z2, K2; \
	KANDW      K1, K2, K1; \
	VPXORD     Z3, Z3, Z3; \
	VPGATHERDD (SI)(Z0*4), K1, Z3; \
	VMOVDQU32  Z3, (64*k)(DI)

	GPVEC(Z20, 0)
	GPVEC(Z21, 1)
	GPVEC(Z22, 2)
	GPVEC(Z23, 3)
	GPVEC(Z24, 4)
	GPVEC(Z25, 5)
#undef GPVEC

	ADDQ $192, R8
	ADDQ $384, DI
	DECQ CX
	JNZ  gpgroup

gpdone:
	VZEROUPPER
	RET

// func copyRows16AVX512(dst, src *float32, ld, n int)
// Copies 16 values from each of n rows of src (ld bytes apart) to dst,
// 64 bytes per row, prefetching the row 8 ahead (rows of a 1x1
// convolution's input plane are often a page apart, a stride the hardware
// prefetchers do not follow).
TEXT ·copyRows16AVX512(SB), NOSPLIT, $0-32
	MOVQ  dst+0(FP), DI
	MOVQ  src+8(FP), SI
	MOVQ  ld+16(FP), DX
	MOVQ  n+24(FP), CX
	LEAQ  (DX)(DX*2), R8
	SHLQ  $1, R8
	ADDQ  DX, R8
	ADDQ  DX, R8        // R8 = 8·ld
	TESTQ CX, CX
	JZ    crdone

crloop:
	PREFETCHT0 (SI)(R8*1)
	VMOVUPS    (SI), Z0
	VMOVUPS    Z0, (DI)
	ADDQ       DX, SI
	ADDQ       $64, DI
	DECQ       CX
	JNZ        crloop

crdone:
	VZEROUPPER
	RET

// Even lanes of a pair of vectors (VPERMT2PS indices): stride-2 panel rows.
DATA evenlanes<>+0(SB)/4, $0
DATA evenlanes<>+4(SB)/4, $2
DATA evenlanes<>+8(SB)/4, $4
DATA evenlanes<>+12(SB)/4, $6
DATA evenlanes<>+16(SB)/4, $8
DATA evenlanes<>+20(SB)/4, $10
DATA evenlanes<>+24(SB)/4, $12
DATA evenlanes<>+28(SB)/4, $14
DATA evenlanes<>+32(SB)/4, $16
DATA evenlanes<>+36(SB)/4, $18
DATA evenlanes<>+40(SB)/4, $20
DATA evenlanes<>+44(SB)/4, $22
DATA evenlanes<>+48(SB)/4, $24
DATA evenlanes<>+52(SB)/4, $26
DATA evenlanes<>+56(SB)/4, $28
DATA evenlanes<>+60(SB)/4, $30
GLOBL evenlanes<>(SB), RODATA|NOPTR, $64

// func rowSpansAVX512(dst, x *float32, rows *uint64, n int)
// Packs n panel rows of 16 values from every other input value. rows[p]
// holds the row's first input offset in x (low 32 bits, signed) and a mask
// of input lanes (high 32 bits): dst[16p+j] = x[off+2j] where bit 2j is
// set, 0 elsewhere. Two masked loads and a permute per row; masked-out
// lanes are not read.
TEXT ·rowSpansAVX512(SB), NOSPLIT, $0-32
	MOVQ      dst+0(FP), DI
	MOVQ      x+8(FP), SI
	MOVQ      rows+16(FP), R8
	MOVQ      n+24(FP), CX
	LEAQ      evenlanes<>(SB), R10
	VMOVDQU32 (R10), Z5
	TESTQ     CX, CX
	JZ        rsdone

rsloop:
	MOVQ      (R8), AX
	MOVLQSX   AX, BX
	SHRQ      $32, AX
	KMOVW     AX, K1
	SHRQ      $16, AX
	KMOVW     AX, K2
	VMOVUPS.Z (SI)(BX*4), K1, Z0
	VMOVUPS.Z 64(SI)(BX*4), K2, Z1
	VPERMT2PS Z1, Z5, Z0
	VMOVUPS   Z0, (DI)
	ADDQ      $8, R8
	ADDQ      $64, DI
	DECQ      CX
	JNZ       rsloop

rsdone:
	VZEROUPPER
	RET
