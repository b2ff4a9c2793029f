package admission

import (
	"math"
	rtmetrics "runtime/metrics"
	"time"
)

// schedMetric is the Go runtime's histogram of the time goroutines spent
// runnable before running.
const schedMetric = "/sched/latencies:seconds"

// SchedSampler reads the Go runtime's goroutine scheduling latencies
// (runtime/metrics /sched/latencies:seconds) for ObserveSchedLatency: each
// Sample returns a quantile of the latencies since the previous Sample. Not
// safe for concurrent use; one goroutine samples.
type SchedSampler struct {
	q    float64
	s    []rtmetrics.Sample
	prev []uint64
}

// NewSchedSampler returns a sampler of quantile q (in (0,1]) whose first
// Sample covers the time since the process started.
func NewSchedSampler(q float64) *SchedSampler {
	return &SchedSampler{q: q, s: []rtmetrics.Sample{{Name: schedMetric}}}
}

// Sample returns the q-quantile of the scheduling latencies since the last
// Sample (0 when no goroutine was scheduled, or the runtime lacks the
// metric).
func (s *SchedSampler) Sample() time.Duration {
	rtmetrics.Read(s.s)
	if s.s[0].Value.Kind() != rtmetrics.KindFloat64Histogram {
		return 0
	}
	h := s.s[0].Value.Float64Histogram()
	delta := sinceLast(s.prev, h.Counts)
	s.prev = append(s.prev[:0], h.Counts...)
	return time.Duration(histQuantile(delta, h.Buckets, s.q) * float64(time.Second))
}

// sinceLast is the counts added to cumulative histogram counts cur since
// prev (nil prev: all of cur).
func sinceLast(prev, cur []uint64) []uint64 {
	d := make([]uint64, len(cur))
	for i, c := range cur {
		d[i] = c
		if i < len(prev) {
			d[i] -= prev[i]
		}
	}
	return d
}

// histQuantile is the q-quantile of a histogram of counts in buckets
// (len(buckets) = len(counts)+1, bucket i is [buckets[i], buckets[i+1])):
// the upper bound of the bucket the quantile falls in (its lower bound for
// the last, unbounded one), 0 for an empty histogram.
func histQuantile(counts []uint64, buckets []float64, q float64) float64 {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen >= rank {
			if hi := buckets[i+1]; !math.IsInf(hi, 1) {
				return hi
			}
			return max(buckets[i], 0)
		}
	}
	return 0
}
