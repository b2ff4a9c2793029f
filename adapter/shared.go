package adapter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
)

// SharedConfig shares breaker state through Redis (FacadeConfig.Shared).
//
// How it works: the state machine is gobreaker's DistributedCircuitBreaker,
// whose state lives under KeyPrefix in Redis. gobreaker holds its Redis
// lock for the whole of a call it wraps, which would serialise every
// registry call of the fleet; so the Facade splits the work. Admission reads
// the shared state with one lock-free Redis GET (open → fail fast), the call
// runs outside any lock, and its outcome is recorded afterwards by a single
// background goroutine per Facade through DistributedCircuitBreaker.Execute.
// Admission reuses a state read for RefreshInterval, so a busy instance
// reads Redis about twenty times a second, not once per call. Each instance
// logs and counts the transitions it observes. Half-open probes are limited
// per instance (HalfOpenRequests each). Forced
// states are stored beside the state, so ForceOpen on one instance opens
// the breaker for all.
//
// If Redis does not answer within Timeout the call is admitted (the
// bulkhead and deadline still protect the registry) and the failure is
// counted in yeyak_registry_breaker_store_errors_total: losing Redis must
// not take the registry path down with it.
type SharedConfig struct {
	// Client is the Redis client. Required.
	Client redis.UniversalClient
	// KeyPrefix starts every key the breakers use; give each registry (and
	// each environment) its own. If KeyPrefix is "" it is "yeyak:breaker:".
	KeyPrefix string
	// Timeout bounds each Redis command. If Timeout is <= 0 it is 100ms.
	Timeout time.Duration
	// LockTTL is how long the state lock is held at most if its holder
	// dies. If LockTTL is <= 0 it is 2s.
	LockTTL time.Duration
	// StateTTL expires shared state nobody has touched for that long.
	// If StateTTL is <= 0 it is 24h.
	StateTTL time.Duration
	// RefreshInterval is how long a call's admission may reuse the shared
	// state read for an earlier call, sparing a Redis round trip per call;
	// transitions made elsewhere in the fleet are seen at most this late
	// (this instance's own transitions and ops actions at once). If RefreshInterval
	// is 0 it is 50ms; a negative value reads Redis on every call.
	RefreshInterval time.Duration
}

func (c SharedConfig) withDefaults() SharedConfig {
	if c.KeyPrefix == "" {
		c.KeyPrefix = "yeyak:breaker:"
	}
	if c.Timeout <= 0 {
		c.Timeout = 100 * time.Millisecond
	}
	if c.LockTTL <= 0 {
		c.LockTTL = 2 * time.Second
	}
	if c.StateTTL <= 0 {
		c.StateTTL = 24 * time.Hour
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = 50 * time.Millisecond
	}
	return c
}

// redisStore implements gobreaker.SharedDataStore on Redis: SET NX PX
// locks released by a compare-and-delete script, plain GET/SET for data.
type redisStore struct {
	cfg    SharedConfig
	mu     sync.Mutex
	tokens map[string]string
}

var errLockBusy = errors.New("breaker state lock busy")

var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// Lock spins briefly (gobreaker itself sleeps 500ms between attempts,
// which is far too long for a lock held for a few round trips).
func (s *redisStore) Lock(name string) error {
	token := randomToken()
	deadline := time.Now().Add(s.cfg.LockTTL)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
		ok, err := s.cfg.Client.SetNX(ctx, s.cfg.KeyPrefix+name, token, s.cfg.LockTTL).Result()
		cancel()
		if err != nil {
			return fmt.Errorf("lock %s: %w", name, err)
		}
		if ok {
			s.mu.Lock()
			s.tokens[name] = token
			s.mu.Unlock()
			return nil
		}
		if time.Now().After(deadline) {
			return errLockBusy
		}
		time.Sleep(time.Millisecond)
	}
}

func (s *redisStore) Unlock(name string) error {
	s.mu.Lock()
	token := s.tokens[name]
	delete(s.tokens, name)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	return unlockScript.Run(ctx, s.cfg.Client, []string{s.cfg.KeyPrefix + name}, token).Err()
}

