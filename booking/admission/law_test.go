package admission

import (
	"math"
	"testing"
	"time"
)

func testLaw() Law {
	l := Config{Keys: []Key{keyA}, PersonFunc: headerPerson, Ceiling: 500, Law: Law{Increase: 10}}
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
		// The host out of CPU: goroutines wait to run before the latencies show it.
		{"scheduling latency over max", with(func(w *window) { w.Sched = l.MaxSchedLatency + time.Millisecond }), true, VerdictDecrease},
		{"scheduling latency past the headroom: hold", with(func(w *window) { w.Sched = l.MaxSchedLatency*3/4 + time.Millisecond }), true, VerdictHold},
		{"scheduling latency within the headroom: increase", with(func(w *window) { w.Sched = l.MaxSchedLatency / 2 }), true, VerdictIncrease},
		{"too few samples, one slow", window{Samples: 5, P99: 5 * time.Second}, true, VerdictHold},
		{"too few samples, all fast, people held back: increase", window{Samples: 5, P90: 10 * time.Millisecond, P99: 20 * time.Millisecond}, true, VerdictIncrease},
		{"too few samples, all fast, nobody held back", window{Samples: 5, P90: 10 * time.Millisecond, P99: 20 * time.Millisecond}, false, VerdictHold},
		{"no samples at all", window{}, true, VerdictHold},
		{"few samples but out of CPU", window{Samples: 5, Sched: time.Second}, true, VerdictDecrease},
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
		// The gradient: writes' p90 against its recent best.
		{"writes within the gradient of their best", with(func(w *window) {
			w.Writes, w.WriteP90, w.WriteP99, w.WriteBase = 30, 80*time.Millisecond, 100*time.Millisecond, 20*time.Millisecond
		}), true, VerdictIncrease},
		{"writes queueing past the gradient: hold", with(func(w *window) {
			w.Writes, w.WriteP90, w.WriteP99, w.WriteBase = 30, 81*time.Millisecond, 100*time.Millisecond, 20*time.Millisecond
		}), true, VerdictHold},
		{"no baseline yet: the targets alone", with(func(w *window) { w.Writes, w.WriteP90, w.WriteP99 = 30, 100*time.Millisecond, 100*time.Millisecond }), true, VerdictIncrease},
		{"too few writes for the gradient", with(func(w *window) {
			w.Writes, w.WriteP90, w.WriteP99, w.WriteBase = 19, 100*time.Millisecond, 100*time.Millisecond, 10*time.Millisecond
		}), true, VerdictIncrease},
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
	// The next window settles; the one after starts empty.
	if _, v, _, _ := a.tick(t0.Add(2 * time.Second)); v != VerdictSettle {
		t.Fatalf("the window after a decrease: %s, want settle", v)
	}
	feed(a, 300, time.Millisecond, false)
	a.markConstrained()
	if r, v, w, _ := a.tick(t0.Add(3 * time.Second)); v != VerdictIncrease || w.Writes != 0 {
		t.Fatalf("after reset: rate %g, %s, window %+v", r, v, w)
	}
}

// TestAIMDSchedWindow: a window keeps the highest scheduling latency the
// host reported in it, judges it, and the next window starts from none.
func TestAIMDSchedWindow(t *testing.T) {
	l := testLaw()
	a := newAIMD(l, 20, 500, 100)
	a.tick(t0)
	feed(a, 50, 50*time.Millisecond, false)
	a.markConstrained()
	for _, d := range []time.Duration{5 * time.Millisecond, l.MaxSchedLatency * 2, time.Millisecond} {
		a.observeSched(d)
	}
	r, v, w, _ := a.tick(t0.Add(time.Second))
	if w.Sched != l.MaxSchedLatency*2 || v != VerdictDecrease || r != 70 {
		t.Fatalf("window %+v: %s to %g, want the highest scheduling latency (%v) and a decrease to 70", w, v, r, l.MaxSchedLatency*2)
	}
	feed(a, 50, 50*time.Millisecond, false)
	a.markConstrained()
	if _, v, w, _ = a.tick(t0.Add(4 * time.Second)); w.Sched != 0 || v != VerdictIncrease {
		t.Fatalf("next window %+v: %s, want no scheduling latency carried over and an increase", w, v)
	}
}

