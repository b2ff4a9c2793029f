package adapter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// forcedState is an ops override of a breaker.
type forcedState int32

const (
	notForced    forcedState = iota
	forcedOpen               // maintenance: every call fails fast
	forcedClosed             // disabled: calls skip the breaker
)

func (s forcedState) String() string {
	switch s {
	case forcedOpen:
		return "open"
	case forcedClosed:
		return "closed"
	}
	return ""
}

// ErrUnknownBreaker is returned by the ops controls for a name that is not
// one of BreakerRead, BreakerWrite.
var ErrUnknownBreaker = errors.New("adapter: unknown breaker")

// errForcedOpen is what a call gets from a breaker forced open; it matches
// gobreaker.ErrOpenState.
var errForcedOpen = fmt.Errorf("forced open by ops: %w", gobreaker.ErrOpenState)

// breaker is one of the Facade's two circuit breakers: a gobreaker
// state machine (local, or shared through Redis) plus the ops overrides
// gobreaker lacks and the bookkeeping for logs, metrics and /ops.
type breaker struct {
	f        *Facade
	name     string
	settings gobreaker.Settings
	local    atomic.Pointer[gobreaker.TwoStepCircuitBreaker[any]]
	shared   *sharedBreaker // nil: local state only
	forced   atomic.Int32   // forcedState

	mu         sync.Mutex
	observed   gobreaker.State // the last effective state logged
	lastChange time.Time
	lastCause  string
	tripCause  string // why ReadyToTrip last said yes
}

func newBreaker(f *Facade, name string) (*breaker, error) {
	b := &breaker{f: f, name: name, lastChange: time.Now(), lastCause: "started"}
	cfg := f.cfg
	b.settings = gobreaker.Settings{
		Name:          name,
		MaxRequests:   cfg.HalfOpenRequests,
		Interval:      cfg.Window,
		BucketPeriod:  cfg.BucketPeriod,
		Timeout:       cfg.OpenTimeout,
		ReadyToTrip:   b.readyToTrip,
		OnStateChange: b.onStateChange,
		IsSuccessful:  isSuccessful,
		IsExcluded:    isExcluded,
	}
	if cfg.Shared != nil {
		s, err := newSharedBreaker(b, cfg.Shared)
		if err != nil {
			return nil, fmt.Errorf("adapter: shared breaker %s: %w", name, err)
		}
		b.shared = s
		return b, nil
	}
	b.local.Store(gobreaker.NewTwoStepCircuitBreaker[any](b.settings))
	return b, nil
}

// readyToTrip trips on the failure ratio of the calls completed in the
// window, once there are MinRequests of them. (Counts.Requests also holds
// calls still in flight, which would dilute the ratio.)
func (b *breaker) readyToTrip(c gobreaker.Counts) bool {
	completed := c.TotalSuccesses + c.TotalFailures
	if completed < b.f.cfg.MinRequests {
		return false
	}
	ratio := float64(c.TotalFailures) / float64(completed)
	if ratio < b.f.cfg.FailureRatio {
		return false
	}
	b.mu.Lock()
	b.tripCause = fmt.Sprintf("failure ratio %.2f over %d calls in window (threshold %.2f)", ratio, completed, b.f.cfg.FailureRatio)
	b.mu.Unlock()
	return true
}

// onStateChange is gobreaker's hook; it runs under the gobreaker lock.
func (b *breaker) onStateChange(_ string, from, to gobreaker.State) {
	if forcedState(b.forced.Load()) != notForced {
		return // the override decides the effective state
	}
	var cause string
	switch {
	case to == gobreaker.StateOpen && from == gobreaker.StateClosed:
		b.mu.Lock()
		cause = b.tripCause
		b.mu.Unlock()
	case to == gobreaker.StateOpen:
		cause = "half-open probe failed"
	case to == gobreaker.StateHalfOpen:
		cause = "open timeout elapsed, probing"
	case to == gobreaker.StateClosed:
		cause = "half-open probes succeeded"
	}
	if b.shared != nil {
		b.shared.invalidate() // this instance made the change: see it at once
	}
	b.note(to, cause)
}

// note records a change of the effective state: one log line, one
// transitions count, the hook. Repeats of the current state are ignored,
// so a transition seen both by gobreaker and in shared state counts once.
func (b *breaker) note(to gobreaker.State, cause string) {
	b.mu.Lock()
	from := b.observed
	if from == to {
		b.mu.Unlock()
		return
	}
	b.observed = to
	b.lastChange = time.Now()
	b.lastCause = cause
	b.mu.Unlock()
	b.f.log.Info("registry breaker transition",
		"breaker", b.name, "from", from.String(), "to", to.String(), "cause", cause)
	b.f.metrics.transitions.WithLabelValues(b.name, from.String(), to.String()).Inc()
	if b.f.cfg.OnStateChange != nil {
		b.f.cfg.OnStateChange(b.name, from, to)
	}
}

// allow asks the breaker to let one call through. done must be called
// with the call's verdict (see isSuccessful, isExcluded).
func (b *breaker) allow(ctx context.Context) (done func(error), err error) {
	if b.shared != nil {
		return b.shared.allow(ctx)
	}
	switch forcedState(b.forced.Load()) {
	case forcedOpen:
		return nil, errForcedOpen
	case forcedClosed:
		return func(error) {}, nil
	}
	return b.local.Load().Allow()
}

