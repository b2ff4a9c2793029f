package cache_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/cache"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func alice() adapter.Record {
	return adapter.Record{
		PersonID:  "P0000000001",
		BirthDate: time.Date(1966, 3, 19, 0, 0, 0, 0, time.UTC),
	}
}

func newCache(t testing.TB, reg adapter.Registry, cfg cache.Config) *cache.Cache {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	c, err := cache.New(reg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestStampedeMakesOneRegistryCall(t *testing.T) {
	n := 10_000
	if raceEnabled {
		n = 5_000 // the race detector allows 8,128 live goroutines
	}
	reg := newFakeRegistry()
	reg.put(alice())
	gate := make(chan struct{})
	reg.setGate(gate)
	c := newCache(t, reg, cache.Config{})

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			e, err := c.Get(context.Background(), "P0000000001")
			if err == nil && e.Record.PersonID != "P0000000001" {
				err = fmt.Errorf("got record of %q", e.Record.PersonID)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	// Hold the registry until every request is waiting on the one call.
	eventually(t, "all requests to miss", func() bool { return c.Stats().Misses == int64(n) })
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := reg.single.Load(); got != 1 {
		t.Fatalf("registry calls = %d for %d concurrent cold requests, want 1", got, n)
	}
	st := c.Stats()
	if st.Collapsed != int64(n-1) || st.RegistryCalls != 1 {
		t.Fatalf("collapsed = %d, registry calls = %d; want %d and 1", st.Collapsed, st.RegistryCalls, n-1)
	}
	t.Logf("stampede: %d concurrent requests for one cold person -> %d registry call(s)", n, reg.single.Load())
}

func TestFreshThenStaleWhileRevalidate(t *testing.T) {
	reg := newFakeRegistry()
	reg.put(alice())
	clk := newClock()
	c := newCache(t, reg, cache.Config{FreshTTL: time.Minute, StaleTTL: time.Hour, Now: clk.Now})
	ctx := context.Background()

	e, err := c.Get(ctx, "P0000000001")
	if err != nil || e.Source != cache.SourceRegistry || e.Stale {
		t.Fatalf("first Get = %+v, %v; want fresh from registry", e, err)
	}
	e, err = c.Get(ctx, "P0000000001")
	if err != nil || e.Source != cache.SourceMemory || e.Stale {
		t.Fatalf("second Get = %+v, %v; want fresh from memory", e, err)
	}

	// Past FreshTTL: answered at once although the refresh cannot finish.
	clk.Advance(2 * time.Minute)
	gate := make(chan struct{})
	reg.setGate(gate)
	updated := alice()
	updated.Doses = []adapter.Dose{{Product: "pfizer", Number: 1}}
	reg.put(updated)
	e, err = c.Get(ctx, "P0000000001")
	if err != nil || !e.Stale || e.StaleIfError || e.Source != cache.SourceMemory || len(e.Record.Doses) != 0 {
		t.Fatalf("stale Get = %+v, %v; want the old record marked Stale", e, err)
	}
	// More stale hits while the refresh is in flight start no other refresh.
	for range 10 {
		if _, err := c.Get(ctx, "P0000000001"); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "refresh to reach the registry", func() bool { return reg.single.Load() == 2 })
	close(gate)
	eventually(t, "refreshed record", func() bool {
		e, err := c.Get(ctx, "P0000000001")
		return err == nil && !e.Stale && len(e.Record.Doses) == 1
	})
	if got := reg.single.Load(); got != 2 {
		t.Fatalf("registry calls = %d, want 2 (one fetch, one background refresh)", got)
	}
	if st := c.Stats(); st.HitsStale < 11 || st.Refreshes != 1 {
		t.Fatalf("stats = %+v, want at least 11 stale hits and exactly 1 refresh", st)
	}
}

func TestStaleIfError(t *testing.T) {
	reg := newFakeRegistry()
	reg.put(alice())
	clk := newClock()
	c := newCache(t, reg, cache.Config{FreshTTL: time.Minute, StaleTTL: time.Hour, RefreshBackoff: 30 * time.Second, Now: clk.Now})
	ctx := context.Background()
	if _, err := c.Get(ctx, "P0000000001"); err != nil {
		t.Fatal(err)
	}
	reg.down.Store(true)
	clk.Advance(2 * time.Minute)

	// The first stale hit answers and its background refresh fails.
	if e, err := c.Get(ctx, "P0000000001"); err != nil || !e.Stale {
		t.Fatalf("Get = %+v, %v; want stale answer", e, err)
	}
	eventually(t, "failed refresh", func() bool { return c.Stats().RegistryErrors == 1 })
	// Now the answer is a stale-if-error one, and within RefreshBackoff no
	// new refresh hammers the registry.
	calls := reg.single.Load()
	for range 5 {
		e, err := c.Get(ctx, "P0000000001")
		if err != nil || !e.Stale || !e.StaleIfError {
			t.Fatalf("Get = %+v, %v; want stale-if-error answer", e, err)
		}
	}
	p, err := c.Person(ctx, "P0000000001")
	if err != nil || !p.Stale {
		t.Fatalf("Person = %+v, %v; want Stale person", p, err)
	}
	if got := reg.single.Load(); got != calls {
		t.Fatalf("registry calls went from %d to %d during the refresh backoff", calls, got)
	}

	// An invalidated entry asks the registry first, then falls back.
	c.Invalidate(ctx, "P0000000001")
	e, err := c.Get(ctx, "P0000000001")
	if err != nil || !e.StaleIfError {
		t.Fatalf("Get after Invalidate with registry down = %+v, %v; want stale-if-error", e, err)
	}
	if got := reg.single.Load(); got != calls+1 {
		t.Fatalf("registry calls = %d, want %d (invalidated entry is re-asked)", got, calls+1)
	}

	// Past StaleTTL nothing answers: the error wraps ErrUnavailable.
	clk.Advance(time.Hour)
	if _, err := c.Get(ctx, "P0000000001"); !errors.Is(err, adapter.ErrUnavailable) {
		t.Fatalf("Get past StaleTTL with registry down: err = %v, want ErrUnavailable", err)
	}
	if st := c.Stats(); st.StaleIfError < 7 {
		t.Fatalf("stale_if_error = %d, want >= 7", st.StaleIfError)
	}
}

func TestNegativeCaching(t *testing.T) {
	reg := newFakeRegistry()
	clk := newClock()
	c := newCache(t, reg, cache.Config{NegativeTTL: 30 * time.Second, Now: clk.Now})
	ctx := context.Background()
	for i := range 5 {
		if _, err := c.Get(ctx, "P9999999999"); !errors.Is(err, adapter.ErrNotFound) {
			t.Fatalf("Get %d: err = %v, want ErrNotFound", i, err)
		}
	}
	if got := reg.single.Load(); got != 1 {
		t.Fatalf("registry calls = %d for 5 lookups of an unknown id, want 1", got)
	}
	if st := c.Stats(); st.NegativeHits != 4 {
		t.Fatalf("negative hits = %d, want 4", st.NegativeHits)
	}
	clk.Advance(31 * time.Second)
	reg.put(adapter.Record{PersonID: "P9999999999"})
	if _, err := c.Get(ctx, "P9999999999"); err != nil {
		t.Fatalf("Get after NegativeTTL: %v (the person is known now)", err)
	}
	if got := reg.single.Load(); got != 2 {
		t.Fatalf("registry calls = %d, want 2", got)
	}
}

// TestNegativeStaleIfError: past NegativeTTL an unknown person is asked of
// the registry again, but when it cannot answer, its last word stands:
// ErrNotFound (403 unknown_person), not ErrUnavailable (503) — until
// StaleTTL.
func TestNegativeStaleIfError(t *testing.T) {
	reg := newFakeRegistry()
	clk := newClock()
	c := newCache(t, reg, cache.Config{NegativeTTL: 30 * time.Second, StaleTTL: time.Hour, FreshTTL: time.Minute, Now: clk.Now})
	ctx := context.Background()
	if _, err := c.Get(ctx, "P9999999999"); !errors.Is(err, adapter.ErrNotFound) {
		t.Fatalf("first Get: %v, want ErrNotFound", err)
	}
	clk.Advance(31 * time.Second)
	reg.down.Store(true)
	for i := range 3 {
		if _, err := c.Get(ctx, "P9999999999"); !errors.Is(err, adapter.ErrNotFound) {
			t.Fatalf("Get %d past NegativeTTL, registry down: %v, want ErrNotFound from the stale negative", i, err)
		}
	}
	if got := reg.single.Load(); got != 4 {
		t.Fatalf("registry calls = %d, want 4 (asked first each time)", got)
	}
	if st := c.Stats(); st.StaleIfError != 3 {
		t.Fatalf("stale_if_error = %d, want 3", st.StaleIfError)
	}
	clk.Advance(time.Hour)
	if _, err := c.Get(ctx, "P9999999999"); !errors.Is(err, adapter.ErrUnavailable) {
		t.Fatalf("Get past StaleTTL, registry down: %v, want ErrUnavailable", err)
	}
}

func TestRegistryOutageAndStall(t *testing.T) {
	for _, fault := range []string{"outage", "stall"} {
		t.Run(fault, func(t *testing.T) {
			reg, _ := populated(100)
			c := newCache(t, reg, cache.Config{RefreshTimeout: 5 * time.Second})
			ctx := context.Background()
			cached := []string{"P0000000001", "P0000000002", "P0000000003"}
			for _, id := range cached {
				if _, err := c.Get(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			if fault == "outage" {
				reg.down.Store(true)
			} else {
				reg.stall.Store(true)
			}
			calls := reg.single.Load()
			for range 100 {
				for _, id := range cached {
					if _, err := c.Person(ctx, id); err != nil {
						t.Fatalf("cached person during %s: %v", fault, err)
					}
				}
			}
			if got := reg.single.Load(); got != calls {
				t.Fatalf("registry called %d times for cached people during %s", got-calls, fault)
			}
			// Uncached: an unavailable error within the caller's deadline,
			// even though the shared registry call may go on (stall).
			const deadline = 100 * time.Millisecond
			rctx, cancel := context.WithTimeout(ctx, deadline)
			defer cancel()
			start := time.Now()
			_, err := c.Person(rctx, "P0000000050")
			took := time.Since(start)
			if !errors.Is(err, adapter.ErrUnavailable) || booking.ErrorCode(err) != booking.EREGISTRYDOWN {
				t.Fatalf("uncached person during %s: err = %v, want EREGISTRYDOWN wrapping ErrUnavailable", fault, err)
			}
			if took > deadline+time.Second {
				t.Fatalf("uncached lookup took %v, past the caller's %v deadline", took, deadline)
			}
		})
	}
}

func TestPersonMapping(t *testing.T) {
	reg := newFakeRegistry()
	born := time.Date(1970, 2, 28, 0, 0, 0, 0, time.UTC)
	dose := adapter.Dose{Product: "az", Number: 1, Date: time.Date(2021, 6, 1, 0, 0, 0, 0, time.UTC)}
	for _, r := range []adapter.Record{
		{PersonID: "A", BirthDate: born},
		{PersonID: "B", BirthDate: born, Doses: []adapter.Dose{dose, dose}},
		{PersonID: "C", BirthDate: born, Contraindicated: true},
		{PersonID: "D", BirthDate: born, Excluded: true},
	} {
		reg.put(r)
	}
	c := newCache(t, reg, cache.Config{})
	want := booking.Person{BirthDate: booking.MustDate("1970-02-28")}
	tests := []struct {
		id   string
		want booking.Person
		code booking.Code
	}{
		{id: "A", want: with(want, func(p *booking.Person) { p.ID = "A" })},
		{id: "B", want: with(want, func(p *booking.Person) { p.ID = "B"; p.DosesReceived = 2 })},
		{id: "C", want: with(want, func(p *booking.Person) { p.ID = "C"; p.Excluded = true })},
		{id: "D", want: with(want, func(p *booking.Person) { p.ID = "D"; p.Excluded = true })},
		{id: "unknown", code: booking.EUNKNOWNPERSON},
		{id: "", code: booking.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			p, err := c.Person(context.Background(), tt.id)
			if got := booking.ErrorCode(err); got != tt.code {
				t.Fatalf("code = %q (%v), want %q", got, err, tt.code)
			}
			if tt.code == "" && p != tt.want {
				t.Fatalf("Person = %+v, want %+v", p, tt.want)
			}
		})
	}
}

func with(p booking.Person, f func(*booking.Person)) booking.Person { f(&p); return p }

func TestInvalidateAndRefresh(t *testing.T) {
	reg := newFakeRegistry()
	reg.put(alice())
	c := newCache(t, reg, cache.Config{})
	ctx := context.Background()
	if _, err := c.Get(ctx, "P0000000001"); err != nil {
		t.Fatal(err)
	}
	booked := alice()
	booked.Bookings = []adapter.BookingRecord{{BookingID: "b1", PersonID: "P0000000001", Dose: 1}}
	reg.put(booked)
	if e, _ := c.Get(ctx, "P0000000001"); len(e.Record.Bookings) != 0 {
		t.Fatal("fresh entry changed without invalidation")
	}
	c.Invalidate(ctx, "P0000000001")
	e, err := c.Get(ctx, "P0000000001")
	if err != nil || len(e.Record.Bookings) != 1 || e.Source != cache.SourceRegistry {
		t.Fatalf("Get after Invalidate = %+v, %v; want the registry's new record", e, err)
	}

	reg.put(alice())
	e, err = c.Refresh(ctx, "P0000000001")
	if err != nil || len(e.Record.Bookings) != 0 || e.Source != cache.SourceRegistry {
		t.Fatalf("Refresh = %+v, %v; want the registry's record", e, err)
	}
	if e, _ := c.Get(ctx, "P0000000001"); len(e.Record.Bookings) != 0 || e.Source != cache.SourceMemory {
		t.Fatalf("Get after Refresh = %+v; want the refreshed record from memory", e)
	}
	if got := reg.single.Load(); got != 3 {
		t.Fatalf("registry calls = %d, want 3", got)
	}
}

func TestEvictionBounds(t *testing.T) {
	one := cache.EntrySize("P0000000000", &adapter.Record{PersonID: "P0000000000"})
	tests := []struct {
		name        string
		cfg         cache.Config
		fill        int
		wantEntries int
	}{
		{"entries, small", cache.Config{MaxEntries: 100}, 1_000, 100},
		{"entries, larger", cache.Config{MaxEntries: 20_000}, 60_000, 20_000},
		{"bytes", cache.Config{MaxBytes: int64(50 * one)}, 1_000, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, _ := populated(tt.fill)
			c := newCache(t, reg, tt.cfg)
			ctx := context.Background()
			for i := range tt.fill {
				id := fmt.Sprintf("P%010d", i)
				if _, err := c.Get(ctx, id); err != nil && !errors.Is(err, adapter.ErrNotFound) {
					t.Fatal(err)
				}
			}
			st := c.Stats()
			if st.Entries > tt.wantEntries || st.Entries < tt.wantEntries*9/10 {
				t.Fatalf("entries = %d, want at most %d and close to it", st.Entries, tt.wantEntries)
			}
			if tt.cfg.MaxBytes > 0 && st.Bytes > tt.cfg.MaxBytes {
				t.Fatalf("bytes = %d over MaxBytes %d", st.Bytes, tt.cfg.MaxBytes)
			}
			if st.Evictions != int64(tt.fill-st.Entries) {
				t.Fatalf("evictions = %d, want %d", st.Evictions, tt.fill-st.Entries)
			}
		})
	}

	t.Run("least recently used goes first", func(t *testing.T) {
		reg, _ := populated(10)
		c := newCache(t, reg, cache.Config{MaxEntries: 3})
		ctx := context.Background()
		get := func(i int) cache.Source {
			e, err := c.Get(ctx, fmt.Sprintf("P%010d", i))
			if err != nil {
				t.Fatal(err)
			}
			return e.Source
		}
		get(1)
		get(2)
		get(3)
		get(1) // 2 is now the least recently used
		get(4) // evicts 2
		if get(1) != cache.SourceMemory || get(3) != cache.SourceMemory {
			t.Fatal("recently used entries were evicted")
		}
		if get(2) != cache.SourceRegistry {
			t.Fatal("least recently used entry was kept")
		}
	})
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]cache.Config{
		"stale below fresh": {FreshTTL: time.Hour, StaleTTL: time.Minute},
		"negative":          {MaxEntries: -1},
	} {
		if _, err := cache.New(newFakeRegistry(), cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	if _, err := cache.New(nil, cache.Config{}); err == nil {
		t.Error("New accepted a nil registry")
	}
}

func TestClosedCache(t *testing.T) {
	reg := newFakeRegistry()
	reg.put(alice())
	c := newCache(t, reg, cache.Config{})
	ctx := context.Background()
	if _, err := c.Get(ctx, "P0000000001"); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "P0000000001"); err != nil {
		t.Fatalf("memory hit after Close: %v", err)
	}
	if _, err := c.Get(ctx, "P0000000002"); !errors.Is(err, cache.ErrClosed) || !errors.Is(err, adapter.ErrUnavailable) {
		t.Fatalf("miss after Close: err = %v, want ErrClosed (unavailable)", err)
	}
}
