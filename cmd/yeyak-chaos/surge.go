package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/yeyak/yeyak/cmd/yeyak-chaos/harness"
	"github.com/yeyak/yeyak/cmd/yeyak-load/load"
)

// surgeScenario is issue 10's surge: the waiting room in front of a crowd.
func surgeScenario(m Mode) scenario {
	return scenario{name: "surge",
		what: fmt.Sprintf("%d people in a spike (time constant %v) into the waiting room, line open %v after the last arrival",
			m.SurgePeople, m.SurgeDecay, m.SurgeLine),
		twin: true, run: surge,
		// Launch morning: the scenario warms today's digit group into the
		// cache through the ops endpoint, as the schedule does before a
		// rotation day opens (which, for the demo campaign, is already
		// open; a short lead keeps the schedule off tomorrow's group).
		args: []string{"--ops-token", surgeOpsToken, "--warm-lead", "1s", "--warm-rate", "50"},
		// The twin is the same system that nobody surges: its waiting room
		// is pinned at 1000/s (floor = ceiling), so the people it is fed
		// pass in free flow and its own law cannot reshape the stream (it
		// had sent twin people into a line of its own: a twin queue wait
		// p50 of 4 s).
		twinArgs: []string{"--admission-floor", "1000", "--admission-ceiling", "1000"}}
}

// surgeFloor is yeyakd's default --admission-floor, people per second:
// the least the line must move.
const surgeFloor = 10.0

// surgeGCPercent is this process's GOGC during the surge's load.
const surgeGCPercent = 400

// surgeOpsToken is the surge systems' ops token (loopback only).
const surgeOpsToken = "chaos-surge-ops-token"

