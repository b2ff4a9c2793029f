package admission

import (
	"math"
	"runtime"
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

// TestSchedSamplerSeesAQueue: goroutines kept runnable beyond the cores
// wait for a CPU; the sampler's p99 over that period shows it, and the
// next sample (an idle period) covers only its own.
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
	busy := s.Sample()
	if busy <= 0 {
		t.Fatalf("scheduling p99 over a run queue of %d goroutines: %v, want > 0", n, busy)
	}
	time.Sleep(50 * time.Millisecond)
	if idle := s.Sample(); idle >= busy {
		t.Errorf("idle period's p99 %v, busy period's %v: want the idle one lower (each sample covers only its own period)", idle, busy)
	}
}
