package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/yeyak/yeyak/adapter"
)

// Faults are the misbehaviours the mock injects, switchable at run time
// with SetFaults or PUT /mock/faults. They apply to the Go API and to the
// HTTP gateway face alike. The zero value is a healthy registry.
//
// A call goes through them in this order: Outage, Stall, Shed, ThrottleRate,
// latency (Latency + LatencyTail + the Capacity slowdown), ErrorRate, the
// operation itself, then ErrorAfterRate for writes.
type Faults struct {
	// Latency is added to every call.
	Latency time.Duration
	// LatencyTail adds Extra to a share P of calls (a long tail).
	LatencyTail Tail
	// ErrorRate is the share of calls that fail before doing anything:
	// HTTP 500, or an error wrapping adapter.ErrUnavailable.
	ErrorRate float64
	// ErrorAfterRate is the share of writes that are applied and then
	// answered with an error, like a reply lost on the way back: the
	// caller must retry and the retry must change nothing.
	ErrorAfterRate float64
	// ThrottleRate is the share of calls refused with HTTP 429 and
	// Retry-After (Go API: a *FaultError wrapping adapter.ErrUnavailable).
	ThrottleRate float64
	// RetryAfter is what 429 and 503 answers ask the caller to wait.
	// 0 means 1s. It is sent in whole seconds, at least 1.
	RetryAfter time.Duration
	// Outage: the registry is gone. The HTTP server closes its listener
	// (connection refused) and every open connection, and listens again on
	// the same port when Outage is cleared; a bare Handler drops each
	// connection. The Go API fails at once with adapter.ErrUnavailable.
	Outage bool
	// Stall: calls are accepted and never answered until the caller's
	// context ends or Stall is cleared (then they proceed normally).
	Stall bool
	// Capacity is the number of concurrent calls the registry takes in
	// its stride. Beyond it every call slows down by OverloadStep per call
	// in flight over Capacity, like an overloaded legacy database. 0 means
	// unlimited.
	Capacity int
	// OverloadStep is the extra latency per call over Capacity. 0 means 20ms.
	OverloadStep time.Duration
	// Shed is the number of concurrent calls beyond which calls are
	// refused with HTTP 503 and Retry-After. 0 means never.
	Shed int
	// Scope limits every fault but Outage to "read" calls (eligibility,
	// bulk, ping) or "write" calls (record, cancel). "" means all calls.
	Scope string
}

// Tail is the long tail of the latency distribution.
type Tail struct {
	// P is the share of calls that get Extra added.
	P float64
	// Extra is the added latency.
	Extra time.Duration
}

// Healthy reports whether f injects nothing.
func (f Faults) Healthy() bool { return f == Faults{} }

func (f Faults) retryAfter() time.Duration {
	if f.RetryAfter <= 0 {
		return time.Second
	}
	return f.RetryAfter
}

func (f Faults) overloadStep() time.Duration {
	if f.OverloadStep <= 0 {
		return 20 * time.Millisecond
	}
	return f.OverloadStep
}

func (f Faults) applies(write bool) bool {
	switch f.Scope {
	case "read":
		return !write
	case "write":
		return write
	}
	return true
}

func (f Faults) validate() error {
	for name, v := range map[string]float64{"errorRate": f.ErrorRate, "errorAfterRate": f.ErrorAfterRate, "throttleRate": f.ThrottleRate, "latencyTail.p": f.LatencyTail.P} {
		if v < 0 || v > 1 {
			return fmt.Errorf("%s %v outside [0, 1]", name, v)
		}
	}
	if f.Latency < 0 || f.LatencyTail.Extra < 0 || f.RetryAfter < 0 || f.OverloadStep < 0 {
		return fmt.Errorf("negative duration")
	}
	if f.Capacity < 0 || f.Shed < 0 {
		return fmt.Errorf("negative capacity or shed")
	}
	switch f.Scope {
	case "", "read", "write":
	default:
		return fmt.Errorf("scope %q is not \"\", \"read\" or \"write\"", f.Scope)
	}
	return nil
}

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("250ms") and also reads a number of nanoseconds.
type Duration time.Duration

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("duration %s: want a string like \"250ms\" or nanoseconds", b)
	}
	*d = Duration(n)
	return nil
}

