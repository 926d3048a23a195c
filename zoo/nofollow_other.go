//go:build !unix

package zoo

// oNoFollow: no such flag here; checkRegular's Lstat is the guard.
const oNoFollow = 0
