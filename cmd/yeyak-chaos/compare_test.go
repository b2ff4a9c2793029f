package main

import (
	"math/rand/v2"
	"testing"

	"github.com/HdrHistogram/hdrhistogram-go"
)

func hist(n int, scale float64, seed uint64) *hdrhistogram.Histogram {
	h := hdrhistogram.New(1, 600_000_000, 3)
	r := rand.New(rand.NewPCG(seed, 0))
	for range n {
		// Booking-like latencies: ~5 ms typical, a long tail.
		_ = h.RecordValue(int64(scale * 1000 * (3 + r.ExpFloat64()*4)))
	}
	return h
}

func TestResampledP99(t *testing.T) {
	// Resampling a sorted list: the p99 of a resample is one of its values,
	// and over many resamples it centres on the list's own p99.
	vals := make([]float64, 1000)
	for i := range vals {
		vals[i] = float64(i)
	}
	r := rand.New(rand.NewPCG(3, 4))
	sum := 0.0
	for range 500 {
		sum += resampledP99(vals, r)
	}
	if mean := sum / 500; mean < 975 || mean > 995 {
		t.Errorf("mean resampled p99 %.1f, want ≈ p99 = %v", mean, p99(vals))
	}
	if got := resampledP99([]float64{7}, r); got != 7 {
		t.Errorf("one value: %v", got)
	}
}

func TestCompareP99(t *testing.T) {
	same := compareP99(hist(200, 1, 1), hist(200, 1, 2))
	if same.exceeds(1.5) {
		t.Errorf("two draws of one distribution judged different: %+v", same)
	}
	if same.lower > same.ratio {
		t.Errorf("lower bound %v above the ratio %v", same.lower, same.ratio)
	}
	slow := compareP99(hist(200, 1, 1), hist(200, 3, 2))
	if !slow.exceeds(1.5) {
		t.Errorf("a fault 3× slower passed: %+v", slow)
	}
	if slow.ratio < 2.5 || slow.ratio > 3.5 {
		t.Errorf("ratio %v, want about 3", slow.ratio)
	}
	// Many calls: the bound closes in on the ratio.
	big := compareP99(hist(5000, 1, 1), hist(5000, 1.8, 2))
	if !big.exceeds(1.5) || big.ratio-big.lower > 0.3 {
		t.Errorf("5,000 calls 1.8× slower: %+v", big)
	}
	if c := compareP99(hdrhistogram.New(1, 10, 1), hist(10, 1, 1)); c.exceeds(1.5) || c.healthyN != 0 {
		t.Errorf("empty side: %+v", c)
	}
}

// TestJudge: too few calls fails, a p99 over the factor beyond the
// samples' doubt fails, one over it within the doubt is only a figure,
// one under it is nothing.
func TestJudge(t *testing.T) {
	tests := []struct {
		name           string
		c              comparison
		fails, figures int
	}{
		{"too few", comparison{healthyN: 10, faultN: 900, ratio: 1, lower: 1}, 1, 0},
		{"over beyond doubt", comparison{healthyN: 900, faultN: 900, ratio: 3, lower: 2.5}, 1, 0},
		{"over within doubt", comparison{healthyN: 900, faultN: 900, ratio: 1.6, lower: 1.2}, 0, 1},
		{"under", comparison{healthyN: 900, faultN: 900, ratio: 1.1, lower: 0.9}, 0, 0},
	}
	for _, tt := range tests {
		v := &verdict{}
		tt.c.judge(v, 1.5, 500, "admitted people's", "")
		if len(v.failures) != tt.fails || len(v.figures) != tt.figures {
			t.Errorf("%s: failures %q figures %q", tt.name, v.failures, v.figures)
		}
	}
}
