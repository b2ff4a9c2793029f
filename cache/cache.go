package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/booking"
)

// Errors a lookup can return besides the registry's adapter.ErrNotFound and
// adapter.ErrUnavailable (always wrapped; test them with errors.Is).
var (
	// ErrInvalidID: the person id is empty.
	ErrInvalidID = errors.New("cache: empty person id")
	// ErrClosed: the cache was closed; it wraps adapter.ErrUnavailable, as
	// a closed cache cannot ask the registry.
	ErrClosed = fmt.Errorf("cache: closed: %w", adapter.ErrUnavailable)
)

// Cache is the eligibility read cache in front of an adapter.Registry
// (normally the adapter.Facade). It is safe for concurrent use; Close stops
// its goroutines.
//
// Lookups are answered from memory when the record is fresh; a record older
// than FreshTTL is answered at once, marked Stale, and refreshed in the
// background; concurrent misses for one person make one registry call; "not
// found" is remembered for NegativeTTL; when the registry cannot answer, an
// older record answers (stale-if-error), and without one the error wraps
// adapter.ErrUnavailable.
type Cache struct {
	reg   adapter.Registry
	cfg   Config
	log   *slog.Logger
	mem   *store
	rds   *redisTier // nil without Redis
	group singleflight.Group
	m     *metrics

	baseCtx context.Context // cancelled by Close; parent of every call the cache makes on its own
	cancel  context.CancelFunc
	life    sync.RWMutex // guards closed against wg.Add racing wg.Wait
	closed  bool
	wg      sync.WaitGroup
	sem     chan struct{} // background refresh slots

	registryCalls  atomic.Int64
	registryErrors atomic.Int64
	collapsed      atomic.Int64
	refreshes      atomic.Int64
	refreshDropped atomic.Int64

	// invalSeq numbers invalidations, so that a fetch can tell whether one
	// happened while it was in flight (store.invalidatedSince).
	invalSeq atomic.Uint64
	// delq feeds the Redis deletions of Invalidate to their worker.
	delq         chan string
	invalDropped atomic.Int64

	warmer atomic.Pointer[Warmer]
}

