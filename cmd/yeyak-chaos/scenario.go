package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/cmd/yeyak-chaos/harness"
	"github.com/yeyak/yeyak/cmd/yeyak-load/load"
	"github.com/yeyak/yeyak/mocks/registry"
)

// scenario is one fault, injected into a system under load.
type scenario struct {
	name string
	// what describes the fault in the verdict line.
	what string
	// twin scenarios run a second, healthy system beside the first.
	twin bool
	run  func(ctx context.Context, s, twin *system, v *verdict)
	// args are yeyakd flags of the scenario's systems; twinArgs more flags
	// of the twin only.
	args, twinArgs []string
}

// scenarios are the six of issue 9, in order, then issue 10's surge.
func scenarios(m Mode) []scenario {
	return []scenario{
		// The outage runs the campaign on the provisional policy (uncached
		// people book provisionally, verified once the registry is back),
		// the stall on fail_closed (they are refused with 503): both
		// policies meet a registry fault.
		{name: "registry-outage", what: fmt.Sprintf("registry down (connection refused) for %v, provisional policy", m.Fault), twin: true,
			run: registryFault(registry.Faults{Outage: true}, true), args: []string{"--demo-registry-policy", "provisional"}},
		{name: "registry-stall", what: fmt.Sprintf("registry accepts and never answers for %v, fail_closed policy", m.Fault), twin: true,
			run: registryFault(registry.Faults{Stall: true}, false)},
		// p99 2 s: 2% of calls take 1.9 s more than the usual 100 ms; half
		// capacity: beyond 8 concurrent calls (half the gateway client's 16
		// connections) every call slows down by 20 ms per call over.
		{name: "registry-slow", what: fmt.Sprintf("registry p99 2s at half capacity for %v", m.Fault), twin: true,
			run: registryFault(registry.Faults{Latency: 100 * time.Millisecond,
				LatencyTail: registry.Tail{P: 0.02, Extra: 1900 * time.Millisecond}, Capacity: 8}, false)},
		{name: "kafka-down", what: fmt.Sprintf("Kafka broker stopped for %v", m.KafkaDown), run: midStream(kafkaDown)},
		{name: "yeyakd-kill", what: "kill -9 of yeyakd, restarted", run: midStream(killYeyakd)},
		{name: "postgres-restart", what: fmt.Sprintf("PostgreSQL stopped for %v and started again", m.PostgresDown), run: midStream(restartPostgres)},
		surgeScenario(m),
	}
}

// controls are scenarios run only when --run names them: the registry
// scenario's phases with no fault at all, which shows how far the p99
// comparison moves on this machine by itself.
func controls(m Mode) []scenario {
	return []scenario{{name: "control-no-fault", what: fmt.Sprintf("no fault (the registry scenarios' phases, healthy throughout, %v)", m.Fault),
		twin: true, run: registryFault(registry.Faults{}, false)}}
}

// verdict is a scenario's outcome.
type verdict struct {
	name     string
	failures []string
	figures  []string
	settled  time.Duration
	result   *harness.Result
	booked   int64
	// stuckKeys are Idempotency-Keys left in progress (a request cut off
	// mid-flight): a retry with that key gets 409 until the key expires.
	stuckKeys int
	took      time.Duration
	// rows are figures for the report's table (label, value).
	rows [][2]string
}

// row adds a figure to the report's table.
func (v *verdict) row(label, format string, args ...any) {
	v.rows = append(v.rows, [2]string{label, fmt.Sprintf(format, args...)})
}

func (v *verdict) fail(format string, args ...any) {
	v.failures = append(v.failures, fmt.Sprintf(format, args...))
}

func (v *verdict) figure(format string, args ...any) {
	v.figures = append(v.figures, fmt.Sprintf(format, args...))
}

func (v *verdict) ok() bool { return len(v.failures) == 0 }

