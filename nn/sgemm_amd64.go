//go:build amd64 && !purego

package nn

import "golang.org/x/sys/cpu"

// kernel6x16 is implemented in sgemm_kernel_amd64.s (AVX2 + FMA3).
//
//go:noescape
func kernel6x16(k int, a, b, c *float32, ldc int, acc bool)

var hasAsmKernel = cpu.X86.HasAVX2 && cpu.X86.HasFMA

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
	if hasAsmKernel {
		return "AVX2+FMA"
	}
	return "generic"
}
