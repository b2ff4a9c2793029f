package adapter_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/yeyak/yeyak/adapter"
)

var errBoom = fmt.Errorf("gateway said 502: %w", adapter.ErrUnavailable)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newFacade(t *testing.T, r adapter.Registry, cfg adapter.FacadeConfig) *adapter.Facade {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	f, err := adapter.NewFacade(r, cfg)
	if err != nil {
		t.Fatalf("NewFacade: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func breakerStatus(t *testing.T, f *adapter.Facade, name string) adapter.BreakerStatus {
	t.Helper()
	for _, s := range f.Breakers() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no breaker %q", name)
	return adapter.BreakerStatus{}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestFacadeTripsOnFailureRatio(t *testing.T) {
	tests := []struct {
		name               string
		failures, oks      int
		minRequests        uint32
		ratio              float64
		wantState          string
		failuresFirst      bool
		wantRegistryCalled int64
	}{
		{name: "all failing trips at MinRequests", failures: 10, minRequests: 10, ratio: 0.5, wantState: "open"},
		{name: "below MinRequests never trips", failures: 9, minRequests: 10, ratio: 0.5, wantState: "closed"},
		{name: "ratio under threshold stays closed", failures: 4, oks: 6, minRequests: 10, ratio: 0.5, wantState: "closed"},
		{name: "ratio at threshold trips", failures: 5, oks: 5, minRequests: 10, ratio: 0.5, wantState: "open"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeRegistry{}
			f := newFacade(t, fake, adapter.FacadeConfig{MinRequests: tc.minRequests, FailureRatio: tc.ratio, OpenTimeout: time.Hour})
			ctx := context.Background()
			for range tc.oks {
				if _, err := f.Eligibility(ctx, "p"); err != nil {
					t.Fatalf("healthy call: %v", err)
				}
			}
			fake.set(errBoom, 0)
			for range tc.failures {
				_, err := f.Eligibility(ctx, "p")
				if !errors.Is(err, adapter.ErrUnavailable) {
					t.Fatalf("failing call: got %v, want ErrUnavailable", err)
				}
			}
			if got := breakerStatus(t, f, adapter.BreakerRead).State; got != tc.wantState {
				t.Fatalf("read breaker %s, want %s", got, tc.wantState)
			}
			if w := breakerStatus(t, f, adapter.BreakerWrite).State; w != "closed" {
				t.Fatalf("write breaker %s, want closed (reads and writes are separate)", w)
			}
			before := fake.calls.Load()
			_, err := f.Eligibility(ctx, "p")
			if tc.wantState == "open" {
				if !errors.Is(err, adapter.ErrUnavailable) || !errors.Is(err, gobreaker.ErrOpenState) {
					t.Fatalf("call on open breaker: %v", err)
				}
				if fake.calls.Load() != before {
					t.Fatal("open breaker let a call reach the registry")
				}
				// Writes still flow.
				if err := f.CancelBooking(ctx, "b"); !errors.Is(err, errBoom) {
					t.Fatalf("write with closed write breaker: %v", err)
				}
			}
		})
	}
}

func TestFacadeSlowCallsCountAsFailures(t *testing.T) {
	fake := &fakeRegistry{}
	fake.set(nil, 30*time.Millisecond)
	f := newFacade(t, fake, adapter.FacadeConfig{
		MinRequests: 4, ReadSlowThreshold: 10 * time.Millisecond, ReadTimeout: 5 * time.Second, OpenTimeout: time.Hour,
	})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := f.Eligibility(context.Background(), "p"); err != nil {
				t.Errorf("slow call should still answer: %v", err)
			}
		})
	}
	wg.Wait()
	if got := breakerStatus(t, f, adapter.BreakerRead); got.State != "open" || !strings.Contains(got.LastCause, "failure ratio") {
		t.Fatalf("after 4 slow successes: %+v, want open on failure ratio", got)
	}
	if v := metricValue(t, f, "yeyak_registry_calls_total", "operation", adapter.OpEligibility, "outcome", "slow"); v != 4 {
		t.Fatalf("calls_total{outcome=slow} = %v, want 4", v)
	}
}