type tailJSON struct {
	P     float64  `json:"p"`
	Extra Duration `json:"extra"`
}

type faultsJSON struct {
	Latency        Duration `json:"latency"`
	LatencyTail    tailJSON `json:"latencyTail"`
	ErrorRate      float64  `json:"errorRate"`
	ErrorAfterRate float64  `json:"errorAfterRate"`
	ThrottleRate   float64  `json:"throttleRate"`
	RetryAfter     Duration `json:"retryAfter"`
	Outage         bool     `json:"outage"`
	Stall          bool     `json:"stall"`
	Capacity       int      `json:"capacity"`
	OverloadStep   Duration `json:"overloadStep"`
	Shed           int      `json:"shed"`
	Scope          string   `json:"scope"`
}

// MarshalJSON writes f with camelCase names and duration strings, the form
// GET /mock/faults answers and PUT /mock/faults takes.
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{
		Latency: Duration(f.Latency), LatencyTail: tailJSON{f.LatencyTail.P, Duration(f.LatencyTail.Extra)},
		ErrorRate: f.ErrorRate, ErrorAfterRate: f.ErrorAfterRate, ThrottleRate: f.ThrottleRate,
		RetryAfter: Duration(f.RetryAfter), Outage: f.Outage, Stall: f.Stall, Capacity: f.Capacity,
		OverloadStep: Duration(f.OverloadStep), Shed: f.Shed, Scope: f.Scope,
	})
}

// UnmarshalJSON reads the form MarshalJSON writes; absent fields are zero
// and unknown fields are an error (a misspelt fault must not pass silently).
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return err
	}
	*f = Faults{
		Latency: time.Duration(j.Latency), LatencyTail: Tail{j.LatencyTail.P, time.Duration(j.LatencyTail.Extra)},
		ErrorRate: j.ErrorRate, ErrorAfterRate: j.ErrorAfterRate, ThrottleRate: j.ThrottleRate,
		RetryAfter: time.Duration(j.RetryAfter), Outage: j.Outage, Stall: j.Stall, Capacity: j.Capacity,
		OverloadStep: time.Duration(j.OverloadStep), Shed: j.Shed, Scope: j.Scope,
	}
	return nil
}

// Fault kinds, in FaultError.Kind and in logs.
const (
	FaultOutage     = "outage"
	FaultStall      = "stall"
	FaultTimeout    = "timeout" // the caller's context ended during injected latency
	FaultInjected   = "error"
	FaultErrorAfter = "error_after_apply"
	FaultThrottle   = "throttle"
	FaultShed       = "shed"
)

// FaultError is the error an injected fault returns from the Go API. It
// wraps adapter.ErrUnavailable (and the context's error when the caller's
// context ended), so callers see what a real adapter would return.
type FaultError struct {
	// Kind is one of the Fault* constants.
	Kind string
	// Status is the HTTP status the gateway face answers with.
	Status int
	// RetryAfter is set for throttle and shed.
	RetryAfter time.Duration
	// Ctx is the context's error for stall and timeout, else nil.
	Ctx error
}

func (e *FaultError) Error() string {
	if e.Ctx != nil {
		return fmt.Sprintf("mock registry: injected %s: %v: %v", e.Kind, adapter.ErrUnavailable, e.Ctx)
	}
	return fmt.Sprintf("mock registry: injected %s: %v", e.Kind, adapter.ErrUnavailable)
}

// Unwrap returns adapter.ErrUnavailable and the context's error, if any.
func (e *FaultError) Unwrap() []error {
	if e.Ctx != nil {
		return []error{adapter.ErrUnavailable, e.Ctx}
	}
	return []error{adapter.ErrUnavailable}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
