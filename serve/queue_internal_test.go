package serve

import "testing"

// The queue holds MaxQueue rows, capped by MaxQueueMemory (256 MiB by
// default) but never below MaxBatch; negative lifts the cap.
func TestQueueRows(t *testing.T) {
	for _, tc := range []struct {
		mem        int64
		size, want int
	}{
		{0, 3 * 128 * 128, 1024},  // 192 KiB rows: 1365 fit, MaxQueue wins
		{0, 3 * 480 * 480, 97},    // 2.6 MiB rows
		{-1, 3 * 480 * 480, 1024}, // no byte cap
		{1, 3 * 480 * 480, 16},    // never below MaxBatch
	} {
		c := &Classifier{opts: Options{MaxQueue: 1024, MaxBatch: 16, MaxQueueMemory: tc.mem}.withDefaults()}
		if got := c.queueRows(tc.size); got != tc.want {
			t.Errorf("memory %d, rows of %d floats: %d rows, want %d", tc.mem, tc.size, got, tc.want)
		}
	}
}
