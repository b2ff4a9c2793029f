package admission

import (
	"math"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestHistQuantile(t *testing.T) {
	inf := math.Inf(1)
	buckets := []float64{math.Inf(-1), 0.001, 0.01, 0.1, inf}
	for _, tc := range []struct {
		counts []uint64
		q      float64
		want   float64
	}{
		{[]uint64{0, 0, 0, 0}, 0.99, 0},
		{[]uint64{0, 100, 0, 0}, 0.99, 0.01},    // all in [1 ms, 10 ms)
		{[]uint64{0, 98, 2, 0}, 0.99, 0.1},      // the 99th of 100 is in [10 ms, 100 ms)
		{[]uint64{0, 99, 1, 0}, 0.99, 0.01},     // the 99th of 100 is the last of the first bucket
		{[]uint64{0, 0, 0, 5}, 0.5, 0.1},        // unbounded: its lower bound
		{[]uint64{7, 0, 0, 0}, 0.99, 0.001},     // below the first bound
		{[]uint64{1, 1, 1, 1}, 1, 0.1},          // the maximum
		{[]uint64{10, 10, 10, 10}, 0.25, 0.001}, // exactly at a bucket's end
	} {
		if got := histQuantile(tc.counts, buckets, tc.q); got != tc.want {
			t.Errorf("histQuantile(%v, q=%v) = %v, want %v", tc.counts, tc.q, got, tc.want)
		}
	}
}

func TestSinceLast(t *testing.T) {
	if got := sinceLast(nil, []uint64{3, 0, 5}); !slices.Equal(got, []uint64{3, 0, 5}) {
		t.Errorf("first sample: %v, want all of the counts", got)
	}
	if got := sinceLast([]uint64{3, 0, 5}, []uint64{4, 2, 5}); !slices.Equal(got, []uint64{1, 2, 0}) {
		t.Errorf("next sample: %v, want only what was added since", got)
	}
}

// TestSchedSamplerSeesAQueue: goroutines kept runnable beyond the cores
// wait for a CPU, and the sampler's quantile over that period shows it
// from the runtime's own histogram.
func TestSchedSamplerSeesAQueue(t *testing.T) {
	s := NewSchedSampler(0.99)
	s.Sample()
	// Many more CPU-bound goroutines than Ps, each yielding often: each
	// yield puts it at the back of a run queue behind the others.
	n := 64 * runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	stop := time.Now().Add(300 * time.Millisecond)
	for range n {
		wg.Go(func() {
			for time.Now().Before(stop) {
				x := 0
				for i := range 20000 {
					x += i
				}
				_ = x
				runtime.Gosched()
			}
		})
	}
	wg.Wait()
	if busy := s.Sample(); busy <= 0 {
		t.Fatalf("scheduling p99 over a run queue of %d goroutines: %v, want > 0", n, busy)
	}
}
