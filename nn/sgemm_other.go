//go:build !amd64 || purego

package nn

const hasAsmKernel = false

func microKernel(k int, a, b, c []float32, ldc int, acc bool) {
	microKernelGo(k, a, b, c, ldc, acc)
}

func kernelName() string { return "generic" }
