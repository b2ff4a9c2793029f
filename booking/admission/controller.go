package admission

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// ErrForgotten is returned for a valid ticket whose place the store no
// longer holds (admitted more than ClaimWindow ago, or an in-process line
// that restarted): the person joins again.
var ErrForgotten = errors.New("admission: place forgotten; join again")

// Controller is the virtual waiting room: it admits people to the booking
// flow at an adaptive rate, hands out tickets and passes, and guards the
// booking routes. It runs no goroutine: the line advances lazily on
// requests, at most every AdvanceInterval. Safe for concurrent use.
type Controller struct {
	cfg   Config
	sign  signer
	law   *aimd
	store Store
	log   *slog.Logger
	m     *metrics
	free  *rate.Limiter
	door  *rate.Limiter // passes handed to people the line admitted
	// refusedAt is when a request without a pass was last refused (Unix
	// nanoseconds): free flow stays closed FreeFlowHold after it.
	refusedAt atomic.Int64
	// freePeople are the people free flow let in, and when: one who comes
	// back without the pass within PassTTL is let in again without a
	// token (a bounded LRU: one evicted spends a token again).
	freePeople *lru.Cache[string, time.Time]

	rngMu sync.Mutex
	rng   *rand.Rand

	mu          sync.Mutex
	advancing   bool
	lastAdvance time.Time
	stats       Stats
	rate        float64
	drawn       int // Openings[:drawn] are drawn
}

// New validates cfg, fills its defaults and returns a Controller.
func New(cfg Config) (*Controller, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	seed := sha256.Sum256(cfg.ShuffleSeed)
	c := &Controller{
		cfg:   cfg,
		sign:  signer{keys: cfg.Keys},
		law:   newAIMD(cfg.Law, cfg.Floor, cfg.Ceiling, cfg.Initial),
		store: cfg.Store,
		log:   cfg.Logger.With("component", "admission"),
		m:     m,
		rng:   rand.New(rand.NewChaCha8(seed)),
		rate:  cfg.Initial,
	}
	c.freePeople, _ = lru.New[string, time.Time](freePeopleMax)
	c.free = rate.NewLimiter(rate.Limit(cfg.Initial*cfg.RequestsPerAdmit), int(math.Ceil(cfg.Initial*cfg.RequestsPerAdmit)))
	c.door = rate.NewLimiter(rate.Limit(cfg.Initial), doorBurst(cfg.Initial))
	m.rate.Set(cfg.Initial)
	return c, nil
}

// Observe feeds the control law one booking-path request: its latency and
// whether it failed (5xx or timeout; not a client's 4xx).
func (c *Controller) Observe(latency time.Duration, failed bool) {
	c.law.observe(latency, failed, false)
}

// ObserveWrite is Observe for a booking write (a booking, a change, a
// cancellation): it counts among all requests and its latency is also
// judged on its own, so that many fast reads cannot hide slow bookings.
func (c *Controller) ObserveWrite(latency time.Duration, failed bool) {
	c.law.observe(latency, failed, true)
}

// ObservePoolWait feeds the control law one database pool wait (e.g. the
// growth of sql.DBStats.WaitDuration per acquire).
func (c *Controller) ObservePoolWait(d time.Duration) { c.law.observePoolWait(d) }

// ObserveSchedLatency feeds the control law the host's goroutine scheduling
// latency over its last sampling period (the p99 of the time runnable
// goroutines waited to run; runtime/metrics /sched/latencies:seconds), a
// second or so apart. See Law.MaxSchedLatency.
func (c *Controller) ObserveSchedLatency(d time.Duration) { c.law.observeSched(d) }

// Rate returns the current admission rate in people per second.
func (c *Controller) Rate() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rate
}

// Stats returns the line's stats as of the last step.
func (c *Controller) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Status is a person's view of the line: the body of POST /v1/queue and
// GET /v1/queue/{ticket}.
type Status struct {
	// Ticket proves the place; GET /v1/queue/{ticket} polls it.
	Ticket string `json:"ticket"`
	// State is pending (waiting for the opening's draw), waiting or admitted.
	State string `json:"state"`
	// Position is 1 for the next person to be admitted, 0 once admitted;
	// while pending it is the worst case (last place of the draw).
	Position int64 `json:"position"`
	// EstimatedWaitSeconds is the estimated time to admission.
	EstimatedWaitSeconds int64 `json:"estimated_wait_seconds"`
	// PollAfterSeconds is when to poll next (also sent as Retry-After).
	PollAfterSeconds int64 `json:"poll_after_seconds,omitempty"`
	// Pass, once admitted, goes in the X-Yeyak-Pass header of booking calls.
	Pass string `json:"pass,omitempty"`
	// PassExpiresAt is the pass's expiry (server time).
	PassExpiresAt *time.Time `json:"pass_expires_at,omitempty"`
	// DrawAt is the opening at which a pending place is drawn.
	DrawAt *time.Time `json:"draw_at,omitempty"`
	// DrawSize is the number of people in that draw so far.
	DrawSize int64 `json:"draw_size,omitempty"`

	created bool
}