// New returns a Cache over reg. reg is normally the adapter.Facade, whose
// breaker and deadlines make a failing registry answer fast with
// adapter.ErrUnavailable.
func New(reg adapter.Registry, cfg Config) (*Cache, error) {
	if reg == nil {
		return nil, errors.New("cache: nil registry")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Cache{
		reg: reg,
		cfg: cfg,
		log: cfg.Logger.With("component", "cache"),
		mem: newStore(cfg.MaxEntries, cfg.MaxBytes),
		sem: make(chan struct{}, cfg.MaxRefreshes),
	}
	c.baseCtx, c.cancel = context.WithCancel(context.Background())
	switch {
	case cfg.Redis != nil:
		c.rds = newRedisTier(cfg.Redis, false, cfg, c.log)
	case cfg.RedisAddr != "":
		cl := redis.NewClient(&redis.Options{
			Addr:         cfg.RedisAddr,
			DialTimeout:  cfg.RedisTimeout * 4,
			ReadTimeout:  cfg.RedisTimeout,
			WriteTimeout: cfg.RedisTimeout,
			MaxRetries:   -1,
			// One dial attempt: the lookup's deadline is short anyway, and a
			// dead Redis should cost one refused connection, not five.
			DialerRetries: 1,
		})
		c.rds = newRedisTier(cl, true, cfg, c.log)
	}
	m, err := newMetrics(c, cfg.Registerer)
	if err != nil {
		c.cancel()
		if c.rds != nil {
			c.rds.close()
		}
		return nil, err
	}
	c.m = m
	if c.rds != nil {
		q := make(chan string, invalidationQueue)
		c.delq = q
		c.goOwned(func() { c.rds.subscribe(c.baseCtx, c.invalidateRemote) })
		c.goOwned(func() { c.rds.runDeletes(c.baseCtx, q, c.redisDeleted) })
	}
	return c, nil
}

// invalidationQueue is how many Redis deletions Invalidate queues for the
// worker before it drops them (counted, logged).
const invalidationQueue = 16_384

// Close stops background refreshes and the warmer, waits for them, and
// closes a Redis client the cache opened itself. Lookups after Close answer
// from memory only; misses return ErrClosed.
func (c *Cache) Close() error {
	c.life.Lock()
	if c.closed {
		c.life.Unlock()
		return nil
	}
	c.closed = true
	c.life.Unlock()
	if w := c.warmer.Load(); w != nil {
		w.stopForClose()
	}
	c.cancel()
	c.wg.Wait()
	if c.rds != nil {
		return c.rds.close()
	}
	return nil
}

// goOwned runs f on a goroutine Close waits for; false if the cache is closed.
func (c *Cache) goOwned(f func()) bool {
	c.life.RLock()
	defer c.life.RUnlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

// enter registers a call made on the caller's goroutine (a registry fetch
// inside singleflight) with Close; the returned func must be called when
// it ends. false if the cache is closed.
func (c *Cache) enter() (func(), bool) {
	c.life.RLock()
	defer c.life.RUnlock()
	if c.closed {
		return nil, false
	}
	c.wg.Add(1)
	return c.wg.Done, true
}

// Get returns the person's eligibility record.
//
// Returns an error wrapping adapter.ErrNotFound if the registry does not know
// the person (remembered for NegativeTTL), an error wrapping
// adapter.ErrUnavailable if the registry cannot answer and nothing usable is
// cached (also when ctx ends first: the caller never waits past its own
// deadline), and ErrInvalidID for an empty id. Error texts never contain the
// person id.
func (c *Cache) Get(ctx context.Context, personID string) (Entry, error) {
	if personID == "" {
		return Entry{}, ErrInvalidID
	}
	now := c.cfg.Now()
	mem := c.mem
	mem.mu.Lock()
	e, ok := mem.lru.Get(personID)
	if ok {
		age := e.age(now)
		switch {
		case e.notFound:
			if age < c.cfg.NegativeTTL {
				mem.counts.negativeHits++
				mem.mu.Unlock()
				return Entry{}, errNotFound
			}
		case e.invalidated:
			// The person's booking changed: ask the registry first; the
			// entry stays as the stale-if-error fallback.
		case age < c.cfg.FreshTTL:
			mem.counts.hitsFresh++
			mem.mu.Unlock()
			return Entry{Record: e.rec, FetchedAt: e.fetched(), Source: SourceMemory}, nil
		case age < c.cfg.StaleTTL:
			mem.counts.hitsStale++
			sie := e.refreshFailed != 0
			if sie {
				mem.counts.staleIfError++
			}
			refresh := !e.refreshing && (!sie || time.Duration(now.UnixNano()-e.refreshFailed) >= c.cfg.RefreshBackoff)
			if refresh {
				e.refreshing = true
			}
			mem.mu.Unlock()
			if refresh {
				c.refreshInBackground(personID, e)
			}
			return Entry{Record: e.rec, FetchedAt: e.fetched(), Stale: true, StaleIfError: sie, Source: SourceMemory}, nil
		default:
			mem.removeLocked(personID) // too old to answer even on error
		}
	}
	mem.counts.misses++
	mem.mu.Unlock()
	return c.load(ctx, personID, false)
}

var errNotFound = fmt.Errorf("eligibility: %w", adapter.ErrNotFound)

// result is what one shared fetch produces for every caller waiting on it.
type result struct {
	e   *entry
	src Source
	sie bool // answered from a stale entry because the registry failed
	// joined: the record came from a registry call made for another lookup
	// that finished just before this one joined (found in memory again).
	joined bool
}

// load runs (or joins) the one fetch for personID and waits for it, or for
// ctx. force skips the memory and Redis tiers (a refresh).
func (c *Cache) load(ctx context.Context, personID string, force bool) (Entry, error) {
	key := personID
	if force {
		key = "\x00" + personID
	}
	var led bool
	ch := c.group.DoChan(key, func() (any, error) {
		led = true
		return c.fetch(personID, force)
	})
	select {
	case <-ctx.Done():
		return Entry{}, fmt.Errorf("eligibility: %w: %w", adapter.ErrUnavailable, ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			if !led {
				c.collapsed.Add(1)
			}
			return Entry{}, r.Err
		}
		res := r.Val.(result)
		if !led || res.joined {
			c.collapsed.Add(1)
		}
		if res.e.notFound {
			return Entry{}, errNotFound
		}
		age := res.e.age(c.cfg.Now())
		return Entry{
			Record:       res.e.rec,
			FetchedAt:    res.e.fetched(),
			Stale:        age >= c.cfg.FreshTTL || res.sie,
			StaleIfError: res.sie,
			Source:       res.src,
		}, nil
	}
}

// fetch is the shared body of a miss or refresh: memory again (a fetch may
// just have finished), then Redis, then the registry.
func (c *Cache) fetch(personID string, force bool) (result, error) {
	done, ok := c.enter()
	if !ok {
		return result{}, ErrClosed
	}
	defer done()
	// Any invalidation numbered after seq0 happened while this fetch was in
	// flight: its answer may predate the change and is stored as such.
	seq0 := c.invalSeq.Load()
	mem := c.mem
	if !force {
		now := c.cfg.Now()
		mem.mu.Lock()
		e, ok := mem.lru.Peek(personID)
		// An invalidated person is asked of the registry, not of Redis,
		// whose copy is (being) deleted.
		skipRedis := (ok && e.invalidated) || mem.redisPending(personID)
		// invalidated is guarded by the lock (Invalidate sets it): read it
		// here, not after.
		current := ok && c.usable(e, now) && !e.invalidated
		mem.mu.Unlock()
		if current {
			return result{e: e, src: SourceMemory, joined: true}, nil
		}
		if c.rds != nil && !skipRedis {
			if re := c.rds.get(c.baseCtx, personID); re != nil && c.usable(re, now) {
				mem.mu.Lock()
				switch cur, ok := mem.lru.Peek(personID); {
				case mem.invalidatedSince(personID, seq0):
					// Read while the person was being invalidated: kept
					// only as the fallback, never as current.
					if !re.notFound {
						re.invalidated = true
						mem.put(personID, re)
					}
				case !ok || cur.fetchedAt < re.fetchedAt:
					mem.put(personID, re)
				}
				stale := !re.notFound && re.age(now) >= c.cfg.FreshTTL
				if stale {
					re.refreshing = true
				}
				mem.mu.Unlock()
				if stale {
					c.refreshInBackground(personID, re)
				}
				return result{e: re, src: SourceRedis}, nil
			}
		}
	}

	ctx, cancel := context.WithTimeout(c.baseCtx, c.cfg.RefreshTimeout)
	defer cancel()
	c.registryCalls.Add(1)
	rec, err := c.reg.Eligibility(ctx, personID)
	now := c.cfg.Now()
	switch {
	case err == nil:
		e := newEntry(personID, rec, now)
		c.store(personID, e, seq0)
		return result{e: e, src: SourceRegistry}, nil
	case errors.Is(err, adapter.ErrNotFound):
		e := newNegative(personID, now)
		c.store(personID, e, seq0)
		return result{e: e, src: SourceRegistry}, nil
	}
	c.registryErrors.Add(1)
	// Stale-if-error: any entry not past StaleTTL answers, a "not found"
	// as well (past NegativeTTL the registry is asked first, but when it
	// cannot answer its last word stands: an unknown person hears 403
	// unknown_person, not 503).
	mem.mu.Lock()
	e, ok := mem.lru.Peek(personID)
	if ok && e.age(now) < c.cfg.StaleTTL {
		e.refreshFailed = now.UnixNano()
		mem.counts.staleIfError++
		mem.mu.Unlock()
		return result{e: e, src: SourceMemory, sie: true}, nil
	}
	mem.mu.Unlock()
	if errors.Is(err, adapter.ErrUnavailable) {
		return result{}, fmt.Errorf("eligibility: %w", err)
	}
	return result{}, fmt.Errorf("eligibility: %w: %w", adapter.ErrUnavailable, err)
}

// usable reports whether e may answer a lookup at now without the registry.
func (c *Cache) usable(e *entry, now time.Time) bool {
	age := e.age(now)
	if e.notFound {
		return age < c.cfg.NegativeTTL
	}
	return age < c.cfg.StaleTTL
}

// store puts an entry fetched from the registry in memory and in Redis.
// seq0 is c.invalSeq read before the fetch began: if the person was
// invalidated since, the answer may predate the change, so it is kept
// only as an invalidated entry (the next lookup asks again; it still
// serves as the stale-if-error fallback) and not shared through Redis.
func (c *Cache) store(personID string, e *entry, seq0 uint64) {
	mem := c.mem
	mem.mu.Lock()
	raced := mem.invalidatedSince(personID, seq0)
	if raced {
		if e.notFound {
			mem.mu.Unlock()
			return
		}
		e.invalidated = true
	}
	mem.put(personID, e)
	mem.mu.Unlock()
	if c.rds != nil && !raced {
		c.rds.set(c.baseCtx, personID, e)
	}
}

// refreshInBackground refreshes a stale entry on an owned goroutine, if a
// refresh slot is free; e.refreshing was set by the caller and is cleared
// here.
func (c *Cache) refreshInBackground(personID string, e *entry) {
	clear := func() {
		mem := c.mem
		mem.mu.Lock()
		e.refreshing = false
		mem.mu.Unlock()
	}
	select {
	case c.sem <- struct{}{}:
	default:
		c.refreshDropped.Add(1)
		clear()
		return
	}
	started := c.goOwned(func() {
		defer func() { <-c.sem }()
		defer clear()
		c.refreshes.Add(1)
		if _, err := c.load(c.baseCtx, personID, true); err != nil && !errors.Is(err, adapter.ErrNotFound) {
			c.log.Debug("background refresh failed", "err", err)
		}
	})
	if !started {
		<-c.sem
		clear()
	}
}

// Refresh fetches the person's record from the registry now, replacing the
// cached one. When the registry cannot answer, the cached record (if not
// past StaleTTL) is returned marked StaleIfError, like Get.
func (c *Cache) Refresh(ctx context.Context, personID string) (Entry, error) {
	if personID == "" {
		return Entry{}, ErrInvalidID
	}
	return c.load(ctx, personID, true)
}

// Invalidate marks the person's record as out of date, after their booking
// changed (booking.Service's after-commit hook, the registry sync consumer
// once the registry applied a booking or cancellation) or on demand from
// ops. In both tiers:
//
//   - memory: the next lookup asks the registry (not Redis), and the old
//     record stays only as the stale-if-error fallback; a "not found" is
//     forgotten. A registry read already in flight when Invalidate is
//     called (a miss, a refresh, a warmer chunk) may carry the old view:
//     its answer is kept as invalidated too, so it cannot overwrite the
//     invalidation.
//   - Redis: the shared copy is deleted and the person id published on
//     KeyPrefix+"invalidate", so every other instance does the same to its
//     memory. This is done by a background worker, in batches: Invalidate
//     never waits for Redis. Until the deletion is done this instance does
//     not read the person's Redis copy. If the queue is full
//     (invalidationQueue) or Redis fails, that deletion is dropped, counted
//     (Stats.InvalidationsDropped) and logged: the other instances then
//     keep their copies until FreshTTL. One window stays open: a registry
//     read in flight on another instance at the moment the published
//     invalidation reaches it may still write the older view to Redis
//     (after this instance deleted it); that copy ages out like any other.
//
// It is cheap (the store's lock, no I/O; BenchmarkInvalidate), safe to call
// concurrently from any goroutine, never blocks and never fails. ctx is
// accepted for symmetry with the other calls and not used: nothing waits.
func (c *Cache) Invalidate(_ context.Context, personID string) {
	if personID == "" {
		return
	}
	queued := false
	if c.rds != nil {
		select {
		case c.delq <- personID:
			queued = true
		default:
			c.dropInvalidation("queue full")
		}
	}
	c.invalidateLocal(personID, queued)
	c.m.invalidations.Inc()
}

// invalidateRemote applies an invalidation another instance published.
func (c *Cache) invalidateRemote(personID string) { c.invalidateLocal(personID, false) }

// invalidateLocal marks the in-process entry and records the invalidation
// for fetches in flight; redisPending says a deletion of the Redis copy is
// queued.
func (c *Cache) invalidateLocal(personID string, redisPending bool) {
	seq := c.invalSeq.Add(1)
	mem := c.mem
	mem.mu.Lock()
	if e, ok := mem.lru.Peek(personID); ok {
		if e.notFound {
			mem.removeLocked(personID)
		} else {
			e.invalidated = true
		}
	}
	// A fetch in flight is bounded by RefreshTimeout (bulk chunks by the
	// facade's deadline); marks older than a minute past it are no longer
	// needed once Redis is done.
	mem.markInvalidated(personID, invalMark{seq: seq, at: time.Now().UnixNano(), redisPending: redisPending},
		c.cfg.RefreshTimeout+time.Minute)
	mem.mu.Unlock()
}

// redisDeleted is called by the deletion worker once a batch of Redis
// copies is deleted (or the attempt failed): this instance may read those
// people's Redis keys again.
func (c *Cache) redisDeleted(ids []string, err error) {
	if err != nil {
		c.invalDropped.Add(int64(len(ids)))
	}
	for _, id := range ids {
		mem := c.mem
		mem.mu.Lock()
		if m, ok := mem.inval[id]; ok && m.redisPending {
			m.redisPending = false
			mem.inval[id] = m
		}
		mem.mu.Unlock()
	}
}

// dropInvalidation counts a Redis deletion that will not happen.
func (c *Cache) dropInvalidation(why string) {
	n := c.invalDropped.Add(1)
	if n == 1 || n%1000 == 0 {
		c.log.Warn("cache invalidation not propagated to Redis", "why", why, "dropped_total", n)
	}
}

// Person implements booking.PersonSource over Get.
//
// Returns EUNKNOWNPERSON if the registry does not know the person,
// EREGISTRYDOWN (the cause wrapped) if the registry cannot answer and nothing
// usable is cached, EINVALID for an empty id. Person.Stale is set when the
// answer is a stale-if-error one.
func (c *Cache) Person(ctx context.Context, personID string) (booking.Person, error) {
	e, err := c.Get(ctx, personID)
	switch {
	case err == nil:
		return PersonOf(e), nil
	case errors.Is(err, ErrInvalidID):
		return booking.Person{}, &booking.Error{Code: booking.EINVALID, Message: "A person id is required.", Err: err}
	case errors.Is(err, adapter.ErrNotFound):
		return booking.Person{}, &booking.Error{Code: booking.EUNKNOWNPERSON, Message: "The registry does not know this person.", Err: err}
	default:
		return booking.Person{}, &booking.Error{Code: booking.EREGISTRYDOWN, Message: "The immunization registry is not answering; try again later.", Err: err}
	}
}

// PersonOf maps a cache entry to what the booking path knows of a person.
func PersonOf(e Entry) booking.Person {
	return booking.Person{
		ID:            e.Record.PersonID,
		BirthDate:     booking.DateOf(e.Record.BirthDate.UTC()),
		DosesReceived: len(e.Record.Doses),
		Excluded:      e.Record.Contraindicated || e.Record.Excluded,
		Stale:         e.StaleIfError,
	}
}

// Cache is the booking path's PersonSource, and booking.Service invalidates
// a person's entry through it after each change to their bookings.
var (
	_ booking.PersonSource      = (*Cache)(nil)
	_ booking.PersonInvalidator = (*Cache)(nil)
)

// putWarm stores records the warmer fetched in bulk, in memory and in
// Redis (one pipeline per chunk). seq0 is c.invalSeq read before the bulk
// call: people invalidated since are stored as invalidated (see store).
func (c *Cache) putWarm(ids []string, recs []adapter.Record, seq0 uint64) {
	now := c.cfg.Now()
	es := make([]*entry, 0, len(recs))
	keys := make([]string, 0, len(recs))
	// The people of ids the bulk answer left out are unknown to the
	// registry (adapter.Registry.EligibilityBulk): remembered as such in
	// memory, where they answer for NegativeTTL and then as the fallback
	// when the registry cannot answer, so a crowd of unknown ids at an
	// opening never meets 503. A person already held is left alone.
	known := make(map[string]struct{}, len(recs))
	for _, r := range recs {
		known[r.PersonID] = struct{}{}
	}
	for _, id := range ids {
		if _, ok := known[id]; ok || id == "" {
			continue
		}
		mem := c.mem
		mem.mu.Lock()
		if _, held := mem.lru.Peek(id); !held && !mem.invalidatedSince(id, seq0) {
			mem.put(id, newNegative(id, now))
		}
		mem.mu.Unlock()
	}
	for _, r := range recs {
		if r.PersonID == "" {
			continue
		}
		e := newEntry(r.PersonID, r, now)
		mem := c.mem
		mem.mu.Lock()
		raced := mem.invalidatedSince(r.PersonID, seq0)
		e.invalidated = raced
		mem.put(r.PersonID, e)
		mem.mu.Unlock()
		if raced {
			continue
		}
		es = append(es, e)
		keys = append(keys, r.PersonID)
	}
	if c.rds != nil {
		c.rds.setMany(c.baseCtx, keys, es)
	}
}
