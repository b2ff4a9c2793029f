package cache

import (
	"hash/maphash"
	"math/bits"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// store is the in-process tier: a set of independently locked LRU shards
// (hashicorp/golang-lru/v2's simplelru under one mutex each). Sharding keeps
// the hit path from serialising on one lock; BenchmarkCacheHitParallel
// measures it against a plain sync.Map and the single-lock lru.Cache.
type store struct {
	seed   maphash.Seed
	mask   uint64
	shards []shard
}

// shard is one LRU with its own bounds and counters. Counters live here,
// under the shard lock the lookup already holds, so counting a hit costs no
// shared cache line.
type shard struct {
	mu         sync.Mutex
	lru        *simplelru.LRU[string, *entry]
	maxEntries int
	maxBytes   int64
	bytes      int64
	counts     counts
	// inval remembers recent invalidations (see Cache.Invalidate): a fetch
	// that started before one must not store its answer as current, and
	// while the Redis copy is being deleted this instance must not read it.
	inval     map[string]invalMark
	lastSweep int64    // unix nanos of the last prune of inval
	_         [64]byte // keep neighbouring shards' locks off one cache line
}

// invalMark is one recent invalidation of a person.
type invalMark struct {
	seq          uint64 // Cache.invalSeq when it happened
	at           int64  // unix nanos (wall clock), for pruning
	redisPending bool   // the Redis copy is not deleted yet
}

// markInvalidated records an invalidation of key under the shard lock and
// prunes marks older than keep that no longer wait for Redis.
func (sh *shard) markInvalidated(key string, m invalMark, keep time.Duration) {
	if sh.inval == nil {
		sh.inval = make(map[string]invalMark)
	}
	sh.inval[key] = m
	if m.at-sh.lastSweep < int64(keep) {
		return
	}
	sh.lastSweep = m.at
	for k, v := range sh.inval {
		if !v.redisPending && m.at-v.at > int64(keep) {
			delete(sh.inval, k)
		}
	}
}

// invalidatedSince reports whether key was invalidated after the
// invalidation sequence number seq was read.
func (sh *shard) invalidatedSince(key string, seq uint64) bool {
	m, ok := sh.inval[key]
	return ok && m.seq > seq
}

// redisPending reports whether key's Redis copy is being deleted.
func (sh *shard) redisPending(key string) bool {
	return sh.inval[key].redisPending
}

// counts are the per-shard event counters, summed by Stats.
type counts struct {
	hitsFresh, hitsStale, misses, negativeHits, staleIfError, evictions int64
}

func (c *counts) add(o counts) {
	c.hitsFresh += o.hitsFresh
	c.hitsStale += o.hitsStale
	c.misses += o.misses
	c.negativeHits += o.negativeHits
	c.staleIfError += o.staleIfError
	c.evictions += o.evictions
}

// newStore splits the bounds over a power-of-two number of shards: one
// shard for small caches (exact LRU order), up to 64 for large ones. The
// per-shard bounds are floors, so the totals never exceed the configured
// bounds.
func newStore(maxEntries int, maxBytes int64) *store {
	// Size the shards by what the cache can really hold: the byte bound at
	// a small record's size may be the tighter one.
	capacity := min(int64(maxEntries), maxBytes/256)
	n := 1
	if capacity >= 4096 {
		n = 1 << min(6, bits.Len64(uint64(capacity/2048))-1)
	}
	return newStoreShards(maxEntries, maxBytes, n)
}

// newStoreShards is newStore with n shards (a power of two).
func newStoreShards(maxEntries int, maxBytes int64, n int) *store {
	s := &store{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]shard, n)}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.maxEntries = max(1, maxEntries/n)
		sh.maxBytes = max(1, maxBytes/int64(n))
		l, err := simplelru.NewLRU[string, *entry](sh.maxEntries+1, nil)
		if err != nil {
			panic(err) // size is positive: cannot fail
		}
		sh.lru = l
	}
	return s
}

func (s *store) shard(key string) *shard {
	if s.mask == 0 {
		return &s.shards[0]
	}
	return &s.shards[maphash.String(s.seed, key)&s.mask]
}

// put stores e under key, replacing any entry, and evicts the least recently
// used entries until the shard is within its bounds. An entry larger than a
// whole shard's byte budget is not stored.
func (sh *shard) put(key string, e *entry) {
	sz := int64(e.size)
	if sz > sh.maxBytes {
		sh.removeLocked(key)
		return
	}
	if old, ok := sh.lru.Peek(key); ok {
		sh.bytes -= int64(old.size)
		sh.lru.Remove(key)
	}
	for sh.lru.Len() > 0 && (sh.lru.Len() >= sh.maxEntries || sh.bytes+sz > sh.maxBytes) {
		_, v, _ := sh.lru.RemoveOldest()
		sh.bytes -= int64(v.size)
		sh.counts.evictions++
	}
	sh.lru.Add(key, e)
	sh.bytes += sz
}

func (sh *shard) removeLocked(key string) {
	if old, ok := sh.lru.Peek(key); ok {
		sh.bytes -= int64(old.size)
		sh.lru.Remove(key)
	}
}

// len and bytes sum over the shards.
func (s *store) totals() (entries int, bytes int64, c counts) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		entries += sh.lru.Len()
		bytes += sh.bytes
		c.add(sh.counts)
		sh.mu.Unlock()
	}
	return entries, bytes, c
}
