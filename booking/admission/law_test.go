package admission

import (
	"testing"
	"time"
)

func testLaw() Law {
	l := Config{Keys: []Key{keyA}, PersonFunc: headerPerson, Ceiling: 500}
	c, _ := l.withDefaults()
	return c.Law
}

func TestLawDecide(t *testing.T) {
	l := testLaw()
	healthy := window{Samples: 100, P90: 100 * time.Millisecond, P99: 300 * time.Millisecond}
	with := func(f func(*window)) window { w := healthy; f(&w); return w }
	tests := []struct {
		name        string
		w           window
		constrained bool
		want        Verdict
	}{
		{"healthy and people waiting", healthy, true, VerdictIncrease},
		{"healthy, rate not the constraint", healthy, false, VerdictHold},
		{"p99 over target", with(func(w *window) { w.P99 = 2 * time.Second }), true, VerdictDecrease},
		{"p90 over target", with(func(w *window) { w.P90 = 400 * time.Millisecond }), true, VerdictDecrease},
		{"error rate over max", with(func(w *window) { w.ErrorRate = 0.05 }), true, VerdictDecrease},
		{"pool wait over max", with(func(w *window) { w.PoolP90 = 80 * time.Millisecond }), true, VerdictDecrease},
		{"too few samples", window{Samples: 5, P99: 5 * time.Second}, true, VerdictHold},
		{"few samples but pool saturated", window{Samples: 5, PoolP90: time.Second}, true, VerdictDecrease},
		{"at the targets is healthy", with(func(w *window) { w.P90, w.P99 = l.TargetP90, l.TargetP99 }), true, VerdictIncrease},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := l.decide(tt.w, tt.constrained); got != tt.want {
				t.Fatalf("decide = %s, want %s", got, tt.want)
			}
		})
	}
}

func feed(a *aimd, n int, lat time.Duration, failed bool) {
	for range n {
		a.observe(lat, failed)
	}
}

func TestAIMDTick(t *testing.T) {
	l := testLaw() // Increase = 10, Decrease = 0.7, Interval 1 s
	a := newAIMD(l, 20, 500, 100)
	now := t0
	if _, _, _, ev := a.tick(now); ev {
		t.Fatal("first tick only starts the window")
	}
	step := func(n int, lat time.Duration, failed, constrained bool) float64 {
		feed(a, n, lat, failed)
		if constrained {
			a.markConstrained()
		}
		now = now.Add(time.Second)
		r, _, _, ev := a.tick(now)
		if !ev {
			t.Fatal("tick after an interval did not evaluate")
		}
		return r
	}
	if r := step(50, 50*time.Millisecond, false, true); r != 110 {
		t.Fatalf("healthy, constrained: rate %g, want 110 (additive +10)", r)
	}
	if r := step(50, 50*time.Millisecond, false, false); r != 110 {
		t.Fatalf("healthy, unconstrained: rate %g, want 110 (hold)", r)
	}
	if r := step(50, 3*time.Second, false, true); r != 77 {
		t.Fatalf("slow: rate %g, want 77 (×0.7)", r)
	}
	if r := step(50, 10*time.Millisecond, true, true); r != 77*0.7 {
		t.Fatalf("failing: rate %g, want %g", r, 77*0.7)
	}
	for range 10 {
		step(50, 3*time.Second, false, true)
	}
	if r := a.current(); r != 20 {
		t.Fatalf("after many decreases rate %g, want floor 20", r)
	}
	for range 100 {
		step(50, time.Millisecond, false, true)
	}
	if r := a.current(); r != 500 {
		t.Fatalf("after many increases rate %g, want ceiling 500", r)
	}
	// Pool wait alone decreases.
	for range 30 {
		a.observePoolWait(200 * time.Millisecond)
	}
	if r := step(50, time.Millisecond, false, true); r != 350 {
		t.Fatalf("pool saturated: rate %g, want 350", r)
	}
	// Within an interval nothing is evaluated.
	feed(a, 50, 3*time.Second, false)
	if _, _, _, ev := a.tick(now.Add(500 * time.Millisecond)); ev {
		t.Fatal("evaluated before the interval ended")
	}
}