// line is the one-line verdict: PASS|FAIL name — figures.
func (v *verdict) line() string {
	word := "PASS"
	if !v.ok() {
		word = "FAIL"
	}
	figs := append([]string{}, v.figures...)
	figs = append(figs, fmt.Sprintf("%d booked", v.booked))
	if r := v.result; r != nil {
		figs = append(figs, fmt.Sprintf("db %d confirmed/%d cancelled", r.Confirmed, r.Cancelled),
			fmt.Sprintf("registry %d active, %d writes, %d redelivered", r.RegistryActive, r.Deliveries, r.Redelivered))
		if r.DeadLetters > 0 {
			figs = append(figs, fmt.Sprintf("%d dead letters", r.DeadLetters))
		}
	}
	if v.settled > 0 {
		figs = append(figs, fmt.Sprintf("settled in %.1fs", v.settled.Seconds()))
	}
	if v.stuckKeys > 0 {
		figs = append(figs, fmt.Sprintf("%d idempotency keys stuck in progress", v.stuckKeys))
	}
	figs = append(figs, fmt.Sprintf("%.0fs", v.took.Seconds()))
	s := fmt.Sprintf("%s %s — %s", word, v.name, strings.Join(figs, ", "))
	for _, f := range v.failures {
		s += "\n    " + f
	}
	return s
}

// cachedErrors counts the unexpected answers cached people met while
// getting to a booking (a change after booking needs the registry again:
// the booking invalidates the person's cache entry).
func cachedErrors(s *load.Summary) (n int64, which []string) {
	for k, c := range s.Errors {
		step, _, _ := strings.Cut(k, ":")
		switch step {
		case load.StepToken, load.StepEligibility, load.StepSearch, load.StepBook:
			n += c
			which = append(which, fmt.Sprintf("%s=%d", k, c))
		}
	}
	return n, which
}

