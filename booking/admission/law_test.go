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
		{"at the targets is healthy, without room: hold", with(func(w *window) { w.P90, w.P99 = l.TargetP90, l.TargetP99 }), true, VerdictHold},
		{"p90 past the headroom: hold", with(func(w *window) { w.P90 = 200 * time.Millisecond }), true, VerdictHold},
		{"p99 at the headroom: increase", with(func(w *window) { w.P99 = 500 * time.Millisecond }), true, VerdictIncrease},
		// Reads fast, bookings slow: the mix's p90 and p99 are healthy,
		// the writes on their own are not.
		{"writes p90 over target", with(func(w *window) { w.Writes, w.WriteP90, w.WriteP99 = 8, 600*time.Millisecond, 700*time.Millisecond }), true, VerdictDecrease},
		{"writes p99 over target", with(func(w *window) { w.Writes, w.WriteP90, w.WriteP99 = 8, 100*time.Millisecond, 3*time.Second }), true, VerdictDecrease},
		{"slow writes decrease even with few reads", window{Samples: 6, Writes: 6, WriteP90: 2 * time.Second, WriteP99: 2 * time.Second}, true, VerdictDecrease},
		{"too few writes to judge", with(func(w *window) { w.Writes, w.WriteP90, w.WriteP99 = 4, 3*time.Second, 3*time.Second }), true, VerdictIncrease},
		{"healthy writes with room", with(func(w *window) { w.Writes, w.WriteP90, w.WriteP99 = 30, 100*time.Millisecond, 400*time.Millisecond }), true, VerdictIncrease},
		{"healthy writes without room: hold", with(func(w *window) { w.Writes, w.WriteP90, w.WriteP99 = 30, 200*time.Millisecond, 900*time.Millisecond }), true, VerdictHold},
		{"too few writes: their latency has no say in the room", with(func(w *window) { w.Writes, w.WriteP90 = 4, 240*time.Millisecond }), true, VerdictIncrease},
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
		a.observe(lat, failed, false)
	}
}

// TestAIMDWritesJudgedAlone: ten fast reads to every slow booking keep the
// mix's p90 and p99 under their targets; the bookings' own p90 does not.
func TestAIMDWritesJudgedAlone(t *testing.T) {
	l := testLaw()
	a := newAIMD(l, 20, 500, 100)
	a.tick(t0)
	feed(a, 300, time.Millisecond, false)
	for range 10 {
		a.observe(800*time.Millisecond, false, true)
	}
	a.markConstrained()
	r, v, w, ev := a.tick(t0.Add(time.Second))
	if !ev || v != VerdictDecrease || r != 70 {
		t.Fatalf("tick = rate %g, %s (evaluated %v), want 70 after a decrease; window %+v", r, v, ev, w)
	}
	if w.P99 > l.TargetP99 || w.P90 > l.TargetP90 {
		t.Fatalf("the mix should look healthy: %+v", w)
	}
	if w.Samples != 310 || w.Writes != 10 || w.WriteP90 < 790*time.Millisecond {
		t.Fatalf("window %+v, want 310 samples of which 10 writes at about 800 ms", w)
	}
	// The next window starts empty.
	feed(a, 300, time.Millisecond, false)
	a.markConstrained()
	if r, v, w, _ := a.tick(t0.Add(2 * time.Second)); v != VerdictIncrease || w.Writes != 0 {
		t.Fatalf("after reset: rate %g, %s, window %+v", r, v, w)
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