func TestFacadeStallNeverHoldsCallerPastDeadline(t *testing.T) {
	fake := &fakeRegistry{}
	release := fake.stallCalls()
	defer release()
	const deadline = 100 * time.Millisecond
	f := newFacade(t, fake, adapter.FacadeConfig{
		MinRequests: 3, ReadTimeout: deadline, ReadSlowThreshold: 50 * time.Millisecond, OpenTimeout: time.Hour,
	})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			start := time.Now()
			_, err := f.Eligibility(context.Background(), "p") // no deadline from the caller
			waited := time.Since(start)
			if !errors.Is(err, adapter.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("stalled call: %v, want ErrUnavailable wrapping DeadlineExceeded", err)
			}
			// Upper-bound sanity check with generous slack, not a perf assertion.
			if waited > deadline+time.Second {
				t.Errorf("caller waited %v with a %v deadline", waited, deadline)
			}
		})
	}
	wg.Wait()
	if s := breakerStatus(t, f, adapter.BreakerRead).State; s != "open" {
		t.Fatalf("after 3 stalled calls the read breaker is %s, want open", s)
	}
	// The abandoned calls still hold their bulkhead slots until the registry returns.
	if v := metricValue(t, f, "yeyak_registry_bulkhead_in_flight", "operation", adapter.OpEligibility); v != 3 {
		t.Fatalf("in-flight gauge %v, want 3 stalled calls", v)
	}
	release()
	waitFor(t, "stalled calls to drain", func() bool {
		return metricValue(t, f, "yeyak_registry_bulkhead_in_flight", "operation", adapter.OpEligibility) == 0
	})
}

func TestFacadeHalfOpenProbesAndRecovery(t *testing.T) {
	fake := &fakeRegistry{}
	var transitions []string
	var mu sync.Mutex
	f := newFacade(t, fake, adapter.FacadeConfig{
		MinRequests: 2, OpenTimeout: 30 * time.Millisecond, HalfOpenRequests: 2,
		OnStateChange: func(name string, from, to gobreaker.State) {
			mu.Lock()
			transitions = append(transitions, name+":"+from.String()+">"+to.String())
			mu.Unlock()
		},
	})
	ctx := context.Background()
	trip := func() {
		fake.set(errBoom, 0)
		for range 2 {
			_, _ = f.Eligibility(ctx, "p")
		}
		if s := breakerStatus(t, f, adapter.BreakerRead).State; s != "open" {
			t.Fatalf("breaker %s, want open", s)
		}
	}
	trip()
	waitFor(t, "half-open", func() bool { return breakerStatus(t, f, adapter.BreakerRead).State == "half-open" })
	// A failing probe reopens it.
	if _, err := f.Eligibility(ctx, "p"); !errors.Is(err, errBoom) {
		t.Fatalf("probe: %v", err)
	}
	if s := breakerStatus(t, f, adapter.BreakerRead).State; s != "open" {
		t.Fatalf("after a failed probe: %s, want open", s)
	}
	// Healthy again: HalfOpenRequests successful probes close it.
	fake.set(nil, 0)
	waitFor(t, "half-open again", func() bool { return breakerStatus(t, f, adapter.BreakerRead).State == "half-open" })
	for range 2 {
		if _, err := f.Eligibility(ctx, "p"); err != nil {
			t.Fatalf("probe: %v", err)
		}
	}
	if s := breakerStatus(t, f, adapter.BreakerRead).State; s != "closed" {
		t.Fatalf("after good probes: %s, want closed", s)
	}
	mu.Lock()
	got := strings.Join(transitions, " ")
	mu.Unlock()
	want := "read:closed>open read:open>half-open read:half-open>open read:open>half-open read:half-open>closed"
	if got != want {
		t.Fatalf("transitions\n got %s\nwant %s", got, want)
	}
	if v := metricValue(t, f, "yeyak_registry_breaker_transitions_total", "breaker", "read", "from", "half-open", "to", "closed"); v != 1 {
		t.Fatalf("transitions_total{half-open>closed} = %v", v)
	}
}