// registryFault compares two identical systems under the same load at
// the same time: the scenario's, whose registry fails, and a healthy twin.
// In each, a cohort checks its eligibility first (the cache holds them);
// then, with the fault injected into the first system only, the cohort
// books while uncached people arrive beside them; the fault ends when the
// load has stopped. The cohort is people the registry knows: for the
// others the cache holds only "unknown", for NegativeTTL (a minute), which
// a long outage outlasts; they could not book anyway. The healthy p99 is
// the twin's over the same seconds, so
// whatever else the machine does at that moment weighs on both sides (a
// healthy window before or after the fault would be another moment, and on
// a shared machine moments differ by more than 1.5×).
//
// With provisional (the systems run --demo-registry-policy provisional),
// uncached people book provisionally during the fault; once the registry
// is back every such booking must end confirmed or cancelled as
// ineligible (no provisional left), and the scenario fails if the fault
// produced no provisional booking at all: the invariant was not exercised.
func registryFault(f registry.Faults, provisional bool) func(ctx context.Context, s, twin *system, v *verdict) {
	return func(ctx context.Context, s, twin *system, v *verdict) {
		m := s.mode
		cohort := people(m.Rate, m.Fault)
		type run struct {
			warm, cached, uncached *load.Summary
			err                    error
		}
		var runs [2]run
		var cohortSkip [2]int
		systems := [2]*system{s, twin}
		both := func(fn func(i int, x *system)) {
			var wg sync.WaitGroup
			for i, x := range systems {
				wg.Go(func() { fn(i, x) })
			}
			wg.Wait()
		}
		both(func(i int, x *system) {
			// The cohort passes over people the registry does not know
			// (1% of the population): reserve room for them too, so no
			// later stream meets one of the cohort.
			cohortSkip[i] = x.reserve(cohort + cohort/10 + 10)
			runs[i].warm, runs[i].err = x.load(ctx, stream{rate: 4 * m.Rate, count: cohort, skip: cohortSkip[i],
				stopAfter: load.StepEligibility, sameDigit: true, known: true})
		})
		for i := range runs {
			if runs[i].err != nil {
				v.fail("warm %s: %v", systems[i].name, runs[i].err)
				return
			}
		}
		s.logf("warmed %d people (%v)", runs[0].warm.Outcomes["checked"], runs[0].warm.Outcomes)

		if err := s.reg.SetFaults(f); err != nil {
			v.fail("inject: %v", err)
			return
		}
		both(func(i int, x *system) {
			uskip := x.reserve(people(m.Rate/4, m.Fault))
			var wg sync.WaitGroup
			var uerr error
			wg.Go(func() {
				runs[i].cached, runs[i].err = x.load(ctx, stream{rate: m.Rate, count: cohort, duration: m.Fault, skip: cohortSkip[i], sameDigit: true, known: true})
			})
			wg.Go(func() {
				// Uncached people retry 503s for a while, then give up: the
				// load stops soon after the fault's time.
				runs[i].uncached, uerr = x.load(ctx, stream{rate: m.Rate / 4, duration: m.Fault, skip: uskip, drain: m.Drain / 4})
			})
			wg.Wait()
			if runs[i].err == nil {
				runs[i].err = uerr
			}
		})
		if err := s.reg.SetFaults(registry.Faults{}); err != nil {
			v.fail("clear fault: %v", err)
		}
		for i := range runs {
			if runs[i].err != nil {
				v.fail("load on %s: %v", systems[i].name, runs[i].err)
				return
			}
		}
		faulty, healthy := runs[0], runs[1]
		v.booked = faulty.cached.Booked + faulty.uncached.Booked
		s.logf("fault: cached %d booked, outcomes %v; uncached outcomes %v errors %v",
			faulty.cached.Booked, faulty.cached.Outcomes, faulty.uncached.Outcomes, faulty.uncached.Errors)
		for _, step := range []string{load.StepEligibility, load.StepSearch, load.StepBook, load.StepQueueWait} {
			h, c := healthy.cached.Steps[step], faulty.cached.Steps[step]
			s.logf("cached people %-12s p50/p90/p99 ms: healthy twin %6.1f %6.1f %6.1f | under the fault %6.1f %6.1f %6.1f",
				step, h.P50Ms, h.P90Ms, h.P99Ms, c.P50Ms, c.P90Ms, c.P99Ms)
		}
		hh, fh := healthy.cached.Histogram(load.StepBook), faulty.cached.Histogram(load.StepBook)
		if hh == nil || fh == nil {
			v.fail("no booking calls of cached people to compare")
			return
		}
		cmp := compareP99(hh, fh)
		v.figure("book p99 of cached people: healthy twin %.1fms (%d calls) / under the fault %.1fms (%d calls): %.2f× (at least %.2f×, 95%%), limit %.1f×",
			cmp.healthyP99, cmp.healthyN, cmp.faultP99, cmp.faultN, cmp.ratio, cmp.lower, p99Factor)
		u := faulty.uncached
		v.figure("uncached people under the fault: %d of %d booked, %d answers 503 registry_unavailable",
			u.Booked, u.People.Started, u.Errors["eligibility:registry_unavailable"]+u.Errors["book:registry_unavailable"])
		cmp.judge(v, p99Factor, m.MinSamples, "cached people's", " under the fault")
		if n, which := cachedErrors(faulty.cached); n > 0 {
			v.fail("cached people met %d errors on the way to a booking during the fault: %s", n, strings.Join(which, " "))
		}
		var tv verdict
		both(func(i int, x *system) {
			if i == 0 {
				x.settleAndCheck(ctx, v)
			} else {
				x.settleAndCheck(ctx, &tv)
			}
		})
		for _, f := range tv.failures {
			v.fail("healthy twin: %s", f)
		}
		if provisional {
			p, err := s.provisionalOutcomes(ctx)
			switch {
			case err != nil:
				v.fail("provisional bookings: %v", err)
			case p.total == 0:
				v.fail("provisional policy: the fault produced no provisional booking, so their verification was not exercised")
			default:
				v.figure("%d provisional bookings (doses) during the fault, after it: %d confirmed, %d cancelled as ineligible, %d with their cancelled first dose, %d cancelled by their person, %d still provisional",
					p.total, p.confirmed, p.ineligible, p.withDose1, p.byPerson, p.left)
				if p.left > 0 || len(p.other) > 0 {
					v.fail("provisional bookings not verified: %d still provisional, cancelled for other reasons: %v", p.left, p.other)
				}
			}
		}
	}
}

// provisionals is what became of the bookings made provisionally (a
// booking of both doses makes two).
type provisionals struct {
	total, confirmed, ineligible, withDose1, byPerson, left int
	other                                                   map[string]int // cancel reason → bookings
}

