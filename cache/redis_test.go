package cache_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/cache"
	"github.com/yeyak/yeyak/mocks/testenv"
)

// sharedRedis returns a client to the machine's Redis and a key prefix of
// this test's own; the keys under it are deleted at the end (never FLUSH).
func sharedRedis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	addr, prefix := testenv.RedisAddr(t)
	cl := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := cl.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			cl.Del(ctx, keys...)
		}
		cl.Close()
	})
	return cl, prefix
}

func TestRedisTierSharedBetweenCaches(t *testing.T) {
	cl, prefix := sharedRedis(t)
	reg, _ := populated(100)
	cfg := cache.Config{Redis: cl, KeyPrefix: prefix, FreshTTL: time.Hour, StaleTTL: 3 * time.Hour, RedisTimeout: time.Second}
	a := newCache(t, reg, cfg)
	b := newCache(t, reg, cfg)
	ctx := context.Background()

	e, err := a.Get(ctx, "P0000000001")
	if err != nil || e.Source != cache.SourceRegistry {
		t.Fatalf("a.Get = %+v, %v; want from registry", e, err)
	}
	e2, err := b.Get(ctx, "P0000000001")
	if err != nil || e2.Source != cache.SourceRedis {
		t.Fatalf("b.Get = %+v, %v; want from redis", e2, err)
	}
	if !e2.FetchedAt.Equal(e.FetchedAt) || e2.Record.PersonID != "P0000000001" || !e2.Record.BirthDate.Equal(e.Record.BirthDate) {
		t.Fatalf("b got %+v, a got %+v", e2, e)
	}
	if got := reg.single.Load(); got != 1 {
		t.Fatalf("registry calls = %d, want 1 for two caches sharing Redis", got)
	}
	// The Redis TTL ends StaleTTL after the fetch.
	ttl, err := cl.PTTL(ctx, prefix+"elig:P0000000001").Result()
	if err != nil || ttl <= 3*time.Hour-time.Minute || ttl > 3*time.Hour {
		t.Fatalf("redis TTL = %v, %v; want about StaleTTL (3h)", ttl, err)
	}

	// Negative entries are shared too, with NegativeTTL.
	for _, c := range []*cache.Cache{a, b} {
		if _, err := c.Get(ctx, "nobody"); err == nil {
			t.Fatal("unknown person found")
		}
	}
	if got := reg.single.Load(); got != 2 {
		t.Fatalf("registry calls = %d, want 2 (negative entry shared)", got)
	}

	// Invalidate removes the shared copy (in the background: Invalidate
	// never waits for Redis): a third cache then asks the registry.
	a.Invalidate(ctx, "P0000000001")
	eventually(t, "the Redis key deleted", func() bool {
		n, err := cl.Exists(ctx, prefix+"elig:P0000000001").Result()
		return err == nil && n == 0
	})
	c3 := newCache(t, reg, cfg)
	if e, err := c3.Get(ctx, "P0000000001"); err != nil || e.Source != cache.SourceRegistry {
		t.Fatalf("c3.Get after Invalidate = %+v, %v; want from registry", e, err)
	}
}

