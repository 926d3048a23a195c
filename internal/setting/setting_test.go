package setting

import (
	"testing"
	"time"
)

func TestResolve(t *testing.T) {
	if got := Resolve(0, 5, -1); got != 5 {
		t.Errorf("zero: %d, want the default 5", got)
	}
	if got := Resolve(-3, 5, 0); got != 0 {
		t.Errorf("negative: %d, want off (0)", got)
	}
	if got := Resolve(7, 5, 0); got != 7 {
		t.Errorf("set: %d, want 7", got)
	}
	if got := Resolve(0.0, 0.9, 0); got != 0.9 {
		t.Errorf("float zero: %v, want 0.9", got)
	}
	if got := Resolve(-time.Second, time.Minute, time.Duration(1<<62)); got != 1<<62 {
		t.Errorf("duration negative: %v, want off", got)
	}
}