// drawAt returns the opening whose pre-opening window contains now, or zero.
func (c *Controller) drawAt(now time.Time) time.Time {
	os := c.cfg.Openings
	i := sort.Search(len(os), func(i int) bool { return os[i].After(now) })
	if i < len(os) && !now.Before(os[i].Add(-c.cfg.PreOpening)) {
		return os[i]
	}
	return time.Time{}
}

// shuffle is the draw's Fisher–Yates shuffle on the controller's ChaCha8.
func (c *Controller) shuffle(n int, swap func(i, j int)) {
	c.rngMu.Lock()
	defer c.rngMu.Unlock()
	c.rng.Shuffle(n, swap)
}

// advance runs one admission step when AdvanceInterval has passed (or
// force), unless another step is running; it returns the latest stats.
func (c *Controller) advance(ctx context.Context, now time.Time, force bool) Stats {
	c.mu.Lock()
	if c.advancing || (!force && now.Sub(c.lastAdvance) < c.cfg.AdvanceInterval) {
		st := c.stats
		c.mu.Unlock()
		return st
	}
	c.advancing = true
	c.lastAdvance = now
	drawn := c.drawn
	c.mu.Unlock()

	for drawn < len(c.cfg.Openings) && !c.cfg.Openings[drawn].After(now) {
		if err := c.store.Draw(ctx, c.cfg.Openings[drawn], c.shuffle); err != nil {
			// Admitting now would let later arrivals pass the undrawn batch:
			// skip the step; the next one retries the draw.
			c.log.Error("draw failed", "opening", c.cfg.Openings[drawn], "err", err)
			c.mu.Lock()
			defer c.mu.Unlock()
			c.advancing = false
			return c.stats
		}
		c.log.Info("pre-opening arrivals drawn", "opening", c.cfg.Openings[drawn])
		drawn++
	}
	r, verdict, w, evaluated := c.law.tick(now)
	if evaluated {
		c.m.verdicts.WithLabelValues(string(verdict)).Inc()
		if verdict == VerdictIncrease || verdict == VerdictDecrease {
			c.log.Info("admission rate changed", "verdict", string(verdict), "rate", r,
				"samples", w.Samples, "p90", w.P90, "p99", w.P99, "writes", w.Writes, "write_p90", w.WriteP90, "write_p99", w.WriteP99, "write_base", w.WriteBase,
				"error_rate", w.ErrorRate, "pool_wait_p90", w.PoolP90, "sched_p99", w.Sched)
			c.free.SetLimitAt(now, rate.Limit(r*c.cfg.RequestsPerAdmit))
			c.free.SetBurstAt(now, int(math.Ceil(r*c.cfg.RequestsPerAdmit)))
			c.door.SetLimitAt(now, rate.Limit(r))
			c.door.SetBurstAt(now, doorBurst(r))
		}
	}
	n, st, err := c.store.Advance(ctx, Step{Now: now, Rate: r, Burst: r, ForgetBefore: now.Add(-c.cfg.ClaimWindow)})

	c.mu.Lock()
	defer c.mu.Unlock()
	c.advancing = false
	c.drawn = drawn
	c.rate = r
	c.m.rate.Set(r)
	if err != nil {
		c.log.Error("admission step failed", "err", err)
		return c.stats
	}
	if st.Waiting > 0 || st.Pending > 0 {
		c.law.markConstrained()
	}
	c.m.admitted.Add(float64(n))
	c.m.waiting.Set(float64(st.Waiting))
	c.m.pending.Set(float64(st.Pending))
	c.m.estimatedWait.Set(float64(st.Waiting) / r)
	c.stats = st
	return st
}

// freePeopleMax bounds the people free flow remembers (about 100 bytes
// each).
const freePeopleMax = 65536

// freeAgain reports whether free flow let person in less than PassTTL
// before now (their pass is still good: they only did not send it).
func (c *Controller) freeAgain(person string, now time.Time) bool {
	at, ok := c.freePeople.Get(person)
	return ok && now.Sub(at) < c.cfg.PassTTL
}

// lineOpen reports whether a request without a pass must go to the line
// at now: people wait (or await a draw), or free flow refused someone less
// than FreeFlowHold ago.
func (c *Controller) lineOpen(st Stats, now time.Time) bool {
	return st.Waiting > 0 || st.Pending > 0 || now.UnixNano() < c.refusedAt.Load()+int64(c.cfg.FreeFlowHold)
}

// doorBurst is the most passes the door hands out at once at rate r: one
// second's worth, as the line's own step banks (Step.Burst).
func doorBurst(r float64) int {
	return max(1, int(math.Ceil(r)))
}

