package cache_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/cache"
)

// countingHandler counts log records whose message contains a substring.
type countingHandler struct {
	substr string
	n      *atomic.Int64
	attrs  *sync.Map // attribute keys seen, to check no person id is logged
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.substr) {
		h.n.Add(1)
	}
	r.Attrs(func(a slog.Attr) bool { h.attrs.Store(a.Value.String(), true); return true })
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// A Redis that accepts connections and never answers (a stalled server):
// lookups go on within RedisTimeout, without errors, and the failure is
// logged once per RedisLogInterval however many lookups meet it.
func TestRedisStalledDegradesQuietly(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { <-stop; c.Close() })
		}
	}()
	t.Cleanup(func() { l.Close(); close(stop); conns.Wait() })

	var logged atomic.Int64
	attrs := &sync.Map{}
	logger := slog.New(countingHandler{substr: "redis tier unavailable", n: &logged, attrs: attrs})
	reg, _ := populated(100)
	c := newCache(t, reg, cache.Config{
		RedisAddr: l.Addr().String(), RedisTimeout: 20 * time.Millisecond, RedisBackoff: time.Nanosecond,
		Logger: logger,
	})
	ctx := context.Background()
	start := time.Now()
	const lookups = 12
	for i := range lookups {
		if _, err := c.Get(ctx, fmt.Sprintf("P%010d", i)); err != nil && !errors.Is(err, adapter.ErrNotFound) {
			t.Fatalf("Get with Redis stalled: %v", err)
		}
	}
	took := time.Since(start)
	st := c.Stats()
	if st.Redis.Failures < 2 {
		t.Fatalf("redis failures = %d, want several", st.Redis.Failures)
	}
	if got := logged.Load(); got != 1 {
		t.Fatalf("logged %d lines about Redis for %d failures, want 1", got, st.Redis.Failures)
	}
	// Each miss pays at most a get and a set deadline.
	if limit := lookups * 2 * (20*time.Millisecond + 50*time.Millisecond); took > limit+2*time.Second {
		t.Fatalf("%d lookups took %v with Redis stalled", lookups, took)
	}
	attrs.Range(func(k, _ any) bool {
		if strings.HasPrefix(k.(string), "P00000000") {
			t.Errorf("a person id was logged: %v", k)
		}
		return true
	})
}

// MaxRefreshes bounds the background refreshes: stale hits beyond it answer
// without scheduling one, and are counted.
func TestBackgroundRefreshesBounded(t *testing.T) {
	reg, _ := populated(10)
	clk := newClock()
	c := newCache(t, reg, cache.Config{FreshTTL: time.Minute, StaleTTL: time.Hour, MaxRefreshes: 1, Now: clk.Now})
	ctx := context.Background()
	ids := []string{"P0000000001", "P0000000002", "P0000000003"}
	for _, id := range ids {
		if _, err := c.Get(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(2 * time.Minute)
	gate := make(chan struct{})
	reg.setGate(gate)
	for _, id := range ids {
		if e, err := c.Get(ctx, id); err != nil || !e.Stale {
			t.Fatalf("stale Get = %+v, %v", e, err)
		}
	}
	st := c.Stats()
	if st.RefreshesDropped != 2 {
		t.Fatalf("refreshes dropped = %d, want 2 (one slot, three stale people)", st.RefreshesDropped)
	}
	close(gate)
	eventually(t, "the one refresh", func() bool { return c.Stats().Refreshes == 1 && reg.single.Load() == 4 })
	// The dropped ones are refreshed by a later hit.
	eventually(t, "later refreshes", func() bool {
		for _, id := range ids {
			if e, _ := c.Get(ctx, id); e.Stale {
				return false
			}
		}
		return true
	})
}
