package adapter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// FacadeConfig configures a Facade. Every zero value means the documented
// default, so FacadeConfig{} is a sensible production setting.
type FacadeConfig struct {
	// ReadTimeout bounds every Eligibility and Ping call, whether or not
	// the caller's context has a deadline (the shorter one wins).
	// If ReadTimeout is <= 0 it is 800ms.
	ReadTimeout time.Duration
	// BulkTimeout bounds every EligibilityBulk call (a whole chunked
	// pre-warm request). If BulkTimeout is <= 0 it is 30s.
	BulkTimeout time.Duration
	// WriteTimeout bounds every RecordBooking and CancelBooking call.
	// If WriteTimeout is <= 0 it is 2s.
	WriteTimeout time.Duration

	// ReadSlowThreshold: an Eligibility call that takes longer than this
	// counts as a failure on the read breaker even when it answers — the
	// registry's usual way to fail is to get slow, not to error.
	// EligibilityBulk is never judged on speed (its time grows with the
	// list). If ReadSlowThreshold is <= 0 it is 400ms.
	ReadSlowThreshold time.Duration
	// WriteSlowThreshold is ReadSlowThreshold for writes.
	// If WriteSlowThreshold is <= 0 it is 1s.
	WriteSlowThreshold time.Duration

	// Window is the length of the rolling window over which each breaker
	// counts calls. If Window is <= 0 it is 10s.
	Window time.Duration
	// BucketPeriod is the granularity of the rolling window: counts age
	// out one bucket at a time. If BucketPeriod is <= 0 it is 1s; Window
	// is rounded up to a multiple of it.
	BucketPeriod time.Duration
	// MinRequests is the number of calls the window must hold before the
	// failure ratio can trip a breaker. If MinRequests is 0 it is 20.
	MinRequests uint32
	// FailureRatio trips a breaker when failures/requests in the window
	// reach it (after MinRequests). If FailureRatio is <= 0 or > 1 it is 0.5.
	FailureRatio float64
	// OpenTimeout is how long a tripped breaker stays open before letting
	// probe calls through (half-open). If OpenTimeout is <= 0 it is 10s.
	OpenTimeout time.Duration
	// HalfOpenRequests is how many probe calls a half-open breaker lets
	// through; that many consecutive successes close it, any failure
	// reopens it. If HalfOpenRequests is 0 it is 3.
	HalfOpenRequests uint32

	// MaxInFlight is the bulkhead: at most this many calls per operation
	// (Eligibility, RecordBooking, CancelBooking, Ping) are in flight to
	// the registry; further calls fail at once with ErrUnavailable. A call
	// that the caller abandoned (deadline) keeps its slot until the
	// registry actually returns, so a stalled registry fills the bulkhead
	// instead of piling up goroutines. If MaxInFlight is <= 0 it is 64.
	MaxInFlight int
	// MaxInFlightBulk is MaxInFlight for EligibilityBulk.
	// If MaxInFlightBulk is <= 0 it is 4.
	MaxInFlightBulk int

	// Shared, when set, shares breaker state (counts, state, forced
	// states) with every Facade configured with the same Redis and
	// KeyPrefix, through gobreaker's DistributedCircuitBreaker: one
	// instance trips, the whole fleet sees the breaker open. Nil means
	// each Facade keeps its own state in memory.
	Shared *SharedConfig

	// Registerer receives the Facade's metrics. If Registerer is nil a
	// private registry is used (see Facade.Gatherer).
	Registerer prometheus.Registerer
	// Logger receives one structured line per breaker transition and ops
	// action. If Logger is nil slog.Default() is used.
	Logger *slog.Logger
	// OnStateChange, if set, is called after every breaker transition
	// (including forced ones and ones observed in shared state) with the
	// breaker name ("read" or "write"). It runs on the calling goroutine,
	// sometimes under a breaker lock: it must not block or call the Facade.
	OnStateChange func(breaker string, from, to gobreaker.State)
}