// Join gives person a place in line (or returns the place they hold) and
// their status. Client-sent times are never read: the arrival is the
// server's now.
func (c *Controller) Join(ctx context.Context, person string) (Status, error) {
	now := c.cfg.Now()
	c.advance(ctx, now, false)
	key := personKey(c.cfg.PersonSalt, person)
	p, created, err := c.store.Join(ctx, key, c.drawAt(now))
	if err != nil {
		return Status{}, fmt.Errorf("join line: %w", err)
	}
	if created {
		c.m.tickets.Inc()
		// The guard must see the new arrival before the next step.
		c.mu.Lock()
		switch p.State {
		case StatePending:
			c.stats.Pending++
		case StateWaiting:
			c.stats.Waiting++
		}
		c.mu.Unlock()
		if p.State == StateWaiting && p.Ahead == 0 {
			// Nobody ahead: take the banked credit now rather than a poll later.
			c.advance(ctx, now, true)
			if q, err := c.store.Place(ctx, key); err == nil && q.State != StateUnknown {
				p = q
			}
		}
	}
	s := c.status(now, person, key, p, "")
	s.created = created
	return s, nil
}

// Poll returns the status of the place proven by ticket for person (the
// ticket must be theirs and unexpired).
func (c *Controller) Poll(ctx context.Context, person, ticket string) (Status, error) {
	now := c.cfg.Now()
	cl, err := c.sign.verify(kindTicket, ticket, person, now)
	if err != nil {
		return Status{}, fmt.Errorf("verify ticket: %w", err)
	}
	c.advance(ctx, now, false)
	key := personKey(c.cfg.PersonSalt, person)
	p, err := c.store.Place(ctx, key)
	if err != nil {
		return Status{}, fmt.Errorf("read place: %w", err)
	}
	if p.State == StateUnknown {
		return Status{}, ErrForgotten
	}
	if p.Seq != cl.Seq {
		ticket = "" // the person holds a newer place: hand its ticket out
	}
	return c.status(now, person, key, p, ticket), nil
}

// status renders p for person at now; ticket, when set, is reused.
func (c *Controller) status(now time.Time, person string, key PersonKey, p Place, ticket string) Status {
	if ticket == "" {
		ticket = c.sign.sign(kindTicket, person, claims{Seq: p.Seq, Issued: now, Expires: now.Add(c.cfg.TicketTTL)})
	}
	s := Status{Ticket: ticket, State: p.State.String()}
	r := c.Rate()
	switch p.State {
	case StateAdmitted:
		if !c.door.AllowN(now, 1) {
			// The door: the line admits people when they are ranked, but
			// they learn it at their next poll — up to MaxPoll later, and
			// everyone who joined in the same second polls in the same
			// second. Handing all their passes out at once would send
			// them into the booking flow in bursts many times the rate,
			// each burst a latency spike (the surge saw 418 bookings in
			// one second at a rate of 22/s). Passes leave at the rate;
			// the others are next in line, back in a moment.
			c.m.doorWaits.Inc()
			s.State = StateWaiting.String()
			s.Position = 1
			s.EstimatedWaitSeconds = ceilSeconds(time.Duration(float64(time.Second) / r))
			s.PollAfterSeconds = ceilSeconds(jitter(c.cfg.MinPoll * 2))
			c.law.markConstrained()
			return s
		}
		exp := now.Add(c.cfg.PassTTL)
		s.Pass = c.sign.sign(kindPass, person, claims{Seq: p.Seq, Issued: now, Expires: exp})
		s.PassExpiresAt = &exp
		c.m.passesIssued.Inc()
	case StateWaiting:
		s.Position = p.Ahead + 1
		wait := time.Duration(float64(s.Position) / r * float64(time.Second))
		s.EstimatedWaitSeconds = ceilSeconds(wait)
		// Half the wait: about log2(wait/MinPoll) polls a person (a
		// third had cost the surge 11 polls a person, 556,000 in all),
		// jittered so that the people who joined in one second do not
		// poll together ever after.
		s.PollAfterSeconds = ceilSeconds(jitter(min(max(wait/2, c.cfg.MinPoll), c.cfg.MaxPoll)))
	case StatePending:
		draw := c.drawAt(now)
		if draw.IsZero() { // drawn meanwhile by another instance; poll again soon
			draw = now
		}
		s.DrawAt = &draw
		s.DrawSize = p.Pending
		s.Position = p.Ahead + p.Pending
		untilDraw := draw.Sub(now)
		// Expected wait: until the draw, then everyone ahead and half the draw.
		expected := (float64(p.Ahead) + float64(p.Pending+1)/2) / r
		s.EstimatedWaitSeconds = ceilSeconds(untilDraw + time.Duration(expected*float64(time.Second)))
		// Spread the polls after the draw over a few seconds (per person,
		// stable), so the opening does not bring every poll at once.
		jitter := time.Duration(key[0]) * c.cfg.MinPoll * 4 / 256
		s.PollAfterSeconds = ceilSeconds(max(untilDraw+jitter, c.cfg.MinPoll))
	}
	return s
}

// jitter returns a uniformly random duration in [d/2, d].
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// VerifyPass checks that pass is a valid pass of person at server time.
func (c *Controller) VerifyPass(person, pass string) error {
	_, err := c.sign.verify(kindPass, pass, person, c.cfg.Now())
	return err
}
