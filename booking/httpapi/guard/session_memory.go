package guard

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// DefaultMaxPersons is MemoryStoreConfig.MaxPersons' default.
const DefaultMaxPersons = 250_000

// MemoryStoreConfig configures a MemorySessionStore.
type MemoryStoreConfig struct {
	// MaxPersons bounds the records held (about 230 bytes each); beyond it
	// the least recently seen person's record is evicted, and with it any
	// hold it had (the store fails open under memory pressure). Size it
	// for the persons active within a hold period. 0 means
	// DefaultMaxPersons (250 000, about 57 MB when full).
	MaxPersons int
}

// MemorySessionStore is the in-process SessionStore: right for one
// instance (a fleet shares a RedisSessionStore). Records live in a
// bounded, sharded LRU; a record that no longer blocks anything is
// replaced when its person comes back, or evicted. Safe for concurrent use.
type MemorySessionStore struct {
	seed   maphash.Seed
	mask   uint64
	shards []sessionShard
}

type sessionShard struct {
	mu  sync.Mutex
	lru *simplelru.LRU[string, sessionRecord]
	_   [40]byte
}

// NewMemorySessionStore returns an empty store.
func NewMemorySessionStore(cfg MemoryStoreConfig) *MemorySessionStore {
	if cfg.MaxPersons <= 0 {
		cfg.MaxPersons = DefaultMaxPersons
	}
	n := 1
	for n < 64 && cfg.MaxPersons/(n*2) >= 1024 {
		n *= 2
	}
	s := &MemorySessionStore{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]sessionShard, n)}
	for i := range s.shards {
		s.shards[i].lru, _ = simplelru.NewLRU[string, sessionRecord](cfg.MaxPersons/n, nil)
	}
	return s
}

func (s *MemorySessionStore) shard(person string) *sessionShard {
	return &s.shards[maphash.String(s.seed, person)&s.mask]
}

// Admit implements SessionStore.
func (s *MemorySessionStore) Admit(ctx context.Context, person, session string, now, until, windowEnd time.Time) (bool, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return false, time.Time{}, err
	}
	if person == "" || session == "" {
		return false, time.Time{}, errors.New("guard: empty person or session")
	}
	sh := s.shard(person)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	rec, exists := sh.lru.Get(person)
	next, write, ok, retryAt := decideSession(rec, exists, session, now, until, windowEnd)
	if write {
		sh.lru.Add(person, next)
	}
	return ok, retryAt, nil
}

// End implements SessionStore.
func (s *MemorySessionStore) End(ctx context.Context, person, session string, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sh := s.shard(person)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	rec, ok := sh.lru.Peek(person)
	if !ok || rec.session != session || !now.Before(rec.holdEnd) {
		return nil
	}
	rec.holdEnd = now
	if !now.Before(rec.windowEnd) {
		sh.lru.Remove(person)
		return nil
	}
	sh.lru.Add(person, rec)
	return nil
}

// Len is the number of records held (some may no longer block anything).
func (s *MemorySessionStore) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += sh.lru.Len()
		sh.mu.Unlock()
	}
	return n
}
