package serve

import (
	"testing"
	"time"
)

// TestOptionsZeroDefaultNegativeOff: serve's settings follow the one
// convention (issue 17 item 4): zero takes the default, a negative
// BatchDelay switches the wait off, and a repository's config.json maps
// onto Options without translation ("0s" keeps the base, negative: no
// wait; it used to turn "0" into no wait).
func TestOptionsZeroDefaultNegativeOff(t *testing.T) {
	d := DefaultOptions()
	if got := (Options{}).withDefaults(); got.BatchDelay != d.BatchDelay || got.MaxBatch != d.MaxBatch || got.TopK != d.TopK || got.MaxQueue != 64*d.MaxBatch {
		t.Errorf("zero Options: %+v", got)
	}
	if got := (Options{BatchDelay: -1}).withDefaults(); got.BatchDelay != 0 {
		t.Errorf("negative BatchDelay: %v, want no wait", got.BatchDelay)
	}
	if got := (Config{}).withDefaults(); got.BodyTimeout != 10*time.Second || got.RequestTimeout != 30*time.Second {
		t.Errorf("zero Config: %+v", got)
	}
	if got := (Config{BodyTimeout: -1}).withDefaults(); got.BodyTimeout >= 0 {
		t.Errorf("negative BodyTimeout: %v, want off", got.BodyTimeout)
	}

	base := Options{BatchDelay: 7 * time.Millisecond}
	for _, tc := range []struct {
		delay string
		want  time.Duration
	}{{"", 7 * time.Millisecond}, {"0s", 7 * time.Millisecond}, {"0", 7 * time.Millisecond}, {"2ms", 2 * time.Millisecond}, {"-1ms", -time.Millisecond}} {
		o, err := ModelConfig{BatchDelay: tc.delay}.options(base, "m", "1")
		if err != nil {
			t.Fatal(err)
		}
		if o.BatchDelay != tc.want {
			t.Errorf("batch_delay %q: %v, want %v", tc.delay, o.BatchDelay, tc.want)
		}
	}
	if _, err := (ModelConfig{BatchDelay: "soon"}).options(base, "m", "1"); err == nil {
		t.Error("batch_delay \"soon\" accepted")
	}
}