func (s *redisStore) GetData(name string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	b, err := s.cfg.Client.Get(ctx, s.cfg.KeyPrefix+name).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, err
}

func (s *redisStore) SetData(name string, data []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	return s.cfg.Client.Set(ctx, s.cfg.KeyPrefix+name, data, s.cfg.StateTTL).Err()
}

func randomToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sharedBreaker is the Redis-backed state of one breaker.
type sharedBreaker struct {
	b      *breaker
	store  *redisStore
	dcb    atomic.Pointer[gobreaker.DistributedCircuitBreaker[any]]
	probes atomic.Int32 // half-open calls in flight from this instance

	storeDown atomic.Bool // for logging the outage once

	cacheMu  sync.Mutex
	cached   snapshot
	cachedAt time.Time // zero: nothing cached
}

// cachedSnapshot is snapshot, reusing a read younger than RefreshInterval.
func (s *sharedBreaker) cachedSnapshot(ctx context.Context) (snapshot, error) {
	if ttl := s.store.cfg.RefreshInterval; ttl > 0 {
		s.cacheMu.Lock()
		snap, at := s.cached, s.cachedAt
		s.cacheMu.Unlock()
		if !at.IsZero() && time.Since(at) < ttl {
			return snap, nil
		}
	}
	return s.snapshot(ctx)
}

// invalidate makes the next admission read Redis.
func (s *sharedBreaker) invalidate() {
	s.cacheMu.Lock()
	s.cachedAt = time.Time{}
	s.cacheMu.Unlock()
}

// stateKey is where gobreaker keeps the state ("gobreaker:state:" + name,
// under the store's prefix); the Redis test pins it.
func (s *sharedBreaker) stateKey() string {
	return s.store.cfg.KeyPrefix + "gobreaker:state:" + s.b.name
}

func (s *sharedBreaker) forceKey() string {
	return s.store.cfg.KeyPrefix + "forced:" + s.b.name
}

func newSharedBreaker(b *breaker, cfg *SharedConfig) (*sharedBreaker, error) {
	if cfg.Client == nil {
		return nil, errors.New("SharedConfig.Client is nil")
	}
	c := cfg.withDefaults()
	s := &sharedBreaker{b: b, store: &redisStore{cfg: c, tokens: map[string]string{}}}
	dcb, err := gobreaker.NewDistributedCircuitBreaker[any](s.store, b.settings)
	if err != nil {
		return nil, err
	}
	s.dcb.Store(dcb)
	return s, nil
}

type snapshot struct {
	state  gobreaker.State
	counts gobreaker.Counts
	forced forcedState
}

// snapshot reads the shared state and override in one round trip.
func (s *sharedBreaker) snapshot(ctx context.Context) (snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, s.store.cfg.Timeout)
	defer cancel()
	vals, err := s.store.cfg.Client.MGet(ctx, s.stateKey(), s.forceKey()).Result()
	if err != nil {
		return snapshot{}, err
	}
	var snap snapshot
	if v, ok := vals[0].(string); ok {
		var st gobreaker.SharedState
		if err := json.Unmarshal([]byte(v), &st); err != nil {
			return snapshot{}, fmt.Errorf("decode shared state: %w", err)
		}
		snap.state, snap.counts = st.State, st.Counts
		if st.State == gobreaker.StateOpen && time.Now().After(st.Expiry) {
			snap.state = gobreaker.StateHalfOpen
			snap.counts = gobreaker.Counts{}
		}
	}
	if v, ok := vals[1].(string); ok {
		switch v {
		case "open":
			snap.forced = forcedOpen
		case "closed":
			snap.forced = forcedClosed
		}
	}
	s.cacheMu.Lock()
	s.cached, s.cachedAt = snap, time.Now()
	s.cacheMu.Unlock()
	return snap, nil
}

func (s *sharedBreaker) storeError(err error) {
	s.b.f.metrics.storeErrors.WithLabelValues(s.b.name).Inc()
	if s.storeDown.CompareAndSwap(false, true) {
		s.b.f.log.Warn("registry breaker shared state unavailable; admitting calls", "breaker", s.b.name, "err", err)
	}
}

