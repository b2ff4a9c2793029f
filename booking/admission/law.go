package admission

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Verdict is what one evaluation of the control law decided.
type Verdict string

// Verdicts of the control law.
const (
	VerdictHold     Verdict = "hold"     // too few samples, or healthy but the rate was not the constraint
	VerdictIncrease Verdict = "increase" // healthy and people waiting: additive increase
	VerdictDecrease Verdict = "decrease" // a target exceeded: multiplicative decrease
	VerdictSettle   Verdict = "settle"   // within Settle of a decrease: not judged, the rate holds
)

// aimd is the adaptive admission rate: additive increase, multiplicative
// decrease, fed by windows of booking-path latency, errors and pool wait.
type aimd struct {
	law            Law
	floor, ceiling float64

	mu          sync.Mutex
	rate        float64
	windowStart time.Time
	latency     *hdrhistogram.Histogram // microseconds, every request
	writes      *hdrhistogram.Histogram // microseconds, booking writes only
	poolWait    *hdrhistogram.Histogram // microseconds
	sched       time.Duration           // the highest scheduling latency observed
	requests    int64
	errors      int64
	constrained bool // people waited (or free flow refused) during the window
	// knee is the rate the last decrease was taken at (0: none, or
	// forgotten): increases slow as the rate nears it.
	knee        float64
	settleUntil time.Time
	// best holds the writes' p90 of the last BaselineWindows windows with
	// MinSamples writes or more, a ring (see Law.Gradient).
	best     [BaselineWindows]time.Duration
	bestNext int
}

// window is the health of one evaluation interval.
type window struct {
	Samples   int64
	P90, P99  time.Duration
	ErrorRate float64
	PoolP90   time.Duration
	// Sched is the highest scheduling latency the host reported
	// (ObserveSchedLatency) in the window, 0 for none.
	Sched time.Duration
	// Writes are the booking writes among the samples, judged on their
	// own: a flow's cheap reads (clinic lists from memory) outnumber its
	// bookings ten to one and would hide slow bookings in P90 and P99.
	Writes             int64
	WriteP90, WriteP99 time.Duration
	// WriteBase is the lowest writes' p90 of the recent windows (0: none
	// yet), the floor Law.Gradient measures from.
	WriteBase time.Duration
}

func newAIMD(law Law, floor, ceiling, initial float64) *aimd {
	return &aimd{
		law: law, floor: floor, ceiling: ceiling, rate: initial,
		latency:  hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 2),
		writes:   hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 2),
		poolWait: hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 2),
	}
}

func micros(d time.Duration) int64 {
	return max(int64(d/time.Microsecond), 1)
}

// observe records one booking-path request; write says it is a booking
// write (book, change, cancel), whose latency is also judged on its own.
func (a *aimd) observe(latency time.Duration, failed, write bool) {
	us := min(micros(latency), a.latency.HighestTrackableValue())
	a.mu.Lock()
	_ = a.latency.RecordValue(us)
	if write {
		_ = a.writes.RecordValue(us)
	}
	a.requests++
	if failed {
		a.errors++
	}
	a.mu.Unlock()
}

// observePoolWait records one database pool wait.
func (a *aimd) observePoolWait(d time.Duration) {
	a.mu.Lock()
	_ = a.poolWait.RecordValue(min(micros(d), a.poolWait.HighestTrackableValue()))
	a.mu.Unlock()
}

// observeSched records the host's scheduling latency over its last
// sampling period; the window keeps the highest.
func (a *aimd) observeSched(d time.Duration) {
	a.mu.Lock()
	a.sched = max(a.sched, d)
	a.mu.Unlock()
}

// markConstrained notes that the rate was the binding constraint.
func (a *aimd) markConstrained() {
	a.mu.Lock()
	a.constrained = true
	a.mu.Unlock()
}

// current returns the rate without evaluating.
func (a *aimd) current() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rate
}

// tick evaluates the window when Interval has passed since it started and
// returns the new rate; changed is false when no evaluation happened.
func (a *aimd) tick(now time.Time) (rate float64, v Verdict, w window, evaluated bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.windowStart.IsZero() {
		a.windowStart = now
	}
	if now.Sub(a.windowStart) < a.law.Interval {
		return a.rate, VerdictHold, window{}, false
	}
	if now.Before(a.settleUntil) {
		a.reset(now)
		return a.rate, VerdictSettle, window{}, true
	}
	w = window{Samples: a.requests}
	if a.requests > 0 {
		w.P90 = time.Duration(a.latency.ValueAtQuantile(90)) * time.Microsecond
		w.P99 = time.Duration(a.latency.ValueAtQuantile(99)) * time.Microsecond
		w.ErrorRate = float64(a.errors) / float64(a.requests)
	}
	if w.Writes = a.writes.TotalCount(); w.Writes > 0 {
		w.WriteP90 = time.Duration(a.writes.ValueAtQuantile(90)) * time.Microsecond
		w.WriteP99 = time.Duration(a.writes.ValueAtQuantile(99)) * time.Microsecond
	}
	if a.poolWait.TotalCount() > 0 {
		w.PoolP90 = time.Duration(a.poolWait.ValueAtQuantile(90)) * time.Microsecond
	}
	w.Sched = a.sched
	if w.Writes >= int64(a.law.MinSamples) {
		a.best[a.bestNext%BaselineWindows] = w.WriteP90
		a.bestNext++
	}
	w.WriteBase = a.baseline()
	v = a.law.decide(w, a.constrained)
	switch v {
	case VerdictIncrease:
		a.rate += a.law.step(a.rate, a.knee)
		if a.knee > 0 && a.rate >= 1.1*a.knee {
			a.knee = 0 // well past it without trouble: capacity grew
		}
	case VerdictDecrease:
		a.knee = a.rate
		a.rate *= a.law.Decrease
		a.settleUntil = now.Add(a.law.Settle)
	}
	a.rate = min(max(a.rate, a.floor), a.ceiling)
	a.reset(now)
	return a.rate, v, w, true
}

