package cache_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/cache"
	"github.com/yeyak/yeyak/mocks/population"
	"github.com/yeyak/yeyak/mocks/registry"
)

// These tests run the cache against the project's fake legacy registry
// (mocks/registry), counting on its own call counters and driving its
// fault injection.

func mockRegistry(t *testing.T, people int) (*registry.Registry, population.Config) {
	t.Helper()
	pcfg := population.Config{Seed: 3, People: people}
	return registry.New(registry.Config{Population: pcfg, Logger: quiet}), pcfg
}

func setFaults(t *testing.T, r *registry.Registry, f registry.Faults) {
	t.Helper()
	if err := r.SetFaults(f); err != nil {
		t.Fatal(err)
	}
}

// knownPeople returns n ids of people the registry knows.
func knownPeople(pcfg population.Config, n int) []string {
	var ids []string
	for p := range population.People(pcfg) {
		if !p.Unknown && len(ids) < n {
			ids = append(ids, p.ID)
		}
	}
	return ids
}

func TestMockRegistryStampede(t *testing.T) {
	n := 10_000
	if raceEnabled {
		n = 5_000 // the race detector allows 8,128 live goroutines
	}
	reg, pcfg := mockRegistry(t, 1_000)
	id := knownPeople(pcfg, 1)[0]
	c := newCache(t, reg, cache.Config{RefreshTimeout: time.Minute})
	setFaults(t, reg, registry.Faults{Stall: true}) // hold the one call until all have joined

	var wg sync.WaitGroup
	var failed sync.Map
	for i := range n {
		wg.Go(func() {
			if _, err := c.Get(context.Background(), id); err != nil {
				failed.Store(i, err)
			}
		})
	}
	eventually(t, "every request to miss", func() bool { return c.Stats().Misses == int64(n) })
	setFaults(t, reg, registry.Faults{})
	wg.Wait()
	failed.Range(func(_, err any) bool { t.Fatal(err); return false })
	st := reg.Stats()
	if st.Reads != 1 || st.Stalled != 1 {
		t.Fatalf("mock registry reads = %d (stalled %d) for %d concurrent cold requests, want 1", st.Reads, st.Stalled, n)
	}
	t.Logf("stampede on mocks/registry: %d requests -> %d registry read", n, st.Reads)
}

func TestMockRegistryOutageAndStall(t *testing.T) {
	faults := map[string]registry.Faults{
		"outage": {Outage: true},
		"stall":  {Stall: true},
		"errors": {ErrorRate: 1},
	}
	for name, f := range faults {
		t.Run(name, func(t *testing.T) {
			reg, pcfg := mockRegistry(t, 1_000)
			ids := knownPeople(pcfg, 60)
			cached, uncached := ids[:50], ids[50:]
			c := newCache(t, reg, cache.Config{})
			ctx := context.Background()
			for _, id := range cached {
				if _, err := c.Person(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			setFaults(t, reg, f)
			before := reg.Stats()
			for range 20 {
				for _, id := range cached {
					if p, err := c.Person(ctx, id); err != nil || p.Stale {
						t.Fatalf("cached person during %s: %+v, %v", name, p, err)
					}
				}
			}
			after := reg.Stats()
			if after.Reads != before.Reads || after.Stalled != before.Stalled || after.Refused != before.Refused {
				t.Fatalf("registry reached for cached people during %s: %+v -> %+v", name, before, after)
			}
			const deadline = 80 * time.Millisecond
			for _, id := range uncached {
				rctx, cancel := context.WithTimeout(ctx, deadline)
				start := time.Now()
				_, err := c.Person(rctx, id)
				took := time.Since(start)
				cancel()
				if booking.ErrorCode(err) != booking.EREGISTRYDOWN || !errors.Is(err, adapter.ErrUnavailable) {
					t.Fatalf("uncached person during %s: err = %v, want EREGISTRYDOWN wrapping ErrUnavailable", name, err)
				}
				if took > deadline+time.Second {
					t.Fatalf("uncached lookup during %s took %v, past the %v deadline", name, took, deadline)
				}
			}
		})
	}
}