func TestFacadeHalfOpenLimitsProbes(t *testing.T) {
	fake := &fakeRegistry{}
	f := newFacade(t, fake, adapter.FacadeConfig{MinRequests: 1, OpenTimeout: 20 * time.Millisecond, HalfOpenRequests: 1, ReadTimeout: 5 * time.Second})
	fake.set(errBoom, 0)
	_, _ = f.Eligibility(context.Background(), "p")
	waitFor(t, "half-open", func() bool { return breakerStatus(t, f, adapter.BreakerRead).State == "half-open" })
	release := fake.stallCalls()
	defer release()
	fake.mu.Lock()
	entered := make(chan struct{}, 1)
	fake.entered = entered
	fake.mu.Unlock()
	fake.set(nil, 0)
	probeDone := make(chan error, 1)
	go func() { _, err := f.Eligibility(context.Background(), "p"); probeDone <- err }()
	<-entered
	_, err := f.Eligibility(context.Background(), "p")
	if !errors.Is(err, gobreaker.ErrTooManyRequests) || !errors.Is(err, adapter.ErrUnavailable) {
		t.Fatalf("second concurrent probe: %v, want ErrTooManyRequests wrapped in ErrUnavailable", err)
	}
	release()
	if err := <-probeDone; err != nil {
		t.Fatalf("probe: %v", err)
	}
}

func TestFacadeBulkheadFailsFast(t *testing.T) {
	fake := &fakeRegistry{}
	release := fake.stallCalls()
	defer release()
	entered := make(chan struct{}, 2)
	fake.entered = entered
	f := newFacade(t, fake, adapter.FacadeConfig{MaxInFlight: 2, ReadTimeout: 10 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { _, _ = f.Eligibility(ctx, "p") })
	}
	<-entered
	<-entered
	start := time.Now()
	_, err := f.Eligibility(context.Background(), "p")
	if !errors.Is(err, adapter.ErrUnavailable) || !strings.Contains(err.Error(), "bulkhead full") {
		t.Fatalf("third call: %v, want bulkhead full", err)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Fatalf("bulkhead rejection took %v: it must not queue", waited)
	}
	if got := fake.calls.Load(); got != 2 {
		t.Fatalf("registry saw %d calls, want 2", got)
	}
	if v := metricValue(t, f, "yeyak_registry_bulkhead_rejections_total", "operation", adapter.OpEligibility); v != 1 {
		t.Fatalf("bulkhead rejections %v, want 1", v)
	}
	cancel()
	release()
	wg.Wait()
}

