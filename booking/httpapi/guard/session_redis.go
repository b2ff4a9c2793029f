package guard

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStoreConfig configures a RedisSessionStore.
type RedisStoreConfig struct {
	// Client is the Redis the fleet shares. Required; the caller owns it.
	Client redis.UniversalClient
	// KeyPrefix starts every key the store writes ("<prefix>session:<hash>").
	// "" means "yeyak:".
	KeyPrefix string
}

// RedisSessionStore is the SessionStore a fleet shares: one hash per
// person (keyed by a hash of the person id, see SessionConfig.HashKey)
// holding the session and its hold and window ends in Unix milliseconds,
// changed only by Lua scripts (atomic per person) and expiring by itself
// once it no longer blocks anything. Times come from the callers' clocks,
// so the fleet's clocks should agree to well within a second.
type RedisSessionStore struct {
	client redis.UniversalClient
	prefix string
}

// NewRedisSessionStore validates cfg and returns the store.
func NewRedisSessionStore(cfg RedisStoreConfig) (*RedisSessionStore, error) {
	if cfg.Client == nil {
		return nil, errors.New("guard: RedisStoreConfig.Client is required")
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "yeyak:"
	}
	return &RedisSessionStore{client: cfg.Client, prefix: cfg.KeyPrefix}, nil
}

func (s *RedisSessionStore) key(person string) string {
	return s.prefix + "session:" + person
}

// admitScript is decideSession in Lua. KEYS[1]: the person's record.
// ARGV: session, now, until, window end (Unix ms).
var admitScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 's', 'u', 'w')
local now = tonumber(ARGV[2])
local untl = tonumber(ARGV[3])
local wend = tonumber(ARGV[4])
if r[1] then
  local u = tonumber(r[2])
  local w = tonumber(r[3])
  if r[1] == ARGV[1] and now < u then
    if untl > u then
      redis.call('HSET', KEYS[1], 'u', ARGV[3])
      redis.call('PEXPIRE', KEYS[1], math.max(untl, w) - now)
    end
    return {1, 0}
  end
  if now < u or now < w then
    return {0, math.max(u, w)}
  end
end
redis.call('HSET', KEYS[1], 's', ARGV[1], 'u', ARGV[3], 'w', ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.max(untl, wend, now + 1) - now)
return {1, 0}
`)

// endScript ends the session ARGV[1] at ARGV[2] if it is current and held.
var endScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 's', 'u', 'w')
if r[1] ~= ARGV[1] then return 0 end
local now = tonumber(ARGV[2])
local u = tonumber(r[2])
local w = tonumber(r[3])
if now >= u then return 0 end
if w <= now then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('HSET', KEYS[1], 'u', ARGV[2])
redis.call('PEXPIRE', KEYS[1], w - now)
return 1
`)

// Admit implements SessionStore.
func (s *RedisSessionStore) Admit(ctx context.Context, person, session string, now, until, windowEnd time.Time) (bool, time.Time, error) {
	if person == "" || session == "" {
		return false, time.Time{}, errors.New("guard: empty person or session")
	}
	res, err := admitScript.Run(ctx, s.client, []string{s.key(person)},
		session, ms(now), ms(until), ms(windowEnd)).Int64Slice()
	if err != nil {
		return false, time.Time{}, fmt.Errorf("redis session admit: %w", err)
	}
	if len(res) != 2 {
		return false, time.Time{}, fmt.Errorf("redis session admit: unexpected reply %v", res)
	}
	if res[0] == 1 {
		return true, time.Time{}, nil
	}
	return false, time.UnixMilli(res[1]), nil
}

// End implements SessionStore.
func (s *RedisSessionStore) End(ctx context.Context, person, session string, now time.Time) error {
	if err := endScript.Run(ctx, s.client, []string{s.key(person)}, session, ms(now)).Err(); err != nil {
		return fmt.Errorf("redis session end: %w", err)
	}
	return nil
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
