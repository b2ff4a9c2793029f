package load

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/admission"
	"github.com/yeyak/yeyak/mocks/population"
)

// Shape is how virtual people arrive.
type Shape string

const (
	// ShapeSteady: people arrive at Rate per second, evenly spaced, for as
	// long as the run lasts (open loop: arrivals do not wait for answers).
	ShapeSteady Shape = "steady"
	// ShapeSpike: the launch crowd. Arrivals start at Rate per second and
	// decay exponentially with time constant Decay, so Rate×Decay people
	// arrive in all, 63% of them within Decay and 98% within 4×Decay (with
	// the default 15 s, a large crowd in the first minute). Open loop.
	ShapeSpike Shape = "spike"
	// ShapeClosed: Concurrency people are in the flow at any moment; each
	// one that finishes is replaced by the next (closed loop).
	ShapeClosed Shape = "closed"
	// ShapeFeed: one person arrives for each value received from
	// Config.Feed, until it is closed (open loop): the caller paces the
	// crowd, e.g. a twin system fed at the rate a surged one admits.
	ShapeFeed Shape = "feed"
)

// Step names: the stages of a person's flow, in order, and the names the
// Summary reports latencies under. StepQueueJoin, StepQueuePoll and
// StepQueueWait appear only when the target answers 429 queue_required;
// StepReconcile when a booking attempt ended without a clear answer.
const (
	StepToken       = "token"
	StepEligibility = "eligibility"
	StepSearch      = "search"
	StepBook        = "book"
	StepCancel      = "cancel"
	StepReschedule  = "reschedule"
	StepReconcile   = "reconcile"
	StepQueueJoin   = "queue_join"
	StepQueuePoll   = "queue_poll"
	StepQueueWait   = "queue_wait"
)

