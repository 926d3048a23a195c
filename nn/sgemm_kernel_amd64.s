//go:build amd64 && !purego

#include "textflag.h"

// func kernel6x16(k int, a, b, c *float32, ldc int, acc bool)
//
// C[0:6, 0:16] (+)= A·B where A is a packed 6×k panel (6 values per step) and
// B a packed k×16 panel (16 values per step); c points at C[0,0] and ldc is
// C's row stride in elements. acc selects C += A·B instead of C = A·B.
// Needs AVX2 and FMA3. Accumulators: Y4..Y15, two per row.

// STEP16 is one step of the product: the 16 B values at boff(DI), the six
// A values from aoff(SI).
#define STEP16(boff, aoff) \
	VMOVUPS      boff(DI), Y0; \
	VMOVUPS      boff+32(DI), Y1; \
	VBROADCASTSS aoff(SI), Y2; \
	VFMADD231PS  Y0, Y2, Y4; \
	VFMADD231PS  Y1, Y2, Y5; \
	VBROADCASTSS aoff+4(SI), Y3; \
	VFMADD231PS  Y0, Y3, Y6; \
	VFMADD231PS  Y1, Y3, Y7; \
	VBROADCASTSS aoff+8(SI), Y2; \
	VFMADD231PS  Y0, Y2, Y8; \
	VFMADD231PS  Y1, Y2, Y9; \
	VBROADCASTSS aoff+12(SI), Y3; \
	VFMADD231PS  Y0, Y3, Y10; \
	VFMADD231PS  Y1, Y3, Y11; \
	VBROADCASTSS aoff+16(SI), Y2; \
	VFMADD231PS  Y0, Y2, Y12; \
	VFMADD231PS  Y1, Y2, Y13; \
	VBROADCASTSS aoff+20(SI), Y3; \
	VFMADD231PS  Y0, Y3, Y14; \
	VFMADD231PS  Y1, Y3, Y15

// ADDROW16 adds a row's accumulators to C at DX and moves to the next
// row; SETROW16 stores them.
#define ADDROW16(lo, hi) \
	VADDPS  (DX), lo, lo; \
	VADDPS  32(DX), hi, hi; \
	VMOVUPS lo, (DX); \
	VMOVUPS hi, 32(DX); \
	ADDQ    R8, DX

#define SETROW16(lo, hi) \
	VMOVUPS lo, (DX); \
	VMOVUPS hi, 32(DX); \
	ADDQ    R8, DX

TEXT ·kernel6x16(SB), NOSPLIT, $0-41
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8

	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15

	// Prefetch the C tile (6 rows, 64 bytes each) while the products run.
	MOVQ DX, AX
	MOVQ $6, R11

prefetch:
	PREFETCHT0 (AX)
	ADDQ       R8, AX
	DECQ       R11
	JNZ        prefetch

	MOVQ CX, BX
	SHRQ $2, BX
	JZ   tail

loop4:
	STEP16(0, 0)
	STEP16(64, 24)
	STEP16(128, 48)
	STEP16(192, 72)
	ADDQ $96, SI
	ADDQ $256, DI
	DECQ BX
	JNZ  loop4

tail:
	ANDQ $3, CX
	JZ   store

loop1:
	STEP16(0, 0)
	ADDQ $24, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  loop1

store:
	MOVBLZX acc+40(FP), AX
	TESTL   AX, AX
	JZ      overwrite
	ADDROW16(Y4, Y5)
	ADDROW16(Y6, Y7)
	ADDROW16(Y8, Y9)
	ADDROW16(Y10, Y11)
	ADDROW16(Y12, Y13)
	ADDROW16(Y14, Y15)
	VZEROUPPER
	RET

overwrite:
	SETROW16(Y4, Y5)
	SETROW16(Y6, Y7)
	SETROW16(Y8, Y9)
	SETROW16(Y10, Y11)
	SETROW16(Y12, Y13)
	SETROW16(Y14, Y15)
	VZEROUPPER
	RET

