package adapter_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/yeyak/yeyak/adapter"
)

// BenchmarkDirectCall is the baseline for BenchmarkFacadeOverhead: the
// same no-op registry called without the facade.
func BenchmarkDirectCall(b *testing.B) {
	var r adapter.Registry = nopRegistry{}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Eligibility(ctx, "P0000000001"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFacadeOverhead is the cost the facade adds per call: bulkhead,
// closed breaker, deadline, goroutine hand-off, metrics.
func BenchmarkFacadeOverhead(b *testing.B) {
	f, err := adapter.NewFacade(nopRegistry{}, adapter.FacadeConfig{Logger: quietLogger(), MaxInFlight: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.Eligibility(ctx, "P0000000001"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkFacadeOverheadSerial is BenchmarkFacadeOverhead on one goroutine,
// comparable one-to-one with BenchmarkDirectCall.
func BenchmarkFacadeOverheadSerial(b *testing.B) {
	f, err := adapter.NewFacade(nopRegistry{}, adapter.FacadeConfig{Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Eligibility(ctx, "P0000000001"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFacadeStallWorstWait measures how long callers wait, at most,
// when the registry stalls (accepts, never answers, ignores ctx), with the
// default 800ms read deadline. Calls run in waves of 16 concurrent callers
// (the breaker is forced closed so every call reaches the stalled registry
// and waits out its deadline; with the breaker active they would fail fast
// once it opens). Reported: max-wait-ms and the overshoot past the deadline.
func BenchmarkFacadeStallWorstWait(b *testing.B) {
	fake := &fakeRegistry{}
	release := fake.stallCalls()
	defer release()
	f, err := adapter.NewFacade(fake, adapter.FacadeConfig{Logger: quietLogger(), MaxInFlight: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	_ = f.ForceClosed(ctx, adapter.BreakerRead)
	const deadline = 800 * time.Millisecond
	var worst time.Duration
	for b.Loop() {
		waits := make(chan time.Duration, 16)
		for range 16 {
			go func() {
				start := time.Now()
				_, err := f.Eligibility(ctx, "P0000000001")
				if !errors.Is(err, context.DeadlineExceeded) {
					b.Errorf("stalled call: %v", err)
				}
				waits <- time.Since(start)
			}()
		}
		for range 16 {
			worst = max(worst, <-waits)
		}
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "max-wait-ms")
	b.ReportMetric(float64((worst-deadline).Microseconds())/1000, "overshoot-ms")
}