// Config configures a Run. Every zero value means the documented default;
// only Target is required.
type Config struct {
	// Target is the base URL of yeyakd's public listener, e.g.
	// "http://127.0.0.1:8080". Required. It must resolve to loopback
	// addresses only (127.0.0.0/8, ::1): Run refuses anything else, and the
	// dialer re-checks every connection.
	Target string
	// Campaign is the campaign people book in. "" means "demo".
	Campaign string
	// Population is the synthetic population the target serves; it must be
	// the target's (yeyakd --demo uses Seed 2021 and People
	// --demo-people, default 100000). The zero value is population's
	// default (seed 0, population.DefaultPeople people).
	Population population.Config

	// Shape is how people arrive. "" means ShapeSteady.
	Shape Shape
	// Rate is the arrival rate in people per second: constant for steady,
	// the initial rate for spike. 0 means 50, except for a spike bounded by
	// Count, where 0 means Count/Decay (the whole crowd in the decaying
	// wave).
	Rate float64
	// Decay is the spike's time constant. 0 means 15 s.
	Decay time.Duration
	// Concurrency is the number of people in the flow at once for closed.
	// 0 means 50.
	Concurrency int
	// Feed paces ShapeFeed: one arrival per value received; closing it
	// stops arrivals. Required for ShapeFeed, ignored otherwise.
	Feed <-chan struct{}
	// Count bounds the number of people who arrive; 0 means no bound.
	Count int
	// Duration bounds the time during which people arrive; 0 means no
	// bound. Count or Duration (or a spike, which ends by itself) must
	// bound the run.
	Duration time.Duration
	// Drain is how long people already in the flow may finish after
	// arrivals stop (at Duration, Count, or when Run's context ends);
	// then their calls are abandoned. 0 means 30 s.
	Drain time.Duration
	// MaxInFlight caps the people in the flow at once for the open shapes;
	// arrivals beyond it are not started and are counted as Dropped (the
	// load tool, not the target, was saturated). 0 means 5000.
	MaxInFlight int

	// OtherDigitShare is the share of people whose day of birth does not
	// end in today's rotation digit: they try to book anyway and should be
	// refused (422 not_your_rotation_day, an expected refusal). 0 means
	// 0.1; negative means nobody.
	OtherDigitShare float64
	// CancelShare is the share of people who cancel after booking, and
	// RescheduleShare the share of the others who move their booking to
	// another clinic or date. 0 means nobody.
	CancelShare, RescheduleShare float64
	// StopAfter ends every person's flow after that step: StepEligibility
	// (check eligibility only: warms the target's eligibility cache),
	// StepSearch, StepBook. "" means the whole flow (through cancel or
	// reschedule).
	StopAfter string
	// SkipEligibility leaves out the eligibility check: people search and
	// book straight away.
	SkipEligibility bool
	// Think is the most a person pauses between steps (uniformly random
	// in [0, Think]). 0 means no pause.
	Think time.Duration

	// Attempts is the most attempts per call on retryable answers (503,
	// 429 rate_limited, 409 idempotency_in_progress, retryable 5xx,
	// transport errors), waiting Retry-After or a jittered backoff in
	// between. A booking keeps its Idempotency-Key across attempts.
	// 0 means 5.
	Attempts int
	// MaxRetryWait caps one wait between a call's attempts (and the
	// Retry-After of a retryable answer). A waiting room's Retry-After is
	// not a retry: a person in line polls when it says. 0 means 10 s.
	MaxRetryWait time.Duration
	// QueueTimeout is the most a person waits in the waiting room (429
	// queue_required → POST QueuePath → poll until admitted). 0 means
	// 10 min.
	QueueTimeout time.Duration
	// QueueDrain is how long after arrivals stop the people still in the
	// waiting room keep waiting. Then they leave the line (outcome
	// "in_line"; the Summary keeps the place and estimated wait the queue
	// last told them) while people already in the booking flow finish
	// within Drain. 0 or a value not below Drain means people wait until
	// the Drain ends like everyone else.
	QueueDrain time.Duration
	// QueuePath is the waiting room's path. "" means "/v1/queue".
	QueuePath string
	// PassHeader is the header a waiting-room pass travels in. "" means
	// admission.PassHeader ("X-Yeyak-Pass").
	PassHeader string

	// Today is the date whose rotation digit decides who may book. Zero
	// means today in the campaign's time zone (set it when the target
	// runs with --now).
	Today booking.Date
	// People, when set, are the population indexes to run, in order, each
	// once (the mix of digits is then theirs). nil means people drawn from
	// the population: a seeded permutation, today's digit or not by
	// OtherDigitShare.
	People []int
	// Filter, when set, passes over the people of the population for
	// whom it returns false (with the same Filter and PersonSeed, two runs
	// meet the same people). nil means everyone.
	Filter func(population.Person) bool
	// PersonSeed seeds the permutation people are drawn in and every
	// person's choices; runs with different seeds meet different people.
	// 0 means 1.
	PersonSeed uint64
	// Skip leaves out the first Skip people of each digit class of the
	// permutation (a later run with the same PersonSeed meets new people).
	Skip int
	// RunID prefixes every Idempotency-Key. "" means random.
	RunID string
	// Record keeps every booking the target acknowledged in
	// Summary.Bookings (for invariant checks).
	Record bool
	// OnAdmitted, when set, is called once per person when the target
	// first lets them into the booking flow: the first 2xx answer to a
	// booking-flow call, with a pass from the waiting room or in free flow.
	// It runs on the person's goroutine and must not block.
	OnAdmitted func()

	// Sources is the number of client addresses people are spread over,
	// from 127.1.0.1 on (SourceAddr), as people arrive from many homes and
	// carrier NATs: the target's per-address limits then meet a crowd, not
	// one machine. 0 means 64; 1 means the kernel's choice (127.0.0.1). An
	// IPv6 target is always reached from ::1.
	Sources int
	// Conns caps the connections to the target, over all sources, of the
	// booking flow; the waiting room's calls have as many again of their
	// own. 0 means 256.
	Conns int
	// RequestTimeout bounds each HTTP call. 0 means 30 s.
	RequestTimeout time.Duration
	// Client replaces the HTTP clients built from Sources, Conns and
	// RequestTimeout (with the loopback-only dialer): every person uses it.
	// nil means built.
	Client *http.Client
	// Progress receives a progress line once a second. nil means none.
	Progress io.Writer
	// Now is the clock. nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Campaign == "" {
		c.Campaign = "demo"
	}
	if c.Shape == "" {
		c.Shape = ShapeSteady
	}
	if c.Decay <= 0 {
		c.Decay = 15 * time.Second
	}
	if c.Rate <= 0 {
		c.Rate = 50
		if c.Shape == ShapeSpike && c.Count > 0 {
			c.Rate = float64(c.Count) / c.Decay.Seconds()
		}
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 50
	}
	if c.Drain <= 0 {
		c.Drain = 30 * time.Second
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 5000
	}
	switch {
	case c.OtherDigitShare == 0:
		c.OtherDigitShare = 0.1
	case c.OtherDigitShare < 0:
		c.OtherDigitShare = 0
	}
	if c.Attempts <= 0 {
		c.Attempts = 5
	}
	if c.MaxRetryWait <= 0 {
		c.MaxRetryWait = 10 * time.Second
	}
	if c.QueueTimeout <= 0 {
		c.QueueTimeout = 10 * time.Minute
	}
	if c.QueuePath == "" {
		c.QueuePath = "/v1/queue"
	}
	if c.PassHeader == "" {
		c.PassHeader = admission.PassHeader
	}
	if c.PersonSeed == 0 {
		c.PersonSeed = 1
	}
	if c.Conns <= 0 {
		c.Conns = 256
	}
	if c.Sources <= 0 {
		c.Sources = 64
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	if c.Target == "" {
		return errors.New("load: Target is required")
	}
	switch c.Shape {
	case ShapeSteady, ShapeSpike, ShapeClosed:
	case ShapeFeed:
		if c.Feed == nil {
			return errors.New("load: shape feed needs a Feed")
		}
	default:
		return fmt.Errorf("load: shape %q: want steady, spike, closed or feed", c.Shape)
	}
	if c.Count < 0 || c.Duration < 0 || c.Skip < 0 || c.Think < 0 {
		return errors.New("load: Count, Duration, Skip and Think must not be negative")
	}
	if c.Sources > 250*250 {
		return fmt.Errorf("load: at most %d sources", 250*250)
	}
	if c.Count == 0 && c.Duration == 0 && c.Shape != ShapeSpike && c.Shape != ShapeFeed && c.People == nil {
		return errors.New("load: unbounded run: set Count or Duration")
	}
	for name, v := range map[string]float64{"OtherDigitShare": c.OtherDigitShare, "CancelShare": c.CancelShare, "RescheduleShare": c.RescheduleShare} {
		if v < 0 || v > 1 {
			return fmt.Errorf("load: %s %v outside [0, 1]", name, v)
		}
	}
	switch c.StopAfter {
	case "", StepEligibility, StepSearch, StepBook:
	default:
		return fmt.Errorf("load: StopAfter %q: want %q, %q, %q or \"\"", c.StopAfter, StepEligibility, StepSearch, StepBook)
	}
	if c.StopAfter == StepEligibility && c.SkipEligibility {
		return errors.New("load: StopAfter eligibility with SkipEligibility leaves nothing to do")
	}
	pop := c.Population.Size()
	for _, i := range c.People {
		if i < 0 || i >= pop {
			return fmt.Errorf("load: person index %d outside the population (0..%d)", i, pop-1)
		}
	}
	return nil
}
