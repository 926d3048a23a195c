//go:build linux

package cputime

import (
	"time"

	"golang.org/x/sys/unix"
)

func thread() (time.Duration, bool) { return rusage(unix.RUSAGE_THREAD) }
