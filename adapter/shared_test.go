package adapter_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/mocks/testenv"
)

// sharedPair returns two Facades (two "instances") sharing breaker state
// through the machine's Redis under a unique prefix.
func sharedPair(t *testing.T, cfg adapter.FacadeConfig) (f1, f2 *adapter.Facade, r1, r2 *fakeRegistry) {
	t.Helper()
	addr, prefix := testenv.RedisAddr(t)
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := client.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			client.Del(ctx, keys...)
		}
		client.Close()
	})
	cfg.Shared = &adapter.SharedConfig{Client: client, KeyPrefix: prefix}
	r1, r2 = &fakeRegistry{}, &fakeRegistry{}
	return newFacade(t, r1, cfg), newFacade(t, r2, cfg), r1, r2
}

func TestSharedBreakerAcrossInstances(t *testing.T) {
	f1, f2, r1, r2 := sharedPair(t, adapter.FacadeConfig{MinRequests: 4, OpenTimeout: time.Hour})
	ctx := context.Background()
	if s := breakerStatus(t, f2, adapter.BreakerRead); !s.Shared || s.State != "closed" {
		t.Fatalf("fresh shared breaker: %+v", s)
	}
	// Instance 1 sees the registry fail and trips the shared breaker.
	r1.set(errBoom, 0)
	for range 4 {
		_, _ = f1.Eligibility(ctx, "p")
	}
	waitFor(t, "instance 2 to see the breaker open", func() bool {
		return breakerStatus(t, f2, adapter.BreakerRead).State == "open"
	})
	_, err := f2.Eligibility(ctx, "p")
	if !errors.Is(err, gobreaker.ErrOpenState) || !errors.Is(err, adapter.ErrUnavailable) {
		t.Fatalf("instance 2 call: %v, want open", err)
	}
	if r2.calls.Load() != 0 {
		t.Fatalf("instance 2 reached its registry %d times through an open shared breaker", r2.calls.Load())
	}

	// A reset on instance 2 closes it for instance 1 too.
	if err := f2.Reset(ctx, adapter.BreakerRead); err != nil {
		t.Fatal(err)
	}
	r1.set(nil, 0)
	// Other instances see it within RefreshInterval (Breakers reads afresh).
	waitFor(t, "instance 1 to see the reset", func() bool {
		return breakerStatus(t, f1, adapter.BreakerRead).State == "closed"
	})
	if _, err := f1.Eligibility(ctx, "p"); err != nil {
		t.Fatalf("instance 1 after reset on instance 2: %v", err)
	}

	// Forcing open on instance 1 opens the write breaker fleet-wide.
	if err := f1.ForceOpen(ctx, adapter.BreakerWrite); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "instance 2 to see the override", func() bool {
		return breakerStatus(t, f2, adapter.BreakerWrite).Forced == "open"
	})
	if err := f2.CancelBooking(ctx, "b"); !errors.Is(err, gobreaker.ErrOpenState) {
		t.Fatalf("instance 2 write while forced open on instance 1: %v", err)
	}
	if s := breakerStatus(t, f2, adapter.BreakerWrite); s.Forced != "open" || s.State != "open" {
		t.Fatalf("instance 2 write breaker %+v", s)
	}
	if err := f1.Reset(ctx, adapter.BreakerWrite); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "instance 2 to see the reset", func() bool {
		return breakerStatus(t, f2, adapter.BreakerWrite).Forced == ""
	})
	if err := f2.CancelBooking(ctx, "b"); err != nil {
		t.Fatalf("after reset: %v", err)
	}
}

func TestSharedBreakerHalfOpenRecovery(t *testing.T) {
	f1, f2, r1, _ := sharedPair(t, adapter.FacadeConfig{MinRequests: 2, OpenTimeout: 50 * time.Millisecond, HalfOpenRequests: 1})
	ctx := context.Background()
	r1.set(errBoom, 0)
	for range 2 {
		_, _ = f1.Eligibility(ctx, "p")
	}
	waitFor(t, "open", func() bool { return breakerStatus(t, f2, adapter.BreakerRead).State == "open" })
	waitFor(t, "half-open", func() bool { return breakerStatus(t, f2, adapter.BreakerRead).State == "half-open" })
	// Instance 2's registry is fine: its probe closes the breaker for both.
	if _, err := f2.Eligibility(ctx, "p"); err != nil {
		t.Fatalf("probe: %v", err)
	}
	waitFor(t, "closed on instance 1", func() bool { return breakerStatus(t, f1, adapter.BreakerRead).State == "closed" })
}

func TestSharedBreakerRedisDownAdmitsCalls(t *testing.T) {
	addr, prefix := testenv.RedisAddr(t)
	t.Cleanup(func() { deleteKeys(addr, prefix) })
	proxy := newTCPProxy(t, addr)
	client := redis.NewClient(&redis.Options{Addr: proxy.addr(), MaxRetries: -1, DialTimeout: 50 * time.Millisecond})
	defer client.Close()
	fake := &fakeRegistry{}
	f := newFacade(t, fake, adapter.FacadeConfig{Shared: &adapter.SharedConfig{Client: client, KeyPrefix: prefix, RefreshInterval: -1}})
	ctx := context.Background()
	if _, err := f.Eligibility(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	proxy.stop() // Redis is gone for this instance
	for range 3 {
		if _, err := f.Eligibility(ctx, "p"); err != nil {
			t.Fatalf("with Redis down the call must be admitted: %v", err)
		}
	}
	if fake.calls.Load() != 4 {
		t.Fatalf("registry calls %d, want 4", fake.calls.Load())
	}
	if v := metricValue(t, f, "yeyak_registry_breaker_store_errors_total", "breaker", "read"); v < 3 {
		t.Fatalf("store errors %v, want >= 3", v)
	}
}

// tcpProxy forwards to a real server until stopped, so a test can take
// "Redis" away from one client without touching the shared server.
type tcpProxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *tcpProxy) addr() string { return p.l.Addr().String() }

func (p *tcpProxy) stop() {
	p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// BenchmarkFacadeOverheadShared is BenchmarkFacadeOverheadSerial with the
// breaker state in Redis: one MGET per call for admission (outcomes are
// recorded in the background and dropped, counted, when it falls behind).
func BenchmarkFacadeOverheadShared(b *testing.B) {
	addr, prefix := testenv.RedisAddr(b)
	client := redis.NewClient(&redis.Options{Addr: addr})
	defer func() {
		ctx := context.Background()
		keys, _ := client.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			client.Del(ctx, keys...)
		}
		client.Close()
	}()
	f, err := adapter.NewFacade(nopRegistry{}, adapter.FacadeConfig{Logger: quietLogger(),
		Shared: &adapter.SharedConfig{Client: client, KeyPrefix: prefix}})
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

// deleteKeys deletes the test's keys (under prefix) from the machine's
// Redis, never anything else.
func deleteKeys(addr, prefix string) {
	client := redis.NewClient(&redis.Options{Addr: addr})
	defer client.Close()
	ctx := context.Background()
	if keys, _ := client.Keys(ctx, prefix+"*").Result(); len(keys) > 0 {
		client.Del(ctx, keys...)
	}
}