// baseline is the lowest writes' p90 of the recent windows, 0 for none.
func (a *aimd) baseline() time.Duration {
	var b time.Duration
	for _, d := range a.best[:min(a.bestNext, BaselineWindows)] {
		if b == 0 || d < b {
			b = d
		}
	}
	return b
}

// reset starts a new window at now.
func (a *aimd) reset(now time.Time) {
	a.latency.Reset()
	a.writes.Reset()
	a.poolWait.Reset()
	a.sched = 0
	a.requests, a.errors, a.constrained = 0, 0, false
	a.windowStart = now
}

// step is the additive increase at rate, given the knee (the rate of the
// last decrease, 0 for none): Increase far below the knee, shrinking in
// proportion to the distance left (a full step where the decrease put the
// rate, Decrease×knee) down to Probe×Increase at and past it. A linear
// climb overshoots: booking latency answers an increase seconds later
// (the people admitted still poll, sign in, search), by which time the
// rate has risen several steps more past the knee, and the law pays for
// the overshoot with seconds of slow bookings. Slowing near the knee keeps
// the overshoot to a few probe steps.
func (l Law) step(rate, knee float64) float64 {
	if knee <= 0 {
		return l.Increase
	}
	share := (knee - rate) / ((1 - l.Decrease) * knee)
	return l.Increase * min(1, max(l.Probe, share))
}

// decide is the control law on one window: unhealthy (any target exceeded,
// with enough samples) decreases; healthy with room (latencies within
// Headroom of their targets) and people waiting increases; anything else
// holds. Booking writes over the latency targets decrease
// on their own, with MinWriteSamples of them, whatever the reads say.
func (l Law) decide(w window, constrained bool) Verdict {
	writesOver := w.Writes >= int64(l.MinWriteSamples) && (w.WriteP90 > l.TargetP90 || w.WriteP99 > l.TargetP99)
	// A saturated pool or a process out of CPU shows with or without
	// latency samples.
	hostOver := w.PoolP90 > l.MaxPoolWait || w.Sched > l.MaxSchedLatency
	judged := w.Samples >= int64(l.MinSamples)
	if writesOver || hostOver || judged && (w.P90 > l.TargetP90 || w.P99 > l.TargetP99 || w.ErrorRate > l.MaxErrorRate) {
		return VerdictDecrease
	}
	// With too few samples to judge a target by, the people admitted make
	// little load (at the floor of 10/s, a flow that only checks
	// eligibility makes ten requests a second, and the rate never rose
	// while hundreds waited): the samples there are, all within room, are
	// enough to grow on; with none, the rate holds.
	if !constrained || w.Samples == 0 || !l.roomy(w) {
		return VerdictHold
	}
	return VerdictIncrease
}

// roomy says the window's latencies are all within Headroom of their
// targets: room to admit more. Between that and the targets the rate
// holds. People admitted now reach the booking step seconds later (pass,
// eligibility, search, then book), so a law that increases right up to
// the target has raised the rate for several more windows before the
// first of them books: the surge's rate climbed to 250/s and fell to the
// floor in turn, the bookings in bursts. Holding once latency rises damps
// that swing.
func (l Law) roomy(w window) bool {
	room := func(d, target time.Duration) bool { return float64(d) <= l.Headroom*float64(target) }
	if !room(w.P90, l.TargetP90) || !room(w.P99, l.TargetP99) || !room(w.Sched, l.MaxSchedLatency) {
		return false
	}
	if w.Writes < int64(l.MinWriteSamples) {
		return true
	}
	if !room(w.WriteP90, l.TargetP90) || !room(w.WriteP99, l.TargetP99) {
		return false
	}
	// Queueing often shows as the writes' latency rising from its floor
	// before it reaches the targets: in the surge's law log the writes'
	// p90 went from 10–40 ms to 80–110 ms one window before most cliffs
	// (0.3–1.7 s); not all (13 ms, then 586 ms). A single fast window
	// holds increases past 4× it until it ages out (BaselineWindows).
	return w.Writes < int64(l.MinSamples) || w.WriteBase == 0 || float64(w.WriteP90) <= l.Gradient*float64(w.WriteBase)
}
