//go:build amd64 && !purego

#include "textflag.h"

// func kernel6x32(k int, a, b, c1, c2 *float32, ldc int, acc bool)
//
// C[0:6, 0:32] (+)= A·B with 512-bit vectors, where A is a packed 6×k panel
// (6 values per step) and B two consecutive packed k×16 panels (the second
// starts k·16 values after b). Columns 0..15 of C start at c1, columns
// 16..31 at c2; ldc is C's row stride in elements. acc selects C += A·B
// instead of C = A·B. Needs AVX-512F. Accumulators: Z4..Z15, two per row.

// STEP32 is one step of the product: B values at boff(DI) (columns 0..15)
// and boff(R9) (16..31), the six A values from aoff(SI).
#define STEP32(boff, aoff) \
	VMOVUPS      boff(DI), Z0; \
	VMOVUPS      boff(R9), Z1; \
	VBROADCASTSS aoff(SI), Z2; \
	VFMADD231PS  Z0, Z2, Z4; \
	VFMADD231PS  Z1, Z2, Z5; \
	VBROADCASTSS aoff+4(SI), Z3; \
	VFMADD231PS  Z0, Z3, Z6; \
	VFMADD231PS  Z1, Z3, Z7; \
	VBROADCASTSS aoff+8(SI), Z2; \
	VFMADD231PS  Z0, Z2, Z8; \
	VFMADD231PS  Z1, Z2, Z9; \
	VBROADCASTSS aoff+12(SI), Z3; \
	VFMADD231PS  Z0, Z3, Z10; \
	VFMADD231PS  Z1, Z3, Z11; \
	VBROADCASTSS aoff+16(SI), Z2; \
	VFMADD231PS  Z0, Z2, Z12; \
	VFMADD231PS  Z1, Z2, Z13; \
	VBROADCASTSS aoff+20(SI), Z3; \
	VFMADD231PS  Z0, Z3, Z14; \
	VFMADD231PS  Z1, Z3, Z15

// ADDROW32 adds a row's accumulators to C (at DX and R10) and moves to the
// next row; SETROW32 stores them.
#define ADDROW32(lo, hi) \
	VADDPS  (DX), lo, lo; \
	VMOVUPS lo, (DX); \
	VADDPS  (R10), hi, hi; \
	VMOVUPS hi, (R10); \
	ADDQ    R8, DX; \
	ADDQ    R8, R10

#define SETROW32(lo, hi) \
	VMOVUPS lo, (DX); \
	VMOVUPS hi, (R10); \
	ADDQ    R8, DX; \
	ADDQ    R8, R10

TEXT ·kernel6x32(SB), NOSPLIT, $0-49
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c1+24(FP), DX
	MOVQ c2+32(FP), R10
	MOVQ ldc+40(FP), R8
	SHLQ $2, R8
	MOVQ CX, R9
	SHLQ $6, R9
	ADDQ DI, R9

	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z10, Z10, Z10
	VXORPS Z11, Z11, Z11
	VXORPS Z12, Z12, Z12
	VXORPS Z13, Z13, Z13
	VXORPS Z14, Z14, Z14
	VXORPS Z15, Z15, Z15

	// Prefetch the C tile while the products run.
	MOVQ DX, AX
	MOVQ R10, BX
	MOVQ $6, R11

prefetch:
	PREFETCHT0 (AX)
	PREFETCHT0 (BX)
	ADDQ       R8, AX
	ADDQ       R8, BX
	DECQ       R11
	JNZ        prefetch

	MOVQ CX, BX
	SHRQ $2, BX
	JZ   tail

loop4:
	STEP32(0, 0)
	STEP32(64, 24)
	STEP32(128, 48)
	STEP32(192, 72)
	ADDQ $96, SI
	ADDQ $256, DI
	ADDQ $256, R9
	DECQ BX
	JNZ  loop4

tail:
	ANDQ $3, CX
	JZ   store

loop1:
	STEP32(0, 0)
	ADDQ $24, SI
	ADDQ $64, DI
	ADDQ $64, R9
	DECQ CX
	JNZ  loop1

store:
	MOVBLZX acc+48(FP), AX
	TESTL   AX, AX
	JZ      overwrite
	ADDROW32(Z4, Z5)
	ADDROW32(Z6, Z7)
	ADDROW32(Z8, Z9)
	ADDROW32(Z10, Z11)
	ADDROW32(Z12, Z13)
	ADDROW32(Z14, Z15)
	VZEROUPPER
	RET

overwrite:
	SETROW32(Z4, Z5)
	SETROW32(Z6, Z7)
	SETROW32(Z8, Z9)
	SETROW32(Z10, Z11)
	SETROW32(Z12, Z13)
	SETROW32(Z14, Z15)
	VZEROUPPER
	RET

