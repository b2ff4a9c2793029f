package admission

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// arrivalProfile spreads n arrivals over 30 minutes around an opening at
// minute 10 (pre-opening window: minutes 5–10): 5% early (FIFO), 25% in the
// pre-opening window (drawn at the opening), 40% in the two minutes after
// the opening, 30% over the remaining 18 minutes.
type arrivalProfile struct {
	n    int
	segs []struct {
		from, to   int // arrival indexes [from, to)
		start, end time.Duration
	}
}

func newArrivalProfile(n int) *arrivalProfile {
	p := &arrivalProfile{n: n}
	cum := 0
	for _, s := range []struct {
		frac       float64
		start, end time.Duration
	}{
		{0.05, 0, 5 * time.Minute},
		{0.25, 5 * time.Minute, 10 * time.Minute},
		{0.40, 10 * time.Minute, 12 * time.Minute},
		{0.30, 12 * time.Minute, 30 * time.Minute},
	} {
		k := int(math.Round(s.frac * float64(n)))
		if len(p.segs) == 3 {
			k = n - cum
		}
		p.segs = append(p.segs, struct {
			from, to   int
			start, end time.Duration
		}{cum, cum + k, s.start, s.end})
		cum += k
	}
	return p
}

// at is the arrival time (offset from the start) of arrival i; monotone in i.
func (p *arrivalProfile) at(i int) time.Duration {
	for _, s := range p.segs {
		if i < s.to {
			return s.start + time.Duration(float64(s.end-s.start)*float64(i-s.from)/float64(s.to-s.from))
		}
	}
	return 30 * time.Minute
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestSimSurge is a discrete-event simulation of a launch: N arrivals over
// 30 minutes (1,000,000 by default; 10,000,000 with YEYAK_SIM_FULL=1 and
// without -short) against a booking service that serves 600 bookings/s.
// It uses the real Controller (law, draw, in-process store) on a fake
// clock. The service is a fluid queue: admitted people book at once, the
// backlog grows when admissions exceed capacity, and latency is 40 ms plus
// backlog/capacity; that latency feeds the control law.
func TestSimSurge(t *testing.T) {
	n := 1_000_000
	if os.Getenv("YEYAK_SIM_FULL") == "1" && !testing.Short() {
		n = 10_000_000
	} else if v, err := strconv.Atoi(os.Getenv("YEYAK_SIM_N")); err == nil && v > 0 {
		n = v
	} else if testing.Short() || raceEnabled {
		n = 100_000
	}
	const capacity = 600.0 // bookings per second
	const tick = 100 * time.Millisecond
	start := time.Date(2021, time.August, 9, 19, 50, 0, 0, time.UTC)
	opening := start.Add(10 * time.Minute)
	prof := newArrivalProfile(n)
	windowFrom, windowTo := prof.segs[1].from, prof.segs[1].to // the drawn arrivals

	runtime.GC()
	base := heapInUse()
	c, clk, _ := newTestController(t, func(cfg *Config) {
		cfg.Floor, cfg.Ceiling, cfg.Initial = 50, 3000, 300
		cfg.Law.Increase = 20
		cfg.Openings = []time.Time{opening}
		cfg.PreOpening = 5 * time.Minute
		cfg.ClaimWindow = 10 * time.Minute
		cfg.Logger = discardLogger()
	})
	clk.Add(start.Sub(clk.Now()))
	ms := c.store.(*memoryStore)
	ctx := context.Background()

	waits := hdrhistogram.New(1, int64(24*time.Hour/time.Millisecond), 3)
	var (
		next          int     // next arrival to join
		admittedUpTo  int64   // ranks below are accounted
		sumD2         float64 // Spearman: Σ (arrival rank − admission rank)²
		maxWait       time.Duration
		fifoViolation int
		lastOutside   = -1
		backlog       float64
		peakHeap      uint64
		peakWaiting   int64
		heapAtPeakW   uint64
		rateMin       = math.Inf(1)
		rateMax       float64
		latencyHist   = hdrhistogram.New(1, 600_000, 3) // ms
		sampleEvery   = int64(10 * time.Second / tick)
		steps         int64
		busy          time.Duration // time with people waiting to be admitted
		busyAdmitted  int64
	)
	wall := time.Now()
	for now := start; ; now = now.Add(tick) {
		// Arrivals up to now join at their own times (Join advances the line
		// lazily, as in production).
		for next < n && !start.Add(prof.at(next)).After(now) {
			clk.Add(start.Add(prof.at(next)).Sub(clk.Now()))
			if _, err := c.Join(ctx, "person-"+strconv.Itoa(next)); err != nil {
				t.Fatal(err)
			}
			next++
		}
		clk.Add(now.Sub(clk.Now()))
		st := c.advance(ctx, now, true)
		steps++

		// The service: admissions since the last tick book now.
		admitted := st.Admitted - admittedUpTo
		if st.Waiting > 0 {
			busy += tick
			busyAdmitted += admitted
		}
		lat := 40*time.Millisecond + time.Duration(backlog/capacity*float64(time.Second))
		backlog = max(0, backlog+float64(admitted)-capacity*tick.Seconds())
		for range admitted {
			c.ObserveWrite(lat, lat > 5*time.Second)
		}
		if admitted > 0 {
			_ = latencyHist.RecordValue(int64(lat / time.Millisecond))
		}
		r := c.Rate()
		rateMin, rateMax = min(rateMin, r), max(rateMax, r)

		// Account each newly admitted person: wait and rank displacement.
		ms.mu.Lock()
		for rank := admittedUpTo; rank < st.Admitted; rank++ {
			seq := int(ms.persons[ms.line[rank-int64(ms.base)]].seq) // 1-based arrival order
			arrival := seq - 1
			w := now.Sub(start.Add(prof.at(arrival)))
			_ = waits.RecordValue(max(int64(w/time.Millisecond), 1))
			maxWait = max(maxWait, w)
			d := float64(arrival) - float64(rank)
			sumD2 += d * d
			if arrival < windowFrom || arrival >= windowTo {
				if arrival < lastOutside {
					fifoViolation++
				}
				lastOutside = arrival
			}
		}
		ms.mu.Unlock()
		admittedUpTo = st.Admitted

		if st.Waiting+st.Pending > peakWaiting || steps%sampleEvery == 0 {
			h := heapInUse()
			peakHeap = max(peakHeap, h)
			if st.Waiting+st.Pending > peakWaiting {
				peakWaiting, heapAtPeakW = st.Waiting+st.Pending, h
			}
		}
		if next == n && st.Waiting == 0 && st.Pending == 0 {
			if admittedUpTo != int64(n) {
				t.Fatalf("line empty with %d of %d admitted", admittedUpTo, n)
			}
			break
		}
		if now.Sub(start) > 48*time.Hour {
			t.Fatalf("not drained after 48 h: %+v", st)
		}
	}
	drain := clk.Now().Sub(start)
	fn := float64(n)
	rho := 1 - 6*sumD2/(fn*(fn*fn-1))
	perPerson := float64(heapAtPeakW-min(heapAtPeakW, base)) / float64(max(peakWaiting, 1))
	t.Logf("simulated %d arrivals over 30 min, capacity %.0f/s, in %s wall time", n, capacity, time.Since(wall).Round(time.Millisecond))
	busyRate := float64(busyAdmitted) / busy.Seconds()
	t.Logf("last admission at +%s; admission rate while people waited %.0f/s (%.0f%% of capacity) over %s; law's rate range %.0f–%.0f/s",
		drain.Round(time.Second), busyRate, 100*busyRate/capacity, busy.Round(time.Second), rateMin, rateMax)
	t.Logf("wait: max %s, p50 %s, p99 %s", maxWait.Round(time.Second),
		(time.Duration(waits.ValueAtQuantile(50)) * time.Millisecond).Round(time.Second),
		(time.Duration(waits.ValueAtQuantile(99)) * time.Millisecond).Round(time.Second))
	t.Logf("booking latency seen by admitted people (per tick): p50 %d ms, p99 %d ms, max %d ms",
		latencyHist.ValueAtQuantile(50), latencyHist.ValueAtQuantile(99), latencyHist.Max())
	t.Logf("fairness: Spearman rank correlation arrival vs admission %.6f; FIFO violations outside the pre-opening window %d",
		rho, fifoViolation)
	t.Logf("memory: peak heap in use %.1f MiB above baseline; %d waiting at the peak, %.0f bytes per waiting person",
		float64(peakHeap-min(peakHeap, base))/(1<<20), peakWaiting, perPerson)

	if fifoViolation != 0 {
		t.Errorf("%d people outside the pre-opening window were admitted out of arrival order", fifoViolation)
	}
	if rho < 0.9 {
		t.Errorf("rank correlation %.4f, want ≥ 0.9 (only the pre-opening quarter is shuffled)", rho)
	}
	if n >= 1_000_000 && busyRate < 0.8*capacity {
		t.Errorf("admission rate while people waited %.0f/s is below 80%% of capacity", busyRate)
	}
	if n >= 1_000_000 && !raceEnabled && perPerson > 200 {
		t.Errorf("%.0f bytes per waiting person, want ≤ 200", perPerson)
	}
	if p99 := latencyHist.ValueAtQuantile(99); p99 > 2000 {
		t.Errorf("booking latency p99 %d ms: the control law let the service overload", p99)
	}
}

// BenchmarkMemory1MWaiting measures the in-process store's memory for
// 1,000,000 waiting people (bytes/person is heap in use per person).
func BenchmarkMemory1MWaiting(b *testing.B) {
	const people = 1_000_000
	ctx := context.Background()
	for b.Loop() {
		runtime.GC()
		before := heapInUse()
		s := NewMemoryStore()
		for i := range people {
			if _, _, err := s.Join(ctx, pk(i), time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		after := heapInUse()
		b.ReportMetric(float64(after-before)/people, "bytes/person")
		b.ReportMetric(float64(after-before)/(1<<20), "MiB/1M")
		runtime.KeepAlive(s)
	}
}

// BenchmarkPoll measures one poll (ticket verification + place lookup +
// status with a fresh ticket) with 1,000,000 people waiting.
func BenchmarkPoll(b *testing.B) {
	c, _, _ := newTestController(b, func(cfg *Config) { cfg.Logger = discardLogger() })
	ctx := context.Background()
	var last Status
	for i := range 1_000_000 {
		s, err := c.Join(ctx, fmt.Sprint("p", i))
		if err != nil {
			b.Fatal(err)
		}
		if i == 999_999 {
			last = s
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Poll(ctx, "p999999", last.Ticket); err != nil {
			b.Fatal(err)
		}
	}
}
