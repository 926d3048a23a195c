package zoo

import (
	"math"
	"testing"
	"time"
)

// TestOptionsZeroDefaultNegativeOff: the settings convention of every
// bitrun settings struct, zero = default, negative = off.
func TestOptionsZeroDefaultNegativeOff(t *testing.T) {
	d := Options{}.withDefaults()
	if d.ProgressInterval != 100*time.Millisecond || d.StallTimeout != 30*time.Second || d.MaxAttempts != 5 ||
		d.Backoff != time.Second || d.MaxBackoff != 30*time.Second {
		t.Errorf("defaults %+v", d)
	}
	off := Options{ProgressInterval: -1, StallTimeout: -1, MaxAttempts: -1, Backoff: -1, MaxBackoff: -1}.withDefaults()
	if off.ProgressInterval != 0 || off.StallTimeout != math.MaxInt64 || off.MaxAttempts != math.MaxInt ||
		off.Backoff != 0 || off.MaxBackoff != 0 {
		t.Errorf("off %+v", off)
	}
	if o := (Options{Backoff: 2 * time.Second, MaxBackoff: -1}).withDefaults(); o.MaxBackoff != 2*time.Second {
		t.Errorf("MaxBackoff off: %v, want Backoff (no doubling)", o.MaxBackoff)
	}
	set := Options{StallTimeout: time.Minute, MaxAttempts: 2}.withDefaults()
	if set.StallTimeout != time.Minute || set.MaxAttempts != 2 {
		t.Errorf("set values changed: %+v", set)
	}
}
