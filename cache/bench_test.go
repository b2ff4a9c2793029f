package cache_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/cache"
)

// benchKeys is the working set of the hit-path benchmarks: the same keys
// for the cache and its baselines.
const benchKeys = 100_000

func benchIDs() []string {
	ids := make([]string, benchKeys)
	for i := range ids {
		ids[i] = fmt.Sprintf("P%010d", i)
	}
	return ids
}

// hitLoop spreads b.N lookups over the goroutines, each walking the keys
// from its own offset in one fixed random order (real traffic does not
// arrive in insertion order, which would flatter structures whose
// neighbours were allocated side by side).
func hitLoop(b *testing.B, ids []string, get func(string) bool) {
	ids = slices.Clone(ids)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(1)) * 7919
		for pb.Next() {
			if !get(ids[i%len(ids)]) {
				b.Error("miss")
				return
			}
			i++
		}
	})
}

// BenchmarkCacheHitParallel is the cache's hit path (fresh entries in
// memory), in parallel.
func BenchmarkCacheHitParallel(b *testing.B) {
	reg := newFakeRegistry()
	ids := benchIDs()
	for _, id := range ids {
		reg.put(adapter.Record{PersonID: id})
	}
	c := newCache(b, reg, cache.Config{})
	ctx := context.Background()
	for _, id := range ids {
		if _, err := c.Get(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
	hitLoop(b, ids, func(id string) bool {
		e, err := c.Get(ctx, id)
		return err == nil && e.Source == cache.SourceMemory
	})
	if n := reg.single.Load(); n != benchKeys {
		b.Fatalf("registry calls = %d during hits", n)
	}
}

// BenchmarkSyncMapParallel is the floor: a plain sync.Map lookup of the
// same keys (reading the record it finds), with no TTL, bound, LRU order or
// counters.
func BenchmarkSyncMapParallel(b *testing.B) {
	ids := benchIDs()
	var m sync.Map
	for _, id := range ids {
		m.Store(id, &adapter.Record{PersonID: id})
	}
	hitLoop(b, ids, func(id string) bool {
		v, ok := m.Load(id)
		if !ok {
			return false
		}
		r := *v.(*adapter.Record) // read the record, as the cache does
		return r.PersonID == id
	})
}

// BenchmarkLRUSingleLockParallel is hashicorp/golang-lru/v2's lru.Cache (one
// lock for every lookup), the library's default, for the same keys.
func BenchmarkLRUSingleLockParallel(b *testing.B) {
	ids := benchIDs()
	l, _ := lru.New[string, *adapter.Record](2 * benchKeys)
	for _, id := range ids {
		l.Add(id, &adapter.Record{PersonID: id})
	}
	hitLoop(b, ids, func(id string) bool {
		v, ok := l.Get(id)
		if !ok {
			return false
		}
		r := *v // read the record, as the cache does
		return r.PersonID == id
	})
}

// BenchmarkStampede is the cold-person burst: 1,000 concurrent lookups of
// one uncached person per iteration.
func BenchmarkStampede(b *testing.B) {
	reg := newFakeRegistry()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("P%010d", i)
		reg.put(adapter.Record{PersonID: id})
		c, err := cache.New(reg, cache.Config{Logger: quiet, MaxEntries: 10})
		if err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 1_000 {
			wg.Go(func() { _, _ = c.Get(context.Background(), id) })
		}
		wg.Wait()
		c.Close()
	}
	b.ReportMetric(float64(reg.single.Load())/float64(b.N), "registry-calls/op")
}
