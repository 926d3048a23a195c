//go:build amd64 && !purego

package nn

import (
	"os"

	"golang.org/x/sys/cpu"
)

// kernel6x16 is implemented in sgemm_kernel_amd64.s (AVX2 + FMA3).
//
//go:noescape
func kernel6x16(k int, a, b, c *float32, ldc int, acc bool)

// kernel6x32 is implemented in sgemm512_amd64.s (AVX-512F).
//
//go:noescape
func kernel6x32(k int, a, b, c1, c2 *float32, ldc int, acc bool)

var hasAsmKernel = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// hasWideKernel reports whether microKernel2 runs the 512-bit kernel; $BITRUN_GEMM_AVX512=0
// turns it off (to compare kernels).
var hasWideKernel = cpu.X86.HasAVX512F && os.Getenv("BITRUN_GEMM_AVX512") != "0"

// microKernel2 is microKernel over two consecutive B panels (2·k·nr packed
// values from b) whose C columns start at c1 and c2.
func microKernel2(k int, a, b, c1, c2 []float32, ldc int, acc bool) {
	_ = a[k*mr-1]
	_ = b[2*k*nr-1]
	_ = c1[(mr-1)*ldc+nr-1]
	_ = c2[(mr-1)*ldc+nr-1]
	kernel6x32(k, &a[0], &b[0], &c1[0], &c2[0], ldc, acc)
}

func microKernel(k int, a, b, c []float32, ldc int, acc bool) {
	if !hasAsmKernel {
		microKernelGo(k, a, b, c, ldc, acc)
		return
	}
	_ = a[k*mr-1]
	_ = b[k*nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	kernel6x16(k, &a[0], &b[0], &c[0], ldc, acc)
}

func kernelName() string {
	if hasWideKernel {
		return "AVX-512"
	}
	if hasAsmKernel {
		return "AVX2+FMA"
	}
	return "generic"
}