// status reports the effective state and the window's counts.
func (b *breaker) status(ctx context.Context) (gobreaker.State, gobreaker.Counts, forcedState) {
	var st gobreaker.State
	var c gobreaker.Counts
	if b.shared != nil {
		snap, err := b.shared.snapshot(ctx)
		if err == nil {
			b.forced.Store(int32(snap.forced))
			st, c = snap.state, snap.counts
		}
	} else {
		cb := b.local.Load()
		st, c = cb.State(), cb.Counts()
	}
	fs := forcedState(b.forced.Load())
	switch fs {
	case forcedOpen:
		st = gobreaker.StateOpen
	case forcedClosed:
		st = gobreaker.StateClosed
	}
	return st, c, fs
}

// force sets or clears (notForced) the ops override; reset also starts a
// fresh closed breaker.
func (b *breaker) force(ctx context.Context, fs forcedState, reset bool) error {
	if b.shared != nil {
		if err := b.shared.force(ctx, fs, reset); err != nil {
			return err
		}
	}
	b.forced.Store(int32(fs))
	if reset && b.shared == nil {
		b.local.Store(gobreaker.NewTwoStepCircuitBreaker[any](b.settings))
	}
	var to gobreaker.State
	var cause string
	switch {
	case fs == forcedOpen:
		to, cause = gobreaker.StateOpen, "forced open by ops"
	case fs == forcedClosed:
		to, cause = gobreaker.StateClosed, "forced closed by ops (breaker disabled)"
	default:
		to, cause = gobreaker.StateClosed, "reset by ops"
	}
	b.note(to, cause)
	b.mu.Lock()
	b.lastCause = cause // also when the effective state did not change
	b.lastChange = time.Now()
	b.mu.Unlock()
	return nil
}

// ForceOpen opens the named breaker until Reset (maintenance window): every
// call through it fails at once with ErrUnavailable. With shared state the
// whole fleet sees it.
func (f *Facade) ForceOpen(ctx context.Context, name string) error {
	return f.opsAction(ctx, name, "force-open", forcedOpen, false)
}

// ForceClosed disables the named breaker until Reset: calls skip it (the
// bulkhead and deadlines still apply) and are not counted.
func (f *Facade) ForceClosed(ctx context.Context, name string) error {
	return f.opsAction(ctx, name, "force-closed", forcedClosed, false)
}

// Reset clears any override and restarts the named breaker closed with
// empty counts.
func (f *Facade) Reset(ctx context.Context, name string) error {
	return f.opsAction(ctx, name, "reset", notForced, true)
}

func (f *Facade) opsAction(ctx context.Context, name, action string, fs forcedState, reset bool) error {
	b := f.breaker(name)
	if b == nil {
		return fmt.Errorf("%w: %q", ErrUnknownBreaker, name)
	}
	if err := b.force(ctx, fs, reset); err != nil {
		f.log.Error("registry breaker ops action failed", "breaker", name, "action", action, "err", err)
		return fmt.Errorf("breaker %s %s: %w", name, action, err)
	}
	f.log.Warn("registry breaker ops action", "breaker", name, "action", action)
	return nil
}

func (f *Facade) breaker(name string) *breaker {
	switch name {
	case BreakerRead:
		return f.read
	case BreakerWrite:
		return f.write
	}
	return nil
}

// BreakerStatus is one breaker as ops see it.
type BreakerStatus struct {
	// Name is BreakerRead or BreakerWrite.
	Name string `json:"name"`
	// State is the effective state: "closed", "half-open" or "open".
	State string `json:"state"`
	// Forced is "open" or "closed" while an ops override holds, else "".
	Forced string `json:"forced,omitempty"`
	// Counts are the calls in the current rolling window (or, half-open,
	// since the probes began).
	Counts BreakerCounts `json:"counts"`
	// LastTransition is when the effective state last changed (or an ops
	// action was taken); LastCause says why.
	LastTransition time.Time `json:"last_transition"`
	LastCause      string    `json:"last_cause"`
	// Shared is true when the state lives in Redis, shared by the fleet.
	Shared bool `json:"shared"`
}

// BreakerCounts are gobreaker's counts in the window.
type BreakerCounts struct {
	Requests             uint32 `json:"requests"`
	Successes            uint32 `json:"successes"`
	Failures             uint32 `json:"failures"`
	Exclusions           uint32 `json:"exclusions"`
	ConsecutiveSuccesses uint32 `json:"consecutive_successes"`
	ConsecutiveFailures  uint32 `json:"consecutive_failures"`
}

// Breakers reports both breakers, read first.
func (f *Facade) Breakers() []BreakerStatus {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	out := make([]BreakerStatus, 0, 2)
	for _, b := range []*breaker{f.read, f.write} {
		st, c, fs := b.status(ctx)
		b.note(st, "observed")
		b.mu.Lock()
		s := BreakerStatus{
			Name: b.name, State: st.String(), Forced: fs.String(),
			Counts: BreakerCounts{
				Requests: c.Requests, Successes: c.TotalSuccesses, Failures: c.TotalFailures,
				Exclusions: c.TotalExclusions, ConsecutiveSuccesses: c.ConsecutiveSuccesses,
				ConsecutiveFailures: c.ConsecutiveFailures,
			},
			LastTransition: b.lastChange, LastCause: b.lastCause, Shared: b.shared != nil,
		}
		b.mu.Unlock()
		out = append(out, s)
	}
	return out
}
