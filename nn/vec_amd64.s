//go:build amd64 && !purego

#include "textflag.h"

// Vector loops for the element-wise kernels. n is a multiple of 16 (the Go
// callers do the tail). All need AVX2 and FMA3.

// func sumF64AVX(p *float32, n int) float64
TEXT ·sumF64AVX(SB), NOSPLIT, $0-24
	MOVQ   p+0(FP), SI
	MOVQ   n+8(FP), CX
	VXORPD Y4, Y4, Y4
	VXORPD Y5, Y5, Y5
	VXORPD Y6, Y6, Y6
	VXORPD Y7, Y7, Y7
	SHRQ   $4, CX
	JZ     sumdone

sumloop:
	VCVTPS2PD (SI), Y0
	VCVTPS2PD 16(SI), Y1
	VCVTPS2PD 32(SI), Y2
	VCVTPS2PD 48(SI), Y3
	VADDPD    Y0, Y4, Y4
	VADDPD    Y1, Y5, Y5
	VADDPD    Y2, Y6, Y6
	VADDPD    Y3, Y7, Y7
	ADDQ      $64, SI
	DECQ      CX
	JNZ       sumloop

sumdone:
	VADDPD       Y5, Y4, Y4
	VADDPD       Y7, Y6, Y6
	VADDPD       Y6, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VADDPD       X5, X4, X4
	VHADDPD      X4, X4, X4
	VZEROUPPER
	MOVSD        X4, ret+16(FP)
	RET

// func sumSqDevAVX(p *float32, n int, mean float64) float64
TEXT ·sumSqDevAVX(SB), NOSPLIT, $0-32
	MOVQ         p+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSD mean+16(FP), Y8
	VXORPD       Y4, Y4, Y4
	VXORPD       Y5, Y5, Y5
	VXORPD       Y6, Y6, Y6
	VXORPD       Y7, Y7, Y7
	SHRQ         $4, CX
	JZ           sqdone

sqloop:
	VCVTPS2PD   (SI), Y0
	VCVTPS2PD   16(SI), Y1
	VCVTPS2PD   32(SI), Y2
	VCVTPS2PD   48(SI), Y3
	VSUBPD      Y8, Y0, Y0
	VSUBPD      Y8, Y1, Y1
	VSUBPD      Y8, Y2, Y2
	VSUBPD      Y8, Y3, Y3
	VFMADD231PD Y0, Y0, Y4
	VFMADD231PD Y1, Y1, Y5
	VFMADD231PD Y2, Y2, Y6
	VFMADD231PD Y3, Y3, Y7
	ADDQ        $64, SI
	DECQ        CX
	JNZ         sqloop

sqdone:
	VADDPD       Y5, Y4, Y4
	VADDPD       Y7, Y6, Y6
	VADDPD       Y6, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VADDPD       X5, X4, X4
	VHADDPD      X4, X4, X4
	VZEROUPPER
	MOVSD        X4, ret+24(FP)
	RET

// func scaleShiftAVX(dst, src *float32, n int, scale, shift float32, relu bool)
// dst[i] = src[i]*scale + shift (fused), then max(·, 0) when relu; a NaN
// stays NaN.
TEXT ·scaleShiftAVX(SB), NOSPLIT, $0-33
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS scale+24(FP), Y2
	VBROADCASTSS shift+28(FP), Y3
	VXORPS       Y4, Y4, Y4
	MOVBLZX      relu+32(FP), AX
	SHRQ         $4, CX
	JZ           ssdone
	TESTL        AX, AX
	JNZ          ssrelu

ssloop:
	VMOVUPS     (SI), Y0
	VMOVUPS     32(SI), Y1
	VFMADD213PS Y3, Y2, Y0
	VFMADD213PS Y3, Y2, Y1
	VMOVUPS     Y0, (DI)
	VMOVUPS     Y1, 32(DI)
	ADDQ        $64, SI
	ADDQ        $64, DI
	DECQ        CX
	JNZ         ssloop
	JMP         ssdone

ssrelu:
	VMOVUPS     (SI), Y0
	VMOVUPS     32(SI), Y1
	VFMADD213PS Y3, Y2, Y0
	VFMADD213PS Y3, Y2, Y1
	VMAXPS      Y0, Y4, Y0
	VMAXPS      Y1, Y4, Y1
	VMOVUPS     Y0, (DI)
	VMOVUPS     Y1, 32(DI)
	ADDQ        $64, SI
	ADDQ        $64, DI
	DECQ        CX
	JNZ         ssrelu

ssdone:
	VZEROUPPER
	RET

// func reluAVX(p *float32, n int)
TEXT ·reluAVX(SB), NOSPLIT, $0-16
	MOVQ   p+0(FP), SI
	MOVQ   n+8(FP), CX
	VXORPS Y4, Y4, Y4
	SHRQ   $4, CX
	JZ     reludone

reluloop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMAXPS  Y0, Y4, Y0
	VMAXPS  Y1, Y4, Y1
	VMOVUPS Y0, (SI)
	VMOVUPS Y1, 32(SI)
	ADDQ    $64, SI
	DECQ    CX
	JNZ     reluloop

reludone:
	VZEROUPPER
	RET

// func addAVX(dst, src *float32, n int)
TEXT ·addAVX(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $4, CX
	JZ   adddone

addloop:
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VADDPS  (SI), Y0, Y0
	VADDPS  32(SI), Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	DECQ    CX
	JNZ     addloop

adddone:
	VZEROUPPER
	RET