// warm loads today's digit group into the system's eligibility cache with
// the pre-warmer (POST /ops/warmer/start) and waits until it is done.
func (s *system) warm(ctx context.Context, timeout time.Duration) (loaded int64, took time.Duration, err error) {
	start := time.Now()
	digit, err := load.TodayDigit(ctx, s.y.URL(), "demo", worldClock.Now())
	if err != nil {
		return 0, 0, err
	}
	if digit < 0 {
		return 0, 0, errors.New("the demo campaign has no rotation day today")
	}
	var st struct {
		State  string `json:"state"`
		Loaded int64  `json:"loaded"`
		Errors int64  `json:"errors"`
	}
	ops := func(method, path string) error {
		req, err := http.NewRequestWithContext(ctx, method, s.y.OpsURL()+path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+surgeOpsToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return json.NewDecoder(resp.Body).Decode(&st)
	}
	if err := ops(http.MethodPost, fmt.Sprintf("/ops/warmer/start?digit=%d", digit)); err != nil {
		return 0, 0, fmt.Errorf("start the warmer: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for st.State != "done" {
		if time.Now().After(deadline) {
			return st.Loaded, time.Since(start), fmt.Errorf("warmer not done after %v: %+v", timeout, st)
		}
		if !sleep(ctx, 200*time.Millisecond) {
			return 0, 0, ctx.Err()
		}
		if err := ops(http.MethodGet, "/ops/warmer"); err != nil {
			return 0, 0, fmt.Errorf("warmer status: %w", err)
		}
	}
	return st.Loaded, time.Since(start), nil
}

// cpuUse is the CPU time each part of the surge's machine used.
type cpuUse struct {
	surged, twin, postgres, harness time.Duration
}

func readCPU(s, twin *system) cpuUse {
	var u cpuUse
	u.surged, _ = harness.ProcessCPU(s.y.Pid())
	u.twin, _ = harness.ProcessCPU(twin.y.Pid())
	u.postgres, _ = harness.TreeCPU(s.pg.Pid())
	u.harness = harness.SelfCPU()
	return u
}

func (u cpuUse) minus(o cpuUse) cpuUse {
	return cpuUse{u.surged - o.surged, u.twin - o.twin, u.postgres - o.postgres, u.harness - o.harness}
}

// admissions records when the surged system let people into the booking
// flow, and feeds the twin one arrival per admission.
type admissions struct {
	start time.Time
	feed  chan struct{}

	mu    sync.Mutex
	times []time.Duration // since start, in order
}

func (a *admissions) admitted() {
	a.mu.Lock()
	a.times = append(a.times, time.Since(a.start))
	a.mu.Unlock()
	select {
	case a.feed <- struct{}{}:
	default: // the buffer holds the whole crowd: never full
	}
}

// rate is the admitted people per second from the start to the last
// admission, and that span.
func (a *admissions) rate() (float64, time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.times) == 0 {
		return 0, 0
	}
	span := a.times[len(a.times)-1]
	return float64(len(a.times)) / max(span.Seconds(), 1e-9), span
}

// surgeOutcomes are the ways a surged person's flow may end: admitted and
// then booked (and maybe changed it), refused by a rule, or sold out; or
// still in line when it closed.
func surgeOutcome(o string) bool {
	switch o {
	case "booked", "cancelled", "rescheduled", "sold_out", load.OutcomeInLine:
		return true
	}
	return strings.HasPrefix(o, "refused:")
}

// surge runs issue 10's surge test. SurgePeople arrive within seconds at
// the surged system, whose waiting room (admission on, its defaults:
// floor 10/s, ceiling 1000/s, AIMD) lets them into the booking flow at
// the rate it finds healthy. The twin, an identical system nobody surges,
// is fed one arrival for each person the surged system admits, at the
// same moment: a steady, unsurged stream at the admitted rate, under
// whatever else the machine does at that moment. SurgeLine after the last
// arrival the line closes: the people still in it leave holding the place
// and estimated wait the queue last gave them; the admitted ones get
// SurgeFinish to finish. The verdict checks, from the load's summary, the
// queue's own answers, yeyakd's metrics and the database:
//
//   - zero 5xx answers (the load's count, and yeyakd's request counter);
//   - every person accounted for: admitted and then booked, refused by a
//     rule or sold out, or still in line with a place and an estimated
//     wait; nobody dropped, cut off or with an unexplained error;
//   - the queue's books balance: one new ticket per person who joined
//     (yeyakd's count = the load's), admitted + still waiting = tickets,
//     and the line yeyakd still holds is no longer than the people the load
//     left in it;
//   - no person booked twice (database and acknowledgements), with the
//     other invariants of harness.Check once the system has settled;
//   - the booking p99 of admitted people within 1.5× the twin's (the
//     healthy range: the p99 of the same stream without the crowd),
//     judged on the bootstrap's 95% lower bound as in the registry
//     scenarios (in full mode; see Mode.JudgeSurgeP99).
func surge(ctx context.Context, s, twin *system, v *verdict) {
	m := s.mode
	var werr [2]error
	var wg sync.WaitGroup
	for i, x := range []*system{s, twin} {
		wg.Go(func() {
			loaded, took, err := x.warm(ctx, m.Settle)
			werr[i] = err
			x.logf("warmed %d people in %.1fs", loaded, took.Seconds())
		})
	}
	wg.Wait()
	for i, err := range werr {
		if err != nil {
			v.fail("warm the cache of %s: %v", []string{s.name, twin.name}[i], err)
			return
		}
	}
	// The load generator holds 50,000 people's goroutines and connections
	// in this process, beside the systems it measures on the same cores:
	// a lazier collector leaves them more of the CPU (GC was about an
	// eighth of the generator's CPU time at the default, by its profile).
	defer debug.SetGCPercent(debug.SetGCPercent(surgeGCPercent))
	cpu0, wall0 := readCPU(s, twin), time.Now()
	adm := &admissions{start: time.Now(), feed: make(chan struct{}, m.SurgePeople)}
	var twinSum *load.Summary
	var twinErr error
	twinDone := make(chan struct{})
	go func() {
		defer close(twinDone)
		// The same addresses and connections as the crowd's: a twin person
		// must not wait for a connection a surged person would have had.
		twinSum, twinErr = twin.load(ctx, stream{shape: load.ShapeFeed, feed: adm.feed, maxInFlight: m.SurgePeople,
			sources: m.SurgeSources, conns: m.SurgeConns, drain: m.SurgeFinish})
	}()
	sum, err := s.load(ctx, stream{shape: load.ShapeSpike, count: m.SurgePeople, decay: m.SurgeDecay,
		maxInFlight: m.SurgePeople, sources: m.SurgeSources, conns: m.SurgeConns, onAdmitted: adm.admitted,
		queueDrain: m.SurgeLine, drain: m.SurgeLine + m.SurgeFinish})
	close(adm.feed)
	<-twinDone
	cpu, wall := readCPU(s, twin).minus(cpu0), time.Since(wall0)
	if err != nil {
		v.fail("surge load: %v", err)
		return
	}
	if twinErr != nil {
		v.fail("twin load: %v", twinErr)
		return
	}
	v.booked = sum.Booked
	s.logf("surge: outcomes %v errors %v queue %+v", sum.Outcomes, sum.Errors, sum.Queue)
	twin.logf("twin: outcomes %v errors %v", twinSum.Outcomes, twinSum.Errors)
	for _, step := range []string{load.StepToken, load.StepEligibility, load.StepSearch, load.StepBook, load.StepQueueJoin, load.StepQueuePoll, load.StepQueueWait} {
		c, h := sum.Steps[step], twinSum.Steps[step]
		s.logf("%-12s calls %6d p50/p90/p99/max ms: surged %8.1f %8.1f %8.1f %8.1f | twin %8.1f %8.1f %8.1f %8.1f",
			step, c.Calls, c.P50Ms, c.P90Ms, c.P99Ms, c.MaxMs, h.P50Ms, h.P90Ms, h.P99Ms, h.MaxMs)
	}

	// What yeyakd says: its requests by status, its line.
	met, err := harness.ScrapeMetrics(ctx, s.y.OpsURL()+"/metrics")
	if err != nil {
		v.fail("metrics: %v", err)
		return
	}
	twinMet, err := harness.ScrapeMetrics(ctx, twin.y.OpsURL()+"/metrics")
	if err != nil {
		v.fail("twin metrics: %v", err)
		return
	}

	// yeyakd's own latency per route (its histogram's buckets): what the
	// server spent, against what the people waited.
	for _, route := range []string{"POST /demo/token", "GET /v1/me/eligibility", "GET /v1/clinics", "POST /v1/bookings", "POST /v1/queue", "GET /v1/queue/{ticket}"} {
		want := fmt.Sprintf("route=%q", route)
		p := func(m harness.Metrics, q float64) float64 {
			return 1000 * m.HistogramQuantile("yeyak_http_request_duration_seconds", q, want)
		}
		s.logf("yeyakd %-24s p50/p99 ms: surged %7.1f %7.1f | twin %7.1f %7.1f", route, p(met, 0.5), p(met, 0.99), p(twinMet, 0.5), p(twinMet, 0.99))
	}

	// The registry behind the cache: what the crowd cost it.
	for _, m := range []struct {
		name string
		met  harness.Metrics
	}{{"surged", met}, {"twin", twinMet}} {
		var calls []string
		for _, x := range m.met["yeyak_registry_calls_total"] {
			if x.Value == 0 {
				continue
			}
			calls = append(calls, fmt.Sprintf("%s/%s=%.0f", harness.Label(x.Labels, "operation"), harness.Label(x.Labels, "outcome"), x.Value))
		}
		slices.Sort(calls)
		s.logf("registry calls, %s: %s; cache %s", m.name, strings.Join(calls, " "), cacheCounts(m.met))
	}

	// The figures.
	q := sum.Queue
	rate, span := adm.rate()
	wait := sum.Steps[load.StepQueueWait]
	v.figure("%d people arrived in %.1fs, run %.0fs", sum.People.Started, arrivalSpan(m).Seconds(), sum.ElapsedSeconds)
	v.row("people", "%d arriving in %.1f s (spike, time constant %v; %d within the first %v)", sum.People.Started, arrivalSpan(m).Seconds(), m.SurgeDecay,
		load.Schedule{Shape: load.ShapeSpike, Rate: float64(m.SurgePeople) / m.SurgeDecay.Seconds(), Decay: m.SurgeDecay}.Total(4*m.SurgeDecay), 4*m.SurgeDecay)
	v.row("run", "%.0f s: the line open %v after the last arrival, then %v for the admitted to finish", sum.ElapsedSeconds, m.SurgeLine, m.SurgeFinish)
	v.figure("admitted %d (%d with a pass from the line) at %.1f/s over %.0fs, admission rate at the end %.0f/s",
		sum.Admitted, q.Admitted, rate, span.Seconds(), met.Value("yeyak_admission_rate"))
	v.figure("wait in line p50/p99/max %.1f/%.1f/%.1fs", wait.P50Ms/1000, wait.P99Ms/1000, wait.MaxMs/1000)
	v.row("admitted", "%d people reached the booking flow (a 2xx; in free flow before the line formed, or with one of the %d passes the line gave): %.1f people/s over %.0f s; admission rate at the end %.0f/s",
		sum.Admitted, q.Admitted, rate, span.Seconds(), met.Value("yeyak_admission_rate"))
	v.row("wait in line of the admitted, p50 / p99 / max", "%.1f s / %.1f s / %.1f s", wait.P50Ms/1000, wait.P99Ms/1000, wait.MaxMs/1000)
	v.row("still in line at the end", "%d, each told a position and an estimated wait: p50 %.0f s, p99 %.0f s, max %.0f s (position up to %d)",
		q.InLine, q.InLineWaitP50S, q.InLineWaitP99S, q.InLineWaitMaxS, q.InLinePositionMax)
	v.row("outcomes", "%s", outcomes(sum.Outcomes))
	v.row("booked", "%d (%.1f bookings/s over the run)", sum.Booked, float64(sum.Booked)/max(sum.ElapsedSeconds, 1e-9))
	v.figure("%d still in line at the end, told a wait of p50 %.0fs, max %.0fs (position up to %d)",
		q.InLine, q.InLineWaitP50S, q.InLineWaitMaxS, q.InLinePositionMax)
	v.figure("outcomes %s", outcomes(sum.Outcomes))
	v.row("CPU time over the run", "surged yeyakd %.0f s, twin %.0f s, PostgreSQL (both) %.0f s, load generator and mock registry %.0f s, of %.0f core-seconds",
		cpu.surged.Seconds(), cpu.twin.Seconds(), cpu.postgres.Seconds(), cpu.harness.Seconds(), float64(runtime.NumCPU())*wall.Seconds())
	v.figure("CPU over the %.0fs (of %.0f core-seconds): surged yeyakd %.0fs, twin %.0fs, PostgreSQL %.0fs, load generator and mock registry %.0fs",
		wall.Seconds(), float64(runtime.NumCPU())*wall.Seconds(), cpu.surged.Seconds(), cpu.twin.Seconds(), cpu.postgres.Seconds(), cpu.harness.Seconds())
	fives := serverErrors(met)
	v.figure("5xx: %d answered to the load, %d counted by yeyakd", sum.ServerErrors, fives)
	v.row("5xx answers", "%d seen by the load, %d counted by yeyakd", sum.ServerErrors, fives)

	// Zero 5xx, nobody dropped or unexplained.
	if sum.ServerErrors > 0 || fives > 0 {
		v.fail("5xx answers during the surge: %d seen by the load, %d counted by yeyakd", sum.ServerErrors, fives)
	}
	if n := sum.People.Started; n != int64(m.SurgePeople) || sum.People.Dropped > 0 {
		v.fail("the crowd did not all arrive: %d of %d started, %d dropped by the load", n, m.SurgePeople, sum.People.Dropped)
	}
	if sum.People.Abandoned > 0 {
		v.fail("%d people cut off in the booking flow %v after the line closed", sum.People.Abandoned, m.SurgeFinish)
	}
	var odd []string
	for o, n := range sum.Outcomes {
		if !surgeOutcome(o) {
			odd = append(odd, fmt.Sprintf("%s=%d", o, n))
		}
	}
	if len(odd) > 0 {
		slices.Sort(odd)
		v.fail("people whose flow ended without an explanation: %s", strings.Join(odd, " "))
	}
	if len(sum.Errors) > 0 {
		v.fail("unexpected answers: %s", outcomes(sum.Errors))
	}
	if q.InLineNoEstimate > 0 {
		v.fail("%d people left in line without a position or an estimated wait", q.InLineNoEstimate)
	}
	if b := sum.Steps[load.StepBook].Codes["queue_required"]; b > 0 {
		v.fail("%d booking calls of admitted people were sent back to the line", b)
	}

	// The queue's books.
	tickets := int64(met.Value("yeyak_admission_tickets_issued_total"))
	admitted := int64(met.Value("yeyak_admission_admitted_total"))
	waiting := int64(met.Value("yeyak_admission_waiting"))
	pending := int64(met.Value("yeyak_admission_pending"))
	v.figure("queue: %d tickets, %d admitted from the line, %d waiting (yeyakd)", tickets, admitted, waiting)
	v.row("the queue's books (yeyakd)", "%d tickets = %d admitted + %d waiting + %d pending; the load gave %d people a new place", tickets, admitted, waiting, pending, q.Joined)
	switch {
	case tickets != q.Joined:
		v.fail("queue: yeyakd issued %d tickets, %d people were given a new place", tickets, q.Joined)
	case admitted+waiting+pending != tickets:
		v.fail("queue: %d tickets but %d admitted + %d waiting + %d pending: places lost", tickets, admitted, waiting, pending)
	case waiting > q.InLine:
		v.fail("queue: yeyakd holds %d people waiting, the load left %d in line", waiting, q.InLine)
	case q.Admitted+q.InLine < q.Joined:
		v.fail("queue: %d joined, but only %d left with a pass and %d are in line", q.Joined, q.Admitted, q.InLine)
	}
	// The line must move: even at yeyakd's floor (10 people/s), the time
	// the line stays open after the last arrival admits that many people.
	// (A line held for a draw that never comes, or a stuck law, leaves
	// everyone waiting — which every other check above accepts.)
	if least := int64(surgeFloor * m.SurgeLine.Seconds()); q.Joined >= least && admitted < least {
		v.fail("queue: the line hardly moved: %d admitted from it in %v, at least %d expected at the floor of %g/s", admitted, m.SurgeLine, least, surgeFloor)
	}

	// Booking latency of admitted people against the healthy range.
	hh, sh := twinSum.Histogram(load.StepBook), sum.Histogram(load.StepBook)
	if hh == nil || sh == nil {
		v.fail("no booking calls to compare (surged %v, twin %v)", sh != nil, hh != nil)
	} else {
		cmp := compareP99(hh, sh)
		v.figure("book p99 of admitted people %.1fms (%d calls) / healthy twin %.1fms (%d calls): %.2f× (at least %.2f×, 95%%), limit %.1f×; yeyakd's own p99 %.0fms / twin %.0fms",
			cmp.faultP99, cmp.faultN, cmp.healthyP99, cmp.healthyN, cmp.ratio, cmp.lower, p99Factor,
			1000*met.HistogramQuantile("yeyak_http_request_duration_seconds", 0.99, `route="POST /v1/bookings"`),
			1000*twinMet.HistogramQuantile("yeyak_http_request_duration_seconds", 0.99, `route="POST /v1/bookings"`))
		v.row("booking p99, admitted people", "%.0f ms (%d calls); yeyakd's own p99 %s", cmp.faultP99, cmp.faultN,
			serverMs(met.HistogramQuantile("yeyak_http_request_duration_seconds", 0.99, `route="POST /v1/bookings"`)))
		v.row("booking p99, healthy twin at the admitted rate", "%.0f ms (%d calls); yeyakd's own p99 %s", cmp.healthyP99, cmp.healthyN,
			serverMs(twinMet.HistogramQuantile("yeyak_http_request_duration_seconds", 0.99, `route="POST /v1/bookings"`)))
		v.row("ratio (limit ×1.5)", "%.2f× (at least %.2f× at 95%%)", cmp.ratio, cmp.lower)
		if m.JudgeSurgeP99 {
			cmp.judge(v, p99Factor, m.MinSamples, "admitted people's", "")
		} else {
			v.figure("p99 ratio not judged in %s mode", m.Name)
		}
	}

	// The database: settled, no one booked twice, the other invariants.
	var tv verdict
	wg.Go(func() { s.settleAndCheck(ctx, v) })
	wg.Go(func() { twin.settleAndCheck(ctx, &tv) })
	wg.Wait()
	if v.result != nil {
		v.figure("%d people booked twice", v.result.DoubleBooked)
		v.row("people booked twice", "%d (database: one active booking per person and dose; acknowledgements: no two open bookings to one person)", v.result.DoubleBooked)
	}
	for _, f := range tv.failures {
		v.fail("healthy twin: %s", f)
	}
}

// arrivalSpan is when the surge's last person arrives.
func arrivalSpan(m Mode) time.Duration {
	sched := load.Schedule{Shape: load.ShapeSpike, Rate: float64(m.SurgePeople) / m.SurgeDecay.Seconds(), Decay: m.SurgeDecay}
	at, _ := sched.At(m.SurgePeople - 1)
	return at
}

// serverMs formats a quantile (seconds) of yeyakd's latency histogram,
// whose last finite bucket is 2.5 s.
func serverMs(s float64) string {
	if math.IsInf(s, 1) {
		return "over 2500 ms (past the histogram's last bucket)"
	}
	return fmt.Sprintf("%.0f ms", 1000*s)
}

// serverErrors sums yeyakd's requests answered with a 5xx status.
func serverErrors(met harness.Metrics) int64 {
	var n float64
	for _, s := range met["yeyak_http_requests_total"] {
		if strings.HasPrefix(harness.Label(s.Labels, "code"), "5") {
			n += s.Value
		}
	}
	return int64(n)
}

// outcomes formats counts as k=v, sorted by key.
func outcomes(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// cacheCounts sums the eligibility cache's lookups by result, for the
// narration.
func cacheCounts(m harness.Metrics) string {
	var out []string
	for name, series := range m {
		if !strings.HasPrefix(name, "yeyak_cache_") || !strings.HasSuffix(name, "_total") {
			continue
		}
		var sum float64
		for _, x := range series {
			sum += x.Value
		}
		if sum == 0 {
			continue
		}
		out = append(out, fmt.Sprintf("%s=%.0f", strings.TrimSuffix(strings.TrimPrefix(name, "yeyak_cache_"), "_total"), sum))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}