func TestAIMDTick(t *testing.T) {
	l := testLaw() // Increase = 10, Decrease = 0.7, Interval 1 s, Settle 2 s, Probe 0.1
	a := newAIMD(l, 20, 500, 100)
	now := t0
	if _, _, _, ev := a.tick(now); ev {
		t.Fatal("first tick only starts the window")
	}
	step := func(n int, lat time.Duration, failed, constrained bool) (float64, Verdict) {
		t.Helper()
		feed(a, n, lat, failed)
		if constrained {
			a.markConstrained()
		}
		now = now.Add(time.Second)
		r, v, _, ev := a.tick(now)
		if !ev {
			t.Fatal("tick after an interval did not evaluate")
		}
		return r, v
	}
	if r, _ := step(50, 50*time.Millisecond, false, true); r != 110 {
		t.Fatalf("healthy, constrained: rate %g, want 110 (additive +10)", r)
	}
	if r, _ := step(50, 50*time.Millisecond, false, false); r != 110 {
		t.Fatalf("healthy, unconstrained: rate %g, want 110 (hold)", r)
	}
	if r, v := step(50, 3*time.Second, false, true); r != 77 || v != VerdictDecrease {
		t.Fatalf("slow: rate %g (%s), want 77 (×0.7)", r, v)
	}
	// The people admitted before the decrease still book slowly: within
	// Settle the law does not judge them again.
	if r, v := step(50, 3*time.Second, true, true); r != 77 || v != VerdictSettle {
		t.Fatalf("slow and failing within Settle: rate %g (%s), want 77 (settle)", r, v)
	}
	if r, v := step(50, 10*time.Millisecond, true, true); r != 77*0.7 || v != VerdictDecrease {
		t.Fatalf("failing after Settle: rate %g (%s), want %g", r, v, 77*0.7)
	}
	for range 20 {
		step(50, 3*time.Second, false, true)
	}
	if r := a.current(); r != 20 {
		t.Fatalf("after many decreases rate %g, want floor 20", r)
	}
	for range 200 {
		step(50, time.Millisecond, false, true)
	}
	if r := a.current(); r != 500 {
		t.Fatalf("after many increases rate %g, want ceiling 500", r)
	}
	// Pool wait alone decreases.
	for range 30 {
		a.observePoolWait(200 * time.Millisecond)
	}
	if r, _ := step(50, time.Millisecond, false, true); r != 350 {
		t.Fatalf("pool saturated: rate %g, want 350", r)
	}
	// Within an interval nothing is evaluated.
	feed(a, 50, 3*time.Second, false)
	if _, _, _, ev := a.tick(now.Add(500 * time.Millisecond)); ev {
		t.Fatal("evaluated before the interval ended")
	}
}

// TestLawStepNearTheKnee: full steps far below the rate of the last
// decrease, shrinking toward it, Probe at and past it.
func TestLawStepNearTheKnee(t *testing.T) {
	l := testLaw() // Increase 10, Decrease 0.7, Probe 0.1
	for _, tt := range []struct {
		rate, knee, want float64
	}{
		{100, 0, 10},    // no knee: the full step
		{70, 100, 10},   // where the decrease put the rate: full
		{50, 100, 10},   // further below: full
		{85, 100, 5},    // halfway back: half
		{97, 100, 1},    // near it: the probe step
		{100, 100, 1},   // at it: probe
		{105, 100, 1},   // past it: probe
		{99.5, 100, 1},  // never below the probe step
		{91, 100, 3},    // 9/30 of the way left
		{700, 1000, 10}, // scales with the knee
	} {
		if got := l.step(tt.rate, tt.knee); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("step(rate %g, knee %g) = %g, want %g", tt.rate, tt.knee, got, tt.want)
		}
	}
}

