//go:build !amd64 || purego

package nn

const (
	hasAsmKernel  = false
	hasWideKernel = false
)

func microKernel(k int, a, b, c []float32, ldc int, acc bool) {
	microKernelGo(k, a, b, c, ldc, acc)
}

func kernelName() string { return "generic" }

func microKernel2(k int, a, b, c1, c2 []float32, ldc int, acc bool) {
	microKernelGo(k, a, b, c1, ldc, acc)
	microKernelGo(k, a, b[k*nr:], c2, ldc, acc)
}