func (c *FacadeConfig) applyDefaults() error {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ReadTimeout, 800*time.Millisecond)
	def(&c.BulkTimeout, 30*time.Second)
	def(&c.WriteTimeout, 2*time.Second)
	def(&c.ReadSlowThreshold, 400*time.Millisecond)
	def(&c.WriteSlowThreshold, time.Second)
	def(&c.Window, 10*time.Second)
	def(&c.BucketPeriod, time.Second)
	def(&c.OpenTimeout, 10*time.Second)
	if c.MinRequests == 0 {
		c.MinRequests = 20
	}
	if c.FailureRatio <= 0 || c.FailureRatio > 1 {
		c.FailureRatio = 0.5
	}
	if c.HalfOpenRequests == 0 {
		c.HalfOpenRequests = 3
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 64
	}
	if c.MaxInFlightBulk <= 0 {
		c.MaxInFlightBulk = 4
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.BucketPeriod > c.Window {
		return fmt.Errorf("adapter: BucketPeriod %v is longer than Window %v", c.BucketPeriod, c.Window)
	}
	return nil
}

// Operation names, used in metrics labels and errors.
const (
	OpEligibility     = "eligibility"
	OpEligibilityBulk = "eligibility_bulk"
	OpRecordBooking   = "record_booking"
	OpCancelBooking   = "cancel_booking"
	OpPing            = "ping"
)

// Breaker names, used in metrics labels, logs and the ops URLs.
const (
	BreakerRead  = "read"
	BreakerWrite = "write"
)

// Facade wraps any Registry with what a fragile legacy system needs in
// front of it: a read and a write circuit breaker (gobreaker, rolling
// window, tripping on failure ratio where slow calls count as failures), a
// bulkhead per operation, a deadline on every call that the caller never
// waits past (even when the registry ignores its context), metrics, and
// ops controls (force open, force closed, reset). Facade implements
// Registry; every failure it reports as "cannot answer" wraps
// ErrUnavailable, and ErrNotFound and ErrRejected pass through unchanged.
//
//	f, err := adapter.NewFacade(gatewayClient, adapter.FacadeConfig{Registerer: prometheus.DefaultRegisterer})
//	if err != nil { … }
//	defer f.Close()
//	rec, err := f.Eligibility(ctx, personID)
//	switch {
//	case errors.Is(err, adapter.ErrNotFound):    // unknown person
//	case errors.Is(err, adapter.ErrUnavailable): // serve from cache or apply the registry policy
//	}
//
// EligibilityBulk shares the read breaker; Ping goes through the bulkhead
// and deadline but not the breakers, so health checks keep telling whether
// the registry itself answers while a breaker is open.
type Facade struct {
	r       Registry
	cfg     FacadeConfig
	log     *slog.Logger
	metrics *metrics
	read    *breaker
	write   *breaker
	ops     map[string]*operation

	recorder *recorder // shared mode only
	closeMu  sync.Once
}

// operation is one Registry method's limits.
type operation struct {
	name     string
	breaker  *breaker // nil: not broken (Ping)
	timeout  time.Duration
	slow     time.Duration // 0: never judged on speed
	bulkhead chan struct{}

	// Metric children resolved once (label lookups cost more than the rest
	// of the bookkeeping).
	inFlight         prometheus.Gauge
	duration         prometheus.Observer
	bulkheadRejected prometheus.Counter
	calls            map[string]prometheus.Counter
}

var allOutcomes = []string{outcomeOK, outcomeSlow, outcomeNotFound, outcomeRejected, outcomeError,
	outcomeTimeout, outcomeCancelled, outcomeOpen, outcomeBulkheadFul}

func (op *operation) bindMetrics(m *metrics) {
	op.inFlight = m.inFlight.WithLabelValues(op.name)
	op.duration = m.duration.WithLabelValues(op.name)
	op.bulkheadRejected = m.bulkheadRejected.WithLabelValues(op.name)
	op.calls = make(map[string]prometheus.Counter, len(allOutcomes))
	for _, o := range allOutcomes {
		op.calls[o] = m.calls.WithLabelValues(op.name, o)
	}
}

func (op *operation) observe(outcome string, d time.Duration) {
	op.calls[outcome].Inc()
	if d > 0 {
		op.duration.Observe(d.Seconds())
	}
}

