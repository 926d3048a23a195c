// Package setting resolves the one convention of bitrun's settings structs
// (serve.Config, train.Options, zoo.Options, ...): a zero field means the
// default, a negative one means off.
package setting

// Number is what a numeric setting can be (time.Duration included).
type Number interface {
	~int | ~int64 | ~float64
}

// Resolve is def when v is zero, off when v is negative, and v otherwise.
func Resolve[T Number](v, def, off T) T {
	switch {
	case v == 0:
		return def
	case v < 0:
		return off
	}
	return v
}