// TestAIMDClimbsBackToTheKnee: after a decrease at 200/s the rate climbs
// back in shrinking steps, passes the knee by probe steps and, a tenth
// past it, forgets it and climbs at full steps again.
func TestAIMDClimbsBackToTheKnee(t *testing.T) {
	l := testLaw()
	a := newAIMD(l, 20, 500, 200)
	now := t0
	a.tick(now)
	tick := func(lat time.Duration) (float64, Verdict) {
		feed(a, 50, lat, false)
		a.markConstrained()
		now = now.Add(time.Second)
		r, v, _, _ := a.tick(now)
		return r, v
	}
	if r, _ := tick(3 * time.Second); r != 140 {
		t.Fatalf("decrease: rate %g, want 140", r)
	}
	tick(time.Millisecond) // settle
	var rates []float64
	for range 40 {
		r, v := tick(time.Millisecond)
		if v != VerdictIncrease {
			t.Fatalf("healthy after settling: %s", v)
		}
		rates = append(rates, r)
	}
	if rates[0] != 150 {
		t.Fatalf("first step back %g, want 150 (a full step from 140)", rates[0])
	}
	reached := -1
	for i := 1; i < len(rates); i++ {
		d := rates[i] - rates[i-1]
		switch {
		case rates[i-1] < 200 && (d > 10+1e-9 || d < 1-1e-9):
			t.Fatalf("step %d from %g: %g, want within [probe 1, full 10]", i, rates[i-1], d)
		case i > 1 && rates[i-1] < 200 && d > rates[i-1]-rates[i-2]+1e-9:
			t.Fatalf("steps grow below the knee: %v", rates[:i+1])
		}
		if rates[i-1] >= 185 && rates[i-1] < 200 && d > 5+1e-9 {
			t.Fatalf("step from %g: %g, want at most half a step within the last half of the way: %v", rates[i-1], d, rates[:i+1])
		}
		if reached < 0 && rates[i] >= 200 {
			reached = i
		}
	}
	if reached < 0 {
		t.Fatalf("never climbed back to the knee: %v", rates)
	}
	// Probing past the knee by a tenth (20/s at 1/s a step) forgets it.
	last := rates[len(rates)-1]
	if last < 220 || last-rates[len(rates)-2] != 10 {
		t.Fatalf("rates %v: want the knee forgotten past 220 and full steps again", rates)
	}
}

func feedWrites(a *aimd, n int, lat time.Duration) {
	for range n {
		a.observe(lat, false, true)
	}
}

// TestAIMDGradientBaseline: the writes' best p90 is kept over the last
// BaselineWindows windows with enough writes; past the gradient the rate
// holds, and a baseline that ages out no longer holds it.
func TestAIMDGradientBaseline(t *testing.T) {
	l := testLaw() // Gradient 4, MinSamples 20
	a := newAIMD(l, 20, 500, 100)
	now := t0
	a.tick(now)
	tick := func(writes int, lat time.Duration) (float64, Verdict, window) {
		t.Helper()
		feedWrites(a, writes, lat)
		a.markConstrained()
		now = now.Add(time.Second)
		r, v, w, ev := a.tick(now)
		if !ev {
			t.Fatal("not evaluated")
		}
		return r, v, w
	}
	if _, v, w := tick(30, 10*time.Millisecond); v != VerdictIncrease || w.WriteBase < 9*time.Millisecond || w.WriteBase > 11*time.Millisecond {
		t.Fatalf("first window: %s, base %v, want increase at base 10 ms", v, w.WriteBase)
	}
	// Few writes do not set the baseline.
	if _, _, w := tick(5, time.Millisecond); w.WriteBase < 9*time.Millisecond {
		t.Fatalf("5 writes set the baseline to %v", w.WriteBase)
	}
	if r, v, _ := tick(30, 60*time.Millisecond); v != VerdictHold || r != 120 {
		t.Fatalf("writes at 6× their best: rate %g (%s), want a hold at 120 (the 5-write window increased: few samples, all fast, people held back)", r, v)
	}
	if _, v, _ := tick(30, 38*time.Millisecond); v != VerdictIncrease {
		t.Fatalf("writes at 3.8× their best: %s, want increase", v)
	}
	// BaselineWindows windows later the 10 ms window is forgotten.
	for range BaselineWindows - 2 {
		tick(30, 60*time.Millisecond)
	}
	if _, _, w := tick(30, 60*time.Millisecond); w.WriteBase < 37*time.Millisecond || w.WriteBase > 39*time.Millisecond {
		t.Fatalf("after %d windows the base is %v, want the 38 ms window's", BaselineWindows, w.WriteBase)
	}
}
