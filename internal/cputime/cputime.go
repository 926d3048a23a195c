// Package cputime reads the CPU time (user + system) that this process, or
// the calling OS thread, has used: what bench commands and benchmarks report
// beside wall time, since it barely moves when other work shares the cores.
// It asks the kernel (getrusage), so the figures have the kernel's
// accounting resolution and include time spent in native libraries.
package cputime

import "time"

// Process returns the CPU time of the whole process so far (every thread);
// ok is false where the OS does not report it.
func Process() (d time.Duration, ok bool) { return process() }

// Thread returns the CPU time of the calling OS thread so far (lock the
// goroutine to its thread around a measurement); ok is false where the OS
// does not report it per thread.
func Thread() (d time.Duration, ok bool) { return thread() }