// NewFacade wraps r. It validates cfg (zero values mean defaults), registers
// the metrics and, with cfg.Shared, connects the breakers to the shared
// state. Call Close when done.
func NewFacade(r Registry, cfg FacadeConfig) (*Facade, error) {
	if r == nil {
		return nil, errors.New("adapter: NewFacade: nil Registry")
	}
	if err := cfg.applyDefaults(); err != nil {
		return nil, err
	}
	f := &Facade{r: r, cfg: cfg, log: cfg.Logger}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("adapter: register metrics: %w", err)
	}
	f.metrics = m
	if cfg.Shared != nil {
		f.recorder = newRecorder(f.log, m)
	}
	if f.read, err = newBreaker(f, BreakerRead); err != nil {
		f.Close()
		return nil, err
	}
	if f.write, err = newBreaker(f, BreakerWrite); err != nil {
		f.Close()
		return nil, err
	}
	f.ops = map[string]*operation{
		OpEligibility:     {name: OpEligibility, breaker: f.read, timeout: cfg.ReadTimeout, slow: cfg.ReadSlowThreshold, bulkhead: make(chan struct{}, cfg.MaxInFlight)},
		OpEligibilityBulk: {name: OpEligibilityBulk, breaker: f.read, timeout: cfg.BulkTimeout, bulkhead: make(chan struct{}, cfg.MaxInFlightBulk)},
		OpRecordBooking:   {name: OpRecordBooking, breaker: f.write, timeout: cfg.WriteTimeout, slow: cfg.WriteSlowThreshold, bulkhead: make(chan struct{}, cfg.MaxInFlight)},
		OpCancelBooking:   {name: OpCancelBooking, breaker: f.write, timeout: cfg.WriteTimeout, slow: cfg.WriteSlowThreshold, bulkhead: make(chan struct{}, cfg.MaxInFlight)},
		OpPing:            {name: OpPing, timeout: cfg.ReadTimeout, bulkhead: make(chan struct{}, cfg.MaxInFlight)},
	}
	for _, op := range f.ops {
		op.bindMetrics(m)
	}
	m.registerBreaker(f.read)
	m.registerBreaker(f.write)
	return f, nil
}

// Close stops the goroutine that records outcomes in shared state (shared
// mode only; a no-op otherwise). Calls still running against the registry
// are not waited for: they end at their deadline.
func (f *Facade) Close() error {
	f.closeMu.Do(func() {
		if f.recorder != nil {
			f.recorder.close()
		}
	})
	return nil
}

// Gatherer returns the registry the metrics were registered on when it can
// be gathered (the private one when FacadeConfig.Registerer was nil), or nil.
func (f *Facade) Gatherer() prometheus.Gatherer {
	if g, ok := f.metrics.reg.(prometheus.Gatherer); ok {
		return g
	}
	return nil
}

// Eligibility implements Registry through the read breaker.
func (f *Facade) Eligibility(ctx context.Context, personID string) (Record, error) {
	return call(ctx, f, f.ops[OpEligibility], func(ctx context.Context) (Record, error) {
		return f.r.Eligibility(ctx, personID)
	})
}

// EligibilityBulk implements Registry through the read breaker, with
// BulkTimeout and its own bulkhead.
func (f *Facade) EligibilityBulk(ctx context.Context, ids []string) ([]Record, error) {
	return call(ctx, f, f.ops[OpEligibilityBulk], func(ctx context.Context) ([]Record, error) {
		return f.r.EligibilityBulk(ctx, ids)
	})
}

// RecordBooking implements Registry through the write breaker.
func (f *Facade) RecordBooking(ctx context.Context, b BookingRecord) error {
	_, err := call(ctx, f, f.ops[OpRecordBooking], func(ctx context.Context) (struct{}, error) {
		return struct{}{}, f.r.RecordBooking(ctx, b)
	})
	return err
}

// CancelBooking implements Registry through the write breaker.
func (f *Facade) CancelBooking(ctx context.Context, bookingID string) error {
	_, err := call(ctx, f, f.ops[OpCancelBooking], func(ctx context.Context) (struct{}, error) {
		return struct{}{}, f.r.CancelBooking(ctx, bookingID)
	})
	return err
}

// Ping implements Registry with the read deadline and a bulkhead, but no
// breaker: it tells whether the registry answers now, even while a breaker
// is open.
func (f *Facade) Ping(ctx context.Context) error {
	_, err := call(ctx, f, f.ops[OpPing], func(ctx context.Context) (struct{}, error) {
		return struct{}{}, f.r.Ping(ctx)
	})
	return err
}

// Outcomes, as the calls_total metric labels them.
const (
	outcomeOK          = "ok"
	outcomeSlow        = "slow" // answered, but over the slow threshold
	outcomeNotFound    = "not_found"
	outcomeRejected    = "rejected"
	outcomeError       = "error"   // the registry failed (5xx, connection, …)
	outcomeTimeout     = "timeout" // deadline reached before an answer
	outcomeCancelled   = "cancelled"
	outcomeOpen        = "breaker_open"
	outcomeBulkheadFul = "bulkhead_full"
)

