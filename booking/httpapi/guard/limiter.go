package guard

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"
)

// limiterTable holds one token bucket (golang.org/x/time/rate) per key in
// a bounded LRU: at most maxKeys buckets whatever the number of distinct
// keys, the least recently used evicted first. An evicted key starts again
// with a full bucket, which is why the table is sized well above the keys
// active at once. It is split into independently locked shards so that
// parallel requests do not queue on one mutex.
type limiterTable[K comparable] struct {
	seed   maphash.Seed
	mask   uint64
	shards []limiterShard[K]
	limit  rate.Limit
	burst  int
}

type limiterShard[K comparable] struct {
	mu  sync.Mutex
	lru *simplelru.LRU[K, *rate.Limiter]
	_   [40]byte // keep neighbouring shards' locks off one cache line
}

func newLimiterTable[K comparable](perSecond float64, burst, maxKeys int) *limiterTable[K] {
	n := 1
	for n < 64 && maxKeys/(n*2) >= 1024 {
		n *= 2
	}
	t := &limiterTable[K]{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]limiterShard[K], n),
		limit: rate.Limit(perSecond), burst: burst}
	for i := range t.shards {
		t.shards[i].lru, _ = simplelru.NewLRU[K, *rate.Limiter](maxKeys/n, nil)
	}
	return t
}

// allow takes one token from k's bucket at now. When the bucket is empty
// it takes nothing and returns how long until a token is there, computed
// from a reservation that is then cancelled.
func (t *limiterTable[K]) allow(k K, now time.Time) (bool, time.Duration) {
	sh := &t.shards[maphash.Comparable(t.seed, k)&t.mask]
	sh.mu.Lock()
	lim, ok := sh.lru.Get(k)
	if !ok {
		lim = rate.NewLimiter(t.limit, t.burst)
		sh.lru.Add(k, lim)
	}
	sh.mu.Unlock()
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return true, 0
	}
	r.CancelAt(now)
	return false, d
}

// len is the number of buckets held.
func (t *limiterTable[K]) len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += sh.lru.Len()
		sh.mu.Unlock()
	}
	return n
}

// inflightTable counts requests in progress per key. A key is present only
// while it has requests in progress, so its size is bounded by the
// server's open connections.
type inflightTable[K comparable] struct {
	seed   maphash.Seed
	shards [16]inflightShard[K]
	max    int
}

type inflightShard[K comparable] struct {
	mu sync.Mutex
	n  map[K]int
}

func newInflightTable[K comparable](max int) *inflightTable[K] {
	t := &inflightTable[K]{seed: maphash.MakeSeed(), max: max}
	for i := range t.shards {
		t.shards[i].n = map[K]int{}
	}
	return t
}

// acquire takes a slot for k, or reports false when k has max in flight.
func (t *inflightTable[K]) acquire(k K) bool {
	sh := &t.shards[maphash.Comparable(t.seed, k)%uint64(len(t.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.n[k] >= t.max {
		return false
	}
	sh.n[k]++
	return true
}

// release gives k's slot back.
func (t *inflightTable[K]) release(k K) {
	sh := &t.shards[maphash.Comparable(t.seed, k)%uint64(len(t.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.n[k] <= 1 {
		delete(sh.n, k)
		return
	}
	sh.n[k]--
}

// len is the number of keys with requests in flight.
func (t *inflightTable[K]) len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += len(sh.n)
		sh.mu.Unlock()
	}
	return n
}
