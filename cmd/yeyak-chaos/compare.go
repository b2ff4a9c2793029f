package main

import (
	"math/rand/v2"
	"slices"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// comparison is the booking p99 of cached people during a fault against
// the healthy p99.
type comparison struct {
	healthyP99, faultP99 float64 // ms
	healthyN, faultN     int64
	ratio                float64 // faultP99 / healthyP99
	// lower is the one-sided 95% lower confidence bound of the ratio
	// (bootstrap): the ratio the data show at least, given how few calls
	// a p99 rests on.
	lower float64
}

// exceeds reports whether the data show the fault's p99 beyond factor ×
// the healthy p99: the ratio's 95% lower bound is over factor. With
// thousands of calls the bound is the ratio itself; with a few hundred on
// a busy machine one slow moment can move a p99 by 50% on its own, and a
// verdict on the bare ratio would be a coin toss.
func (c comparison) exceeds(factor float64) bool { return c.lower > factor }

// compareP99 compares the p99 of two latency histograms (µs) with a
// bootstrap of the ratio: resample both sides with replacement, take the
// ratio of their p99s, 2000 times; the 5th percentile of those ratios is
// the lower bound. The RNG is seeded: a verdict is reproducible.
func compareP99(healthy, fault *hdrhistogram.Histogram) comparison {
	c := comparison{healthyN: healthy.TotalCount(), faultN: fault.TotalCount()}
	h, f := values(healthy), values(fault)
	if len(h) == 0 || len(f) == 0 {
		return c
	}
	c.healthyP99, c.faultP99 = p99(h)/1000, p99(f)/1000
	c.ratio = c.faultP99 / c.healthyP99
	r := rand.New(rand.NewPCG(1, 2))
	const rounds = 2000
	ratios := make([]float64, rounds)
	for i := range ratios {
		ratios[i] = resampledP99(f, r) / resampledP99(h, r)
	}
	slices.Sort(ratios)
	c.lower = ratios[rounds/20]
	return c
}

// values lists a histogram's recorded values (each bucket's
// representative value, as often as it was recorded), sorted.
func values(h *hdrhistogram.Histogram) []float64 {
	var out []float64
	for _, b := range h.Distribution() {
		for range b.Count {
			out = append(out, float64(b.From+b.To)/2)
		}
	}
	slices.Sort(out)
	return out
}

// p99Rank is the 1-based nearest rank of the p99 among n values.
func p99Rank(n int) int { return max(1, min(int(0.99*float64(n)+0.5), n)) }

// p99 of sorted values, nearest rank.
func p99(sorted []float64) float64 { return sorted[p99Rank(len(sorted))-1] }

// resampledP99 is the p99 of a resample (with replacement) of sorted: the
// k-th largest of len(sorted) random indexes, kept in a small min-heap, so
// no resample is ever sorted.
func resampledP99(sorted []float64, r *rand.Rand) float64 {
	n := len(sorted)
	k := n - p99Rank(n) + 1
	heap := make([]int, 0, k)
	for range n {
		x := r.IntN(n)
		switch {
		case len(heap) < k:
			heap = append(heap, x)
			for i := len(heap) - 1; i > 0 && heap[(i-1)/2] > heap[i]; i = (i - 1) / 2 {
				heap[i], heap[(i-1)/2] = heap[(i-1)/2], heap[i]
			}
		case x > heap[0]:
			heap[0] = x
			for i := 0; ; {
				m, l, rr := i, 2*i+1, 2*i+2
				if l < k && heap[l] < heap[m] {
					m = l
				}
				if rr < k && heap[rr] < heap[m] {
					m = rr
				}
				if m == i {
					break
				}
				heap[i], heap[m] = heap[m], heap[i]
				i = m
			}
		}
	}
	return sorted[heap[0]]
}

// judge fails v when the fault side's p99 exceeds factor × the healthy
// side's beyond what the samples can tell apart, or when either side has
// fewer than minSamples calls; who names the people compared ("cached
// people's", "admitted people's") and under what ("under the fault", "").
func (c comparison) judge(v *verdict, factor float64, minSamples int64, who, under string) {
	switch {
	case c.healthyN < minSamples || c.faultN < minSamples:
		v.fail("p99: too few booking calls to compare (healthy twin %d, %s %d, need %d each)", c.healthyN, who, c.faultN, minSamples)
	case c.exceeds(factor):
		v.fail("p99: %s booking p99 %.1f ms%s is over %.1f× the healthy twin's %.1f ms (%.2f×, at least %.2f× at 95%%)",
			who, c.faultP99, under, factor, c.healthyP99, c.ratio, c.lower)
	case c.ratio > factor:
		v.figure("p99 ratio over %.1f× but within what %d and %d calls can tell apart", factor, c.healthyN, c.faultN)
	}
}