func (s *sharedBreaker) allow(ctx context.Context) (func(error), error) {
	snap, err := s.cachedSnapshot(ctx)
	if err != nil {
		s.storeError(err)
		// Fail open on the breaker, keeping the last override we saw.
		switch forcedState(s.b.forced.Load()) {
		case forcedOpen:
			return nil, errForcedOpen
		}
		return func(error) {}, nil
	}
	if s.storeDown.CompareAndSwap(true, false) {
		s.b.f.log.Info("registry breaker shared state available again", "breaker", s.b.name)
	}
	s.b.forced.Store(int32(snap.forced))
	switch snap.forced {
	case forcedOpen:
		s.b.note(gobreaker.StateOpen, "forced open (shared)")
		return nil, errForcedOpen
	case forcedClosed:
		s.b.note(gobreaker.StateClosed, "forced closed (shared)")
		return func(error) {}, nil
	}
	s.b.note(snap.state, "shared state")
	switch snap.state {
	case gobreaker.StateOpen:
		return nil, gobreaker.ErrOpenState
	case gobreaker.StateHalfOpen:
		if s.probes.Add(1) > int32(s.b.settings.MaxRequests) {
			s.probes.Add(-1)
			return nil, gobreaker.ErrTooManyRequests
		}
		return func(verdict error) {
			s.probes.Add(-1)
			s.b.f.recorder.enqueue(s, verdict)
		}, nil
	}
	return func(verdict error) { s.b.f.recorder.enqueue(s, verdict) }, nil
}

// record applies one call's verdict to the shared state (recorder goroutine).
func (s *sharedBreaker) record(verdict error) {
	_, err := s.dcb.Load().Execute(func() (any, error) { return nil, verdict })
	if err == nil || err == verdict || errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return
	}
	s.storeError(err)
}

func (s *sharedBreaker) force(ctx context.Context, fs forcedState, reset bool) error {
	defer s.invalidate()
	ctx, cancel := context.WithTimeout(ctx, s.store.cfg.LockTTL)
	defer cancel()
	c := s.store.cfg.Client
	if fs == notForced {
		if err := c.Del(ctx, s.forceKey()).Err(); err != nil {
			return err
		}
	} else if err := c.Set(ctx, s.forceKey(), fs.String(), s.store.cfg.StateTTL).Err(); err != nil {
		return err
	}
	if !reset {
		return nil
	}
	if err := c.Del(ctx, s.stateKey()).Err(); err != nil {
		return err
	}
	// A new DistributedCircuitBreaker writes a fresh closed state.
	dcb, err := gobreaker.NewDistributedCircuitBreaker[any](s.store, s.b.settings)
	if err != nil {
		return err
	}
	s.dcb.Store(dcb)
	return nil
}

// recorder applies call verdicts to shared state off the callers' path,
// one at a time, so the fleet-wide lock never delays a caller.
type recorder struct {
	log     *slog.Logger
	metrics *metrics
	ch      chan recordReq
	stop    chan struct{}
	wg      sync.WaitGroup
}

type recordReq struct {
	s       *sharedBreaker
	verdict error
}

func newRecorder(log *slog.Logger, m *metrics) *recorder {
	r := &recorder{log: log, metrics: m, ch: make(chan recordReq, 4096), stop: make(chan struct{})}
	r.wg.Add(1)
	go r.run()
	return r
}

func (r *recorder) run() {
	defer r.wg.Done()
	for {
		select {
		case <-r.stop:
			return
		case req := <-r.ch:
			req.s.record(req.verdict)
		}
	}
}

// enqueue never blocks: when the recorder falls behind, verdicts are
// dropped (and counted) rather than delaying callers.
func (r *recorder) enqueue(s *sharedBreaker, verdict error) {
	select {
	case r.ch <- recordReq{s, verdict}:
	default:
		r.metrics.recordsDropped.WithLabelValues(s.b.name).Inc()
	}
}

func (r *recorder) close() {
	close(r.stop)
	r.wg.Wait()
}