// Outcome errors handed to the breakers (never to callers).
var (
	errSlowCall     = errors.New("slow call")
	errExcludedCall = errors.New("excluded call")
)

// isSuccessful is the breakers' IsSuccessful: a business answer (not
// found, rejected) is the registry working.
func isSuccessful(err error) bool {
	return err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrRejected)
}

// isExcluded is the breakers' IsExcluded: the caller gave up (cancelled, or
// its own deadline was shorter than the slow threshold), which says nothing
// about the registry.
func isExcluded(err error) bool { return errors.Is(err, errExcludedCall) }

type result[T any] struct {
	v   T
	err error
}

// call runs fn under op's bulkhead, breaker and deadline. fn runs on its
// own goroutine so the caller returns at the deadline even if the
// implementation ignores ctx; that goroutine keeps op's bulkhead slot until
// fn really returns.
func call[T any](ctx context.Context, f *Facade, op *operation, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		// The caller is already gone: do not bother the registry.
		op.observe(outcomeCancelled, 0)
		return zero, fmt.Errorf("registry %s: %w: %w", op.name, ErrUnavailable, err)
	}
	start := time.Now()
	select {
	case op.bulkhead <- struct{}{}:
	default:
		op.bulkheadRejected.Inc()
		op.observe(outcomeBulkheadFul, 0)
		return zero, fmt.Errorf("registry %s: bulkhead full (%d in flight): %w", op.name, cap(op.bulkhead), ErrUnavailable)
	}
	op.inFlight.Inc()
	release := func() { <-op.bulkhead; op.inFlight.Dec() }

	cctx, cancel := context.WithTimeout(ctx, op.timeout)
	defer cancel()
	var done func(error)
	if op.breaker != nil {
		d, err := op.breaker.allow(cctx)
		if err != nil {
			release()
			op.observe(outcomeOpen, 0)
			return zero, fmt.Errorf("registry %s: %s breaker: %w: %w", op.name, op.breaker.name, err, ErrUnavailable)
		}
		done = d
	}
	ch := make(chan result[T], 1)
	go func() {
		defer release()
		defer func() {
			if p := recover(); p != nil {
				ch <- result[T]{err: fmt.Errorf("registry %s: panic: %v", op.name, p)}
			}
		}()
		v, err := fn(cctx)
		ch <- result[T]{v, err}
	}()

	var res result[T]
	select {
	case res = <-ch:
	case <-cctx.Done():
		res.err = cctx.Err()
	}
	elapsed := time.Since(start)
	slow := op.slow > 0 && elapsed > op.slow
	var outcome string
	var verdict error // what the breaker is told
	err := res.err
	switch {
	case err == nil:
		outcome, verdict = outcomeOK, nil
		if slow {
			outcome, verdict = outcomeSlow, errSlowCall
		}
	case errors.Is(err, ErrNotFound) || errors.Is(err, ErrRejected):
		outcome, verdict = outcomeNotFound, err
		if errors.Is(err, ErrRejected) {
			outcome = outcomeRejected
		}
		if slow {
			verdict = errSlowCall
		}
	case errors.Is(ctx.Err(), context.Canceled):
		// The caller cancelled: it says nothing about the registry.
		outcome, verdict = outcomeCancelled, errExcludedCall
		err = fmt.Errorf("registry %s: %w: %w", op.name, ErrUnavailable, ctx.Err())
	case cctx.Err() != nil:
		// Deadline (ours or the caller's). A registry that did not answer
		// within the slow threshold failed; a caller whose own deadline
		// was shorter than that learns nothing about the registry.
		outcome, verdict = outcomeTimeout, errSlowCall
		if op.slow > 0 && !slow {
			verdict = errExcludedCall
		}
		err = fmt.Errorf("registry %s: no answer within %v: %w: %w", op.name, elapsed.Round(time.Millisecond), ErrUnavailable, context.DeadlineExceeded)
	default:
		outcome, verdict = outcomeError, err
		if !errors.Is(err, ErrUnavailable) {
			err = fmt.Errorf("registry %s: %w: %w", op.name, ErrUnavailable, err)
		}
	}
	if done != nil {
		done(verdict)
	}
	op.observe(outcome, elapsed)
	if err != nil {
		return zero, err
	}
	return res.v, nil
}