func TestRedisTierStaleEntryRevalidates(t *testing.T) {
	cl, prefix := sharedRedis(t)
	reg, _ := populated(10)
	clk := newClock()
	cfg := cache.Config{Redis: cl, KeyPrefix: prefix, FreshTTL: time.Minute, StaleTTL: time.Hour, Now: clk.Now, RedisTimeout: time.Second}
	a := newCache(t, reg, cfg)
	ctx := context.Background()
	if _, err := a.Get(ctx, "P0000000002"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	b := newCache(t, reg, cfg)
	e, err := b.Get(ctx, "P0000000002")
	if err != nil || e.Source != cache.SourceRedis || !e.Stale {
		t.Fatalf("b.Get = %+v, %v; want a stale answer from Redis", e, err)
	}
	eventually(t, "background refresh", func() bool {
		e, err := b.Get(ctx, "P0000000002")
		return err == nil && !e.Stale
	})
	if got := reg.single.Load(); got != 2 {
		t.Fatalf("registry calls = %d, want 2", got)
	}
}

// ownRedis starts a redis-server of the test's own on a free port and
// returns its address and a func that kills it.
func ownRedis(t *testing.T) (addr string, kill func()) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Unavailable(t, "redis-server binary", err)
	}
	port := testenv.FreePort(t)
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	killed := false
	kill = func() {
		if !killed {
			killed = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(kill)
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	probe := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer probe.Close()
	eventually(t, "redis-server to answer", func() bool {
		return probe.Ping(context.Background()).Err() == nil
	})
	return addr, kill
}

func TestRedisKilledMidTest(t *testing.T) {
	addr, kill := ownRedis(t)
	reg, _ := populated(100)
	cfg := cache.Config{RedisAddr: addr, KeyPrefix: "t:", RedisTimeout: 200 * time.Millisecond, RedisBackoff: 50 * time.Millisecond}
	a := newCache(t, reg, cfg)
	b := newCache(t, reg, cfg)
	ctx := context.Background()
	if _, err := a.Get(ctx, "P0000000001"); err != nil {
		t.Fatal(err)
	}
	if e, err := b.Get(ctx, "P0000000001"); err != nil || e.Source != cache.SourceRedis {
		t.Fatalf("b.Get = %+v, %v; want from redis while it runs", e, err)
	}

	kill()

	// Cached people answer from memory, uncached from the registry; no
	// lookup sees an error.
	for i := range 20 {
		id := fmt.Sprintf("P%010d", i)
		if _, err := a.Get(ctx, id); err != nil && !errors.Is(err, adapter.ErrNotFound) {
			t.Fatalf("a.Get(%s) with Redis dead: %v", id, err)
		}
	}
	c := newCache(t, reg, cfg)
	for i := range 20 {
		id := fmt.Sprintf("P%010d", i)
		e, err := c.Get(ctx, id)
		if err != nil && !errors.Is(err, adapter.ErrNotFound) {
			t.Fatalf("new cache Get with Redis dead: %v", err)
		}
		if err == nil && e.Source != cache.SourceRegistry && e.Source != cache.SourceMemory {
			t.Fatalf("source = %s with Redis dead", e.Source)
		}
	}
	st := c.Stats()
	if st.Redis == nil || st.Redis.Failures == 0 {
		t.Fatalf("redis stats = %+v, want failures counted", st.Redis)
	}
	if err := a.Close(); err != nil {
		t.Logf("close with Redis dead: %v", err)
	}
}

// Invalidate on one instance reaches the others' memory through Redis
// pub/sub.
func TestRedisInvalidationReachesOtherInstances(t *testing.T) {
	cl, prefix := sharedRedis(t)
	reg, _ := populated(10)
	cfg := cache.Config{Redis: cl, KeyPrefix: prefix, RedisTimeout: time.Second}
	a := newCache(t, reg, cfg)
	b := newCache(t, reg, cfg)
	ctx := context.Background()
	for _, c := range []*cache.Cache{a, b} {
		if _, err := c.Get(ctx, "P0000000003"); err != nil {
			t.Fatal(err)
		}
	}
	if e, _ := b.Get(ctx, "P0000000003"); e.Source != cache.SourceMemory {
		t.Fatalf("b answered from %s, want memory", e.Source)
	}
	// b's subscription may not be active yet: repeat until it hears one.
	eventually(t, "b to hear the invalidation", func() bool {
		a.Invalidate(ctx, "P0000000003")
		e, err := b.Get(ctx, "P0000000003")
		return err == nil && e.Source == cache.SourceRegistry
	})
}

// An instance ignores its own invalidations when Redis pub/sub echoes them
// back: the record it fetched right after invalidating stays current
// instead of being invalidated a second time (one more registry read per
// booking).
func TestOwnInvalidationEchoIgnored(t *testing.T) {
	cl, prefix := sharedRedis(t)
	reg, _ := populated(10)
	cfg := cache.Config{Redis: cl, KeyPrefix: prefix, RedisTimeout: time.Second}
	a := newCache(t, reg, cfg)
	b := newCache(t, reg, cfg)
	ctx := context.Background()
	const p, q = "P0000000003", "P0000000004"
	for _, c := range []*cache.Cache{a, b} {
		for _, id := range []string{p, q} {
			if _, err := c.Get(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Both subscriptions are live once each instance hears the other.
	eventually(t, "b's subscription", func() bool {
		a.Invalidate(ctx, q)
		e, _ := b.Get(ctx, q)
		return e.Source == cache.SourceRegistry
	})
	eventually(t, "a's subscription", func() bool {
		b.Invalidate(ctx, q)
		e, _ := a.Get(ctx, q)
		return e.Source == cache.SourceRegistry
	})
	// Both answer q from memory now, then a invalidates p and refetches it
	// at once, before its own publication comes back.
	for _, c := range []*cache.Cache{a, b} {
		if _, err := c.Get(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	a.Invalidate(ctx, p)
	if e, err := a.Get(ctx, p); err != nil || e.Source != cache.SourceRegistry {
		t.Fatalf("a.Get after Invalidate = %+v, %v", e, err)
	}
	// b hears p, then invalidates q; a hears q after p's echo (one
	// subscription connection delivers in order).
	eventually(t, "b to hear p", func() bool {
		e, err := b.Get(ctx, p)
		return err == nil && e.Source == cache.SourceRegistry
	})
	b.Invalidate(ctx, q)
	eventually(t, "a to hear q", func() bool {
		e, err := a.Get(ctx, q)
		return err == nil && e.Source == cache.SourceRegistry
	})
	if e, err := a.Get(ctx, p); err != nil || e.Source != cache.SourceMemory {
		t.Fatalf("a.Get(p) after its own invalidation echoed back = %+v, %v; want memory", e, err)
	}
}