func TestFacadeExclusions(t *testing.T) {
	t.Run("caller cancellation is excluded", func(t *testing.T) {
		fake := &fakeRegistry{}
		release := fake.stallCalls()
		defer release()
		f := newFacade(t, fake, adapter.FacadeConfig{MinRequests: 2, ReadTimeout: 10 * time.Second})
		for range 5 {
			ctx, cancel := context.WithCancel(context.Background())
			entered := make(chan struct{}, 1)
			fake.mu.Lock()
			fake.entered = entered
			fake.mu.Unlock()
			go func() { <-entered; cancel() }()
			_, err := f.Eligibility(ctx, "p")
			if !errors.Is(err, context.Canceled) || !errors.Is(err, adapter.ErrUnavailable) {
				t.Fatalf("cancelled call: %v", err)
			}
		}
		s := breakerStatus(t, f, adapter.BreakerRead)
		if s.State != "closed" || s.Counts.Exclusions != 5 || s.Counts.Failures != 0 {
			t.Fatalf("after 5 cancelled calls: %+v, want closed with 5 exclusions", s)
		}
	})
	t.Run("a context already done never reaches the registry", func(t *testing.T) {
		fake := &fakeRegistry{}
		f := newFacade(t, fake, adapter.FacadeConfig{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := f.Eligibility(ctx, "p"); !errors.Is(err, context.Canceled) || !errors.Is(err, adapter.ErrUnavailable) {
			t.Fatalf("got %v", err)
		}
		if fake.calls.Load() != 0 || breakerStatus(t, f, adapter.BreakerRead).Counts.Requests != 0 {
			t.Fatal("a dead context reached the registry or the breaker")
		}
	})
	t.Run("caller deadline shorter than the slow threshold is excluded", func(t *testing.T) {
		fake := &fakeRegistry{}
		fake.set(nil, time.Second)
		f := newFacade(t, fake, adapter.FacadeConfig{MinRequests: 2, ReadSlowThreshold: 500 * time.Millisecond})
		for range 3 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
			_, err := f.Eligibility(ctx, "p")
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("short-deadline call: %v", err)
			}
		}
		if s := breakerStatus(t, f, adapter.BreakerRead); s.State != "closed" || s.Counts.Failures != 0 {
			t.Fatalf("%+v, want closed and no failures", s)
		}
	})
	for _, sentinel := range []error{adapter.ErrRejected, adapter.ErrNotFound} {
		t.Run(sentinel.Error()+" counts as success", func(t *testing.T) {
			fake := &fakeRegistry{}
			fake.set(fmt.Errorf("person P1: %w", sentinel), 0)
			f := newFacade(t, fake, adapter.FacadeConfig{MinRequests: 2})
			for range 10 {
				err := f.RecordBooking(context.Background(), adapter.BookingRecord{BookingID: "b"})
				if !errors.Is(err, sentinel) || errors.Is(err, adapter.ErrUnavailable) {
					t.Fatalf("got %v, want %v and not unavailable", err, sentinel)
				}
			}
			if s := breakerStatus(t, f, adapter.BreakerWrite); s.State != "closed" || s.Counts.Successes != 10 {
				t.Fatalf("%+v, want closed with 10 successes", s)
			}
		})
	}
}

func TestFacadeForcedStates(t *testing.T) {
	fake := &fakeRegistry{}
	f := newFacade(t, fake, adapter.FacadeConfig{MinRequests: 2, OpenTimeout: time.Hour})
	ctx := context.Background()

	if err := f.ForceOpen(ctx, adapter.BreakerWrite); err != nil {
		t.Fatal(err)
	}
	err := f.RecordBooking(ctx, adapter.BookingRecord{BookingID: "b"})
	if !errors.Is(err, adapter.ErrUnavailable) || !errors.Is(err, gobreaker.ErrOpenState) || fake.calls.Load() != 0 {
		t.Fatalf("forced open: %v (registry calls %d)", err, fake.calls.Load())
	}
	if s := breakerStatus(t, f, adapter.BreakerWrite); s.State != "open" || s.Forced != "open" {
		t.Fatalf("%+v", s)
	}
	if _, err := f.Eligibility(ctx, "p"); err != nil {
		t.Fatalf("reads are unaffected by the write breaker: %v", err)
	}

	// Forced closed: failures pass through and never trip it.
	if err := f.ForceClosed(ctx, adapter.BreakerWrite); err != nil {
		t.Fatal(err)
	}
	fake.set(errBoom, 0)
	for range 10 {
		if err := f.CancelBooking(ctx, "b"); !errors.Is(err, errBoom) {
			t.Fatalf("forced closed: %v", err)
		}
	}
	if s := breakerStatus(t, f, adapter.BreakerWrite); s.State != "closed" || s.Forced != "closed" {
		t.Fatalf("%+v", s)
	}

	// Reset: back to a normal, fresh breaker that trips again.
	if err := f.Reset(ctx, adapter.BreakerWrite); err != nil {
		t.Fatal(err)
	}
	if s := breakerStatus(t, f, adapter.BreakerWrite); s.State != "closed" || s.Forced != "" || s.Counts.Requests != 0 || s.LastCause != "reset by ops" {
		t.Fatalf("after reset %+v", s)
	}
	for range 2 {
		_ = f.CancelBooking(ctx, "b")
	}
	if s := breakerStatus(t, f, adapter.BreakerWrite); s.State != "open" {
		t.Fatalf("after reset and 2 failures: %+v", s)
	}
	if err := f.ForceOpen(ctx, "nope"); !errors.Is(err, adapter.ErrUnknownBreaker) {
		t.Fatalf("unknown breaker: %v", err)
	}
}

