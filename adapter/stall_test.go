package adapter_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/adapter/gateway"
	"github.com/yeyak/yeyak/mocks/registry"
)

// stalledGatewayFacade is the production shape — Facade → gateway client →
// the mock registry's HTTP server — with the mock stalling (it accepts
// connections and never answers).
func stalledGatewayFacade(tb testing.TB, cfg adapter.FacadeConfig) (*adapter.Facade, *registry.Registry) {
	tb.Helper()
	reg := registry.NewEmpty()
	srv, err := reg.Start("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close() })
	gw, err := gateway.New(gateway.Config{BaseURL: srv.URL(), Logger: quietLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { gw.Close() })
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	f, err := adapter.NewFacade(gw, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	if err := reg.SetFaults(registry.Faults{Stall: true}); err != nil {
		tb.Fatal(err)
	}
	return f, reg
}

func TestFacadeOverStalledGateway(t *testing.T) {
	const deadline = 150 * time.Millisecond
	f, reg := stalledGatewayFacade(t, adapter.FacadeConfig{
		ReadTimeout: deadline, ReadSlowThreshold: 100 * time.Millisecond, MinRequests: 5, OpenTimeout: time.Hour,
	})
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			start := time.Now()
			_, err := f.Eligibility(context.Background(), "P0000000001")
			if !errors.Is(err, adapter.ErrUnavailable) {
				t.Errorf("stalled: %v", err)
			}
			if waited := time.Since(start); waited > deadline+time.Second {
				t.Errorf("caller waited %v (deadline %v)", waited, deadline)
			}
		})
	}
	wg.Wait()
	if s := breakerStatus(t, f, adapter.BreakerRead).State; s != "open" {
		t.Fatalf("read breaker %s after 5 stalled calls, want open", s)
	}
	// Open: the next callers do not even reach the registry.
	before := reg.Stats().Stalled
	start := time.Now()
	_, err := f.Eligibility(context.Background(), "P0000000001")
	if !errors.Is(err, adapter.ErrUnavailable) || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("open breaker: %v after %v", err, time.Since(start))
	}
	if reg.Stats().Stalled != before {
		t.Fatal("a call reached the stalled registry through an open breaker")
	}
}

// BenchmarkFacadeStallWorstWaitMock is the worst caller wait through the
// whole stack (Facade → gateway → mock HTTP server in stall mode) with the
// default 800ms read deadline. Breaker forced closed so that every call
// meets the stall (with the breaker working they fail fast once it opens).
func BenchmarkFacadeStallWorstWaitMock(b *testing.B) {
	f, _ := stalledGatewayFacade(b, adapter.FacadeConfig{MaxInFlight: 1 << 20})
	ctx := context.Background()
	_ = f.ForceClosed(ctx, adapter.BreakerRead)
	const deadline = 800 * time.Millisecond
	var worst time.Duration
	for b.Loop() {
		waits := make(chan time.Duration, 16)
		for range 16 {
			go func() {
				start := time.Now()
				_, _ = f.Eligibility(ctx, "P0000000001")
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
