package load

import (
	"math"
	"testing"
	"time"
)

func TestScheduleSteady(t *testing.T) {
	s := Schedule{Shape: ShapeSteady, Rate: 40}
	for _, k := range []int{0, 1, 39, 40, 4000} {
		at, ok := s.At(k)
		want := time.Duration(float64(k) / 40 * float64(time.Second))
		if !ok || at != want {
			t.Errorf("At(%d) = %v, %v; want %v", k, at, ok, want)
		}
	}
	if n := s.Total(10 * time.Second); n != 400 {
		t.Errorf("Total(10s) = %d, want 400", n)
	}
	if n := s.Total(0); n != -1 {
		t.Errorf("Total(0) of a steady schedule = %d, want -1 (unbounded)", n)
	}
	// Total agrees with At: exactly Total(d) arrivals fall before d.
	d := 2500 * time.Millisecond
	count := 0
	for k := 0; ; k++ {
		if at, _ := s.At(k); at >= d {
			break
		}
		count++
	}
	if count != s.Total(d) {
		t.Errorf("%d arrivals before %v, Total says %d", count, d, s.Total(d))
	}
}

func TestScheduleSpike(t *testing.T) {
	const rate, tau = 1000.0, 15 * time.Second
	s := Schedule{Shape: ShapeSpike, Rate: rate, Decay: tau}
	total := int(rate * tau.Seconds()) // 15,000 people in all
	var prev time.Duration
	inTau, inMinute := 0, 0
	n := 0
	for k := 0; ; k++ {
		at, ok := s.At(k)
		if !ok {
			break
		}
		if at < prev {
			t.Fatalf("arrival %d at %v before arrival %d at %v", k, at, k-1, prev)
		}
		prev = at
		n++
		if at < tau {
			inTau++
		}
		if at < time.Minute {
			inMinute++
		}
	}
	if n != total {
		t.Fatalf("spike brought %d people, want rate×decay = %d", n, total)
	}
	// 1 − 1/e of the crowd within τ, 1 − e^−4 (98%) within 4τ = 1 minute.
	if f := float64(inTau) / float64(n); math.Abs(f-(1-math.Exp(-1))) > 0.001 {
		t.Errorf("share within τ = %.4f, want %.4f", f, 1-math.Exp(-1))
	}
	if f := float64(inMinute) / float64(n); f < 0.98 {
		t.Errorf("share within the first minute = %.4f, want ≥ 0.98", f)
	}
	// The rate decays: the first second brings far more than the 30th.
	first, later := 0, 0
	for k := 0; k < n; k++ {
		at, _ := s.At(k)
		switch {
		case at < time.Second:
			first++
		case at >= 30*time.Second && at < 31*time.Second:
			later++
		}
	}
	if first < 900 || later > first/5 {
		t.Errorf("first second %d arrivals, 31st second %d: want ~%d decaying by e^-2", first, later, int(rate))
	}
	if got := s.Total(0); got != total {
		t.Errorf("Total(0) = %d, want %d", got, total)
	}
	if got, want := s.Total(tau), inTau; got != want {
		t.Errorf("Total(τ) = %d, counted %d", got, want)
	}
}

func TestScheduleRefusesNonsense(t *testing.T) {
	for _, s := range []Schedule{{Shape: ShapeSteady}, {Shape: ShapeSpike, Rate: 10}, {Shape: ShapeClosed, Rate: 10}} {
		if _, ok := s.At(0); ok {
			t.Errorf("%+v: At(0) ok", s)
		}
	}
	if _, ok := (Schedule{Shape: ShapeSteady, Rate: 1}).At(-1); ok {
		t.Error("At(-1) ok")
	}
}
