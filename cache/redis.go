package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/yeyak/yeyak/adapter"
)

// redisTier is the optional shared second tier. Every command has a short
// deadline; a failure makes the tier skip Redis for RedisBackoff and is
// logged at most once per RedisLogInterval. It never returns an error: a
// Redis outage only costs the fleet its shared copy.
type redisTier struct {
	cl       redis.UniversalClient
	own      bool
	origin   string // this instance's tag on the invalidations it publishes
	prefix   string
	cfg      Config
	log      *slog.Logger
	down     atomic.Int64 // unix nanos until which Redis is skipped
	lastLog  atomic.Int64 // unix nanos of the last failure log line
	hits     atomic.Int64
	misses   atomic.Int64
	failures atomic.Int64
}

func newRedisTier(cl redis.UniversalClient, own bool, cfg Config, log *slog.Logger) *redisTier {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &redisTier{cl: cl, own: own, origin: hex.EncodeToString(b[:]), prefix: cfg.KeyPrefix + "elig:", cfg: cfg, log: log}
}

// redisValue is the stored form of an entry: the record and when the
// registry produced it, so every instance applies the same TTLs.
type redisValue struct {
	FetchedAt int64           `json:"f"` // unix nanoseconds
	NotFound  bool            `json:"n,omitempty"`
	Record    *adapter.Record `json:"r,omitempty"`
}

func (t *redisTier) key(personID string) string { return t.prefix + personID }

// available reports whether Redis is not in its backoff after a failure.
func (t *redisTier) available() bool {
	return time.Now().UnixNano() >= t.down.Load()
}

func (t *redisTier) fail(op string, err error) {
	if errors.Is(err, context.Canceled) {
		return // the cache is closing
	}
	t.failures.Add(1)
	now := time.Now()
	t.down.Store(now.Add(t.cfg.RedisBackoff).UnixNano())
	last := t.lastLog.Load()
	if now.UnixNano()-last >= int64(t.cfg.RedisLogInterval) && t.lastLog.CompareAndSwap(last, now.UnixNano()) {
		t.log.Warn("redis tier unavailable, answering from memory only",
			"op", op, "err", err, "skip_for", t.cfg.RedisBackoff, "failures", t.failures.Load())
	}
}

// get returns the stored entry, or nil when absent, undecodable or Redis
// is failing.
func (t *redisTier) get(ctx context.Context, personID string) *entry {
	if !t.available() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.RedisTimeout)
	defer cancel()
	b, err := t.cl.Get(ctx, t.key(personID)).Bytes()
	if errors.Is(err, redis.Nil) {
		t.misses.Add(1)
		return nil
	}
	if err != nil {
		t.fail("get", err)
		return nil
	}
	var v redisValue
	if err := json.Unmarshal(b, &v); err != nil || (!v.NotFound && v.Record == nil) {
		t.misses.Add(1)
		return nil
	}
	t.hits.Add(1)
	at := time.Unix(0, v.FetchedAt)
	if v.NotFound {
		return newNegative(personID, at)
	}
	return newEntry(personID, *v.Record, at)
}

// ttl is how much longer Redis should keep e.
func (t *redisTier) ttl(e *entry) time.Duration {
	age := e.age(t.cfg.Now())
	if e.notFound {
		return t.cfg.NegativeTTL - age
	}
	return t.cfg.StaleTTL - age
}

func encode(e *entry) []byte {
	v := redisValue{FetchedAt: e.fetchedAt, NotFound: e.notFound}
	if !e.notFound {
		v.Record = &e.rec
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic("cache: encode record: " + err.Error()) // plain struct: cannot fail
	}
	return b
}

// set stores e with a Redis TTL that ends when StaleTTL (NegativeTTL for a
// negative entry) has passed since the fetch.
func (t *redisTier) set(ctx context.Context, personID string, e *entry) {
	ttl := t.ttl(e)
	if ttl <= 0 || !t.available() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.RedisTimeout)
	defer cancel()
	if err := t.cl.Set(ctx, t.key(personID), encode(e), ttl).Err(); err != nil {
		t.fail("set", err)
	}
}

// setMany stores a chunk of entries in one pipeline (the warmer).
func (t *redisTier) setMany(ctx context.Context, ids []string, es []*entry) {
	if len(es) == 0 || !t.available() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 4*t.cfg.RedisTimeout)
	defer cancel()
	_, err := t.cl.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, e := range es {
			if ttl := t.ttl(e); ttl > 0 {
				p.Set(ctx, t.key(ids[i]), encode(e), ttl)
			}
		}
		return nil
	})
	if err != nil {
		t.fail("set_many", err)
	}
}

// runDeletes deletes the Redis copies of the people Invalidate queues on q
// and publishes their ids on KeyPrefix + "invalidate" (each tagged with
// this instance's origin, so its own subscription ignores them), in
// batches of up to deleteBatch per pipeline, until ctx ends; then it sends
// one last batch of what is still queued, within one more RedisTimeout
// (the rest is lost with the process: those copies expire at their TTL,
// and other instances' at FreshTTL). done is told about
// every batch, with the error if it failed. Deletions are tried even
// during the backoff after a failure: a skipped one would let other
// instances read a record known to be out of date.
func (t *redisTier) runDeletes(ctx context.Context, q <-chan string, done func(ids []string, err error)) {
	batch := make([]string, 0, deleteBatch)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			for len(q) > 0 && len(batch) < cap(batch) {
				batch = append(batch, <-q)
			}
			if len(batch) > 0 {
				fctx, cancel := context.WithTimeout(context.Background(), t.cfg.RedisTimeout)
				done(batch, t.deleteBatch(fctx, batch))
				cancel()
			}
			return
		case id := <-q:
			batch = append(batch, id)
		}
	drain:
		for len(batch) < cap(batch) {
			select {
			case id := <-q:
				batch = append(batch, id)
			default:
				break drain
			}
		}
		done(batch, t.deleteBatch(ctx, batch))
	}
}

// deleteBatch is how many invalidations one pipeline carries.
const deleteBatch = 256

func (t *redisTier) deleteBatch(ctx context.Context, ids []string) error {
	ctx, cancel := context.WithTimeout(ctx, 4*t.cfg.RedisTimeout)
	defer cancel()
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = t.key(id)
	}
	_, err := t.cl.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, keys...)
		for _, id := range ids {
			p.Publish(ctx, t.channel(), t.origin+":"+id)
		}
		return nil
	})
	if err != nil {
		t.fail("del", err)
	}
	return err
}

func (t *redisTier) channel() string { return t.cfg.KeyPrefix + "invalidate" }

// subscribe delivers the invalidations other instances publish to
// invalidate until ctx ends (its own are ignored). go-redis resubscribes
// after a Redis outage; invalidations published meanwhile are lost (those
// entries go stale at FreshTTL as without Redis).
func (t *redisTier) subscribe(ctx context.Context, invalidate func(personID string)) {
	sub := t.cl.Subscribe(ctx, t.channel())
	defer sub.Close()
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			origin, id, found := strings.Cut(m.Payload, ":")
			if !found {
				origin, id = "", m.Payload
			}
			if id != "" && origin != t.origin {
				invalidate(id)
			}
		}
	}
}

func (t *redisTier) close() error {
	if t.own {
		return t.cl.Close()
	}
	return nil
}