func TestFacadeLogsTransitions(t *testing.T) {
	var buf syncBuffer
	fake := &fakeRegistry{}
	fake.set(errBoom, 0)
	f := newFacade(t, fake, adapter.FacadeConfig{MinRequests: 1, OpenTimeout: time.Hour,
		Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	_, _ = f.Eligibility(context.Background(), "P0000000042")
	out := buf.String()
	for _, want := range []string{`"msg":"registry breaker transition"`, `"breaker":"read"`, `"from":"closed"`, `"to":"open"`, `"cause":"failure ratio 1.00 over 1 calls`} {
		if !strings.Contains(out, want) {
			t.Fatalf("log %s lacks %s", out, want)
		}
	}
	if strings.Contains(out, "P0000000042") {
		t.Fatal("person id logged")
	}
	if n := strings.Count(out, "\n"); n != 1 {
		t.Fatalf("%d log lines, want one per transition", n)
	}
}

func TestFacadeDefaultsAndValidation(t *testing.T) {
	if _, err := adapter.NewFacade(nil, adapter.FacadeConfig{}); err == nil {
		t.Fatal("nil registry accepted")
	}
	if _, err := adapter.NewFacade(nopRegistry{}, adapter.FacadeConfig{Window: time.Second, BucketPeriod: time.Minute}); err == nil {
		t.Fatal("bucket longer than window accepted")
	}
	// The default read deadline applies when the caller gives none: a
	// stall with defaults returns in about 800ms.
	fake := &fakeRegistry{}
	release := fake.stallCalls()
	defer release()
	f := newFacade(t, fake, adapter.FacadeConfig{})
	start := time.Now()
	_, err := f.Eligibility(context.Background(), "p")
	if waited := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || waited < 700*time.Millisecond || waited > 3*time.Second {
		t.Fatalf("default deadline: err %v after %v, want DeadlineExceeded after ~800ms", err, waited)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestFacadeOldFailuresAgeOut: the breaker counts calls in a rolling window
// of BucketPeriod buckets, so failures age out one bucket at a time: two
// failures, then a third half a window later; when the first two have aged
// out the third is still counted, and two more failures (three in the
// window, under MinRequests) leave the breaker closed, where a breaker that
// never forgot would have tripped on five.
func TestFacadeOldFailuresAgeOut(t *testing.T) {
	const window, bucket = time.Second, 50 * time.Millisecond
	fake := &fakeRegistry{}
	fake.set(errBoom, 0)
	f := newFacade(t, fake, adapter.FacadeConfig{Window: window, BucketPeriod: bucket, MinRequests: 4, FailureRatio: 0.5, OpenTimeout: time.Hour})
	ctx := context.Background()
	fail := func() {
		t.Helper()
		if _, err := f.Eligibility(ctx, "p"); !errors.Is(err, errBoom) {
			t.Fatalf("failing call: %v", err)
		}
	}
	failures := func() uint32 { return breakerStatus(t, f, adapter.BreakerRead).Counts.Failures }

	start := time.Now()
	fail()
	fail()
	// Half a window later (in a later bucket), one more failure.
	for time.Since(start) < window/2 {
		time.Sleep(5 * time.Millisecond)
	}
	fail()
	if n := failures(); n != 3 {
		t.Fatalf("failures in window = %d, want 3", n)
	}
	// The first two leave the window while the third is half a window from
	// leaving it.
	waitFor(t, "the first failures to age out", func() bool { return failures() < 2 })
	if n := failures(); n != 1 {
		t.Fatalf("failures in window = %d after the oldest bucket aged out, want 1 (the newer one stays)", n)
	}
	fail()
	fail()
	if s := breakerStatus(t, f, adapter.BreakerRead); s.State != "closed" || s.Counts.Failures != 3 {
		t.Fatalf("after 5 failures of which 2 aged out: %+v, want closed with 3 in the window", s)
	}
	fail()
	if s := breakerStatus(t, f, adapter.BreakerRead).State; s != "open" {
		t.Fatalf("4 failures in the window: %s, want open", s)
	}
}
