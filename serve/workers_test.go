package serve

import (
	"testing"

	"github.com/bitrun/bitrun/runtime"
)

func TestAutoWorkers(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		workers              int
		ro                   runtime.Options
		cores                int
		wantW, wantT, wantSe int
	}{
		{"auto on 2 cores: 2 workers × 1 thread, one session", 0, runtime.Options{}, 2, 2, 1, 0},
		{"auto on 16 cores: 2 workers × 8 threads, own sessions", 0, runtime.Options{}, 16, 2, 8, 2},
		{"auto on 1 core: 1 worker, ORT's threads", 0, runtime.Options{}, 1, 1, 0, 0},
		{"auto with --threads set: 1 worker", 0, runtime.Options{IntraThreads: 4}, 16, 1, 4, 0},
		{"auto on CUDA: 1 worker", 0, runtime.Options{Provider: runtime.ProviderCUDA}, 16, 1, 0, 0},
		{"explicit 4 workers split 16 cores", 4, runtime.Options{}, 16, 4, 4, 4},
		{"explicit 1 worker keeps ORT's threads", 1, runtime.Options{}, 16, 1, 0, 0},
	} {
		w, ro := autoWorkers(tc.workers, tc.ro, tc.cores)
		if w != tc.wantW || ro.IntraThreads != tc.wantT || ro.Sessions != tc.wantSe {
			t.Errorf("%s: workers %d threads %d sessions %d; want %d, %d, %d", tc.name, w, ro.IntraThreads, ro.Sessions, tc.wantW, tc.wantT, tc.wantSe)
		}
	}
}