// provisionalOutcomes reads, from the database, what became of every
// booking whose creation event was BookingProvisional.
func (s *system) provisionalOutcomes(ctx context.Context) (provisionals, error) {
	var p provisionals
	rows, err := s.db.QueryContext(ctx, `SELECT b.status, b.cancel_reason FROM bookings b
		WHERE b.id IN (SELECT o.payload::jsonb -> 'booking' ->> 'id' FROM outbox o WHERE o.event_type = $1)`,
		string(booking.EventBookingProvisional))
	if err != nil {
		return p, fmt.Errorf("read provisional bookings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var status, reason string
		if err := rows.Scan(&status, &reason); err != nil {
			return p, err
		}
		p.total++
		switch {
		case status == string(booking.StatusConfirmed):
			p.confirmed++
		case status == string(booking.StatusProvisional):
			p.left++
		case reason == booking.ReasonIneligible:
			p.ineligible++
		case reason == booking.ReasonDose1Cancelled:
			p.withDose1++
		case reason == booking.ReasonPerson:
			p.byPerson++
		default:
			if p.other == nil {
				p.other = map[string]int{}
			}
			p.other[reason]++
		}
	}
	return p, rows.Err()
}

// fault is injected mid-stream; the function it returns repairs it.
type fault func(ctx context.Context, s *system) (repair func(context.Context) error, err error)

// midStream runs a stream, injects the fault FaultAt into it, repairs it
// after the fault's time, lets the stream end, then checks.
func midStream(f fault) func(ctx context.Context, s, _ *system, v *verdict) {
	return func(ctx context.Context, s, _ *system, v *verdict) {
		m := s.mode
		var sum *load.Summary
		var lerr error
		done := make(chan struct{})
		go func() {
			defer close(done)
			sum, lerr = s.load(ctx, stream{rate: m.Rate, duration: m.Stream, skip: s.reserve(people(m.Rate, m.Stream))})
		}()
		select {
		case <-time.After(m.FaultAt):
		case <-done:
		}
		injected := time.Now()
		repair, err := f(ctx, s)
		if err != nil {
			v.fail("inject: %v", err)
		} else if err := repair(ctx); err != nil {
			v.fail("repair: %v", err)
		} else {
			v.figure("down %.1fs", time.Since(injected).Seconds())
		}
		<-done
		if lerr != nil {
			v.fail("load: %v", lerr)
			return
		}
		v.booked = sum.Booked
		s.logf("stream: %d booked, outcomes %v, errors %v", sum.Booked, sum.Outcomes, sum.Errors)
		v.figure("%d people, %d failed on the way", sum.People.Started, failedPeople(sum))
		if !s.y.Running() {
			v.fail("yeyakd is not running after the repair:\n%s", s.y.LogTail(20))
			return
		}
		s.settleAndCheck(ctx, v)
	}
}

func failedPeople(s *load.Summary) int64 {
	var n int64
	for k, c := range s.Outcomes {
		if strings.HasPrefix(k, "failed:") {
			n += c
		}
	}
	return n
}

func kafkaDown(_ context.Context, s *system) (func(context.Context) error, error) {
	s.kafka.Stop()
	s.logf("kafka stopped")
	return func(ctx context.Context) error {
		if !sleep(ctx, s.mode.KafkaDown) {
			return ctx.Err()
		}
		s.logf("kafka started again")
		return s.kafka.Start()
	}, nil
}

func killYeyakd(_ context.Context, s *system) (func(context.Context) error, error) {
	if err := s.y.Kill(); err != nil {
		return nil, err
	}
	s.logf("yeyakd killed (SIGKILL)")
	return func(ctx context.Context) error {
		start := time.Now()
		if err := s.y.Start(ctx); err != nil {
			return err
		}
		s.logf("yeyakd ready again after %.1fs", time.Since(start).Seconds())
		return nil
	}, nil
}

func restartPostgres(ctx context.Context, s *system) (func(context.Context) error, error) {
	if err := s.pg.Stop(ctx); err != nil {
		return nil, err
	}
	s.logf("postgres stopped")
	return func(ctx context.Context) error {
		if !sleep(ctx, s.mode.PostgresDown) {
			return ctx.Err()
		}
		err := s.pg.Start(ctx)
		s.logf("postgres started again")
		return err
	}, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
