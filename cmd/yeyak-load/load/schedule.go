package load

import (
	"math"
	"time"
)

// Schedule gives the arrival time of each person of an open-loop run,
// measured from the start. Arrivals are spaced evenly in the cumulative
// arrival intensity, so a run is reproducible and its shape exact; they
// never wait for answers (a slow target does not slow the crowd, which is
// what keeps latency figures free of coordinated omission).
type Schedule struct {
	// Shape is ShapeSteady or ShapeSpike.
	Shape Shape
	// Rate is people per second (the initial rate of a spike). Must be > 0.
	Rate float64
	// Decay is the spike's time constant. Must be > 0 for a spike.
	Decay time.Duration
}

// At returns when the k-th person (from 0) arrives, and false when the
// shape brings no k-th person (a spike brings Rate×Decay people in all).
//
// Steady: k/Rate. Spike: the intensity is Rate·e^(−t/τ), whose integral
// Λ(t) = Rate·τ·(1 − e^(−t/τ)) reaches k at t = −τ·ln(1 − k/(Rate·τ)).
func (s Schedule) At(k int) (time.Duration, bool) {
	if k < 0 || s.Rate <= 0 {
		return 0, false
	}
	switch s.Shape {
	case ShapeSteady:
		return time.Duration(float64(k) / s.Rate * float64(time.Second)), true
	case ShapeSpike:
		tau := s.Decay.Seconds()
		total := s.Rate * tau
		if tau <= 0 || float64(k) >= total {
			return 0, false
		}
		t := -tau * math.Log(1-float64(k)/total)
		return time.Duration(t * float64(time.Second)), true
	}
	return 0, false
}

// Total returns how many people the schedule brings within d (d <= 0:
// the whole schedule; for a steady schedule that is unbounded, -1).
func (s Schedule) Total(d time.Duration) int {
	switch s.Shape {
	case ShapeSteady:
		if d <= 0 || s.Rate <= 0 {
			return -1
		}
		return int(math.Ceil(s.Rate * d.Seconds()))
	case ShapeSpike:
		tau := s.Decay.Seconds()
		if tau <= 0 || s.Rate <= 0 {
			return 0
		}
		total := s.Rate * tau
		if d > 0 {
			total *= 1 - math.Exp(-d.Seconds()/tau)
		}
		return int(math.Ceil(total))
	}
	return 0
}
