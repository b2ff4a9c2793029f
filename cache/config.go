package cache

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Config configures a Cache. The zero value of every field means the
// documented default, so Config{} is a working in-process cache.
type Config struct {
	// MaxEntries bounds the number of people held in memory (positive and
	// negative entries together). 0 means 2,500,000: a 2,000,000-person
	// cohort plus headroom. The least recently used entry is evicted first.
	MaxEntries int
	// MaxBytes bounds the estimated memory of the entries (see EntrySize and
	// "Sizing" in the package doc). 0 means 1 GiB.
	MaxBytes int64

	// FreshTTL is how long a fetched record is answered as fresh. 0 means
	// 24h: the warmer runs in the hours before a rotation day opens, and the
	// records it loads must stay fresh through that day's window. A person's
	// own booking changes invalidate their entry (Invalidate), so the TTL only
	// covers changes made elsewhere (a dose given at a clinic).
	FreshTTL time.Duration
	// StaleTTL is the age after which a record is never answered. Between
	// FreshTTL and StaleTTL a record is answered at once, marked Stale, and
	// refreshed in the background (stale-while-revalidate); when that refresh
	// finds the registry unavailable the record keeps answering
	// (stale-if-error). It is also the Redis key TTL. 0 means 72h. It must
	// not be below FreshTTL.
	StaleTTL time.Duration
	// NegativeTTL is how long "the registry does not know this person" is
	// remembered, so unknown ids cannot hammer the registry. 0 means 1 minute.
	NegativeTTL time.Duration
	// RefreshTimeout bounds every registry call the cache makes for a single
	// person (misses and background refreshes). The call is shared by every
	// caller waiting for the person and is detached from any one caller's
	// context; each caller still stops waiting at its own deadline. 0 means 2s.
	RefreshTimeout time.Duration
	// RefreshBackoff is how long after a failed background refresh the next
	// stale hit on the same entry may try again, so an outage is not met by a
	// refresh per request. 0 means 5s.
	RefreshBackoff time.Duration
	// MaxRefreshes bounds the background refreshes in flight; a stale hit
	// that finds them all busy answers without scheduling one (a later hit
	// will). 0 means 8.
	MaxRefreshes int

	// Redis, when set, is the shared second tier (any go-redis client). The
	// caller owns it: Close does not close it.
	Redis redis.UniversalClient
	// RedisAddr, when Redis is nil and this is set, makes the cache open (and
	// own, and close) a client to this host:port with short timeouts and no
	// retries.
	RedisAddr string
	// KeyPrefix starts every Redis key the cache writes. "" means "yeyak:".
	// Keys are KeyPrefix + "elig:" + person id.
	KeyPrefix string
	// RedisTimeout bounds every Redis command; a Redis that does not answer
	// in time is skipped (the in-process tier answers). 0 means 50ms.
	RedisTimeout time.Duration
	// RedisBackoff is how long Redis is skipped after it failed, so an outage
	// costs one timeout per interval rather than one per lookup. 0 means 1s.
	RedisBackoff time.Duration
	// RedisLogInterval is the least time between two log lines about Redis
	// failures. 0 means 1 minute.
	RedisLogInterval time.Duration

	// Registerer receives the cache's metrics (names start yeyak_cache_).
	// nil means a private registry (metrics are still kept, only not
	// exported).
	Registerer prometheus.Registerer
	// Logger receives structured events; person ids are never logged. nil
	// means slog.Default().
	Logger *slog.Logger
	// Now is the clock. nil means time.Now.
	Now func() time.Time
}

// Defaults for the zero values of Config.
const (
	DefaultMaxEntries       = 2_500_000
	DefaultMaxBytes         = 1 << 30
	DefaultFreshTTL         = 24 * time.Hour
	DefaultStaleTTL         = 72 * time.Hour
	DefaultNegativeTTL      = time.Minute
	DefaultRefreshTimeout   = 2 * time.Second
	DefaultRefreshBackoff   = 5 * time.Second
	DefaultMaxRefreshes     = 8
	DefaultKeyPrefix        = "yeyak:"
	DefaultRedisTimeout     = 50 * time.Millisecond
	DefaultRedisBackoff     = time.Second
	DefaultRedisLogInterval = time.Minute
)

// withDefaults returns cfg with zero values replaced by defaults, or an
// error for values that cannot work.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.MaxEntries < 0 || cfg.MaxBytes < 0 || cfg.FreshTTL < 0 || cfg.StaleTTL < 0 ||
		cfg.NegativeTTL < 0 || cfg.RefreshTimeout < 0 || cfg.RefreshBackoff < 0 ||
		cfg.MaxRefreshes < 0 || cfg.RedisTimeout < 0 || cfg.RedisBackoff < 0 || cfg.RedisLogInterval < 0 {
		return cfg, errors.New("cache: negative value in Config")
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	def(&cfg.FreshTTL, DefaultFreshTTL)
	def(&cfg.StaleTTL, DefaultStaleTTL)
	def(&cfg.NegativeTTL, DefaultNegativeTTL)
	def(&cfg.RefreshTimeout, DefaultRefreshTimeout)
	def(&cfg.RefreshBackoff, DefaultRefreshBackoff)
	def(&cfg.RedisTimeout, DefaultRedisTimeout)
	def(&cfg.RedisBackoff, DefaultRedisBackoff)
	def(&cfg.RedisLogInterval, DefaultRedisLogInterval)
	if cfg.MaxRefreshes == 0 {
		cfg.MaxRefreshes = DefaultMaxRefreshes
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = DefaultKeyPrefix
	}
	if cfg.StaleTTL < cfg.FreshTTL {
		return cfg, fmt.Errorf("cache: StaleTTL %v is below FreshTTL %v", cfg.StaleTTL, cfg.FreshTTL)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	return cfg, nil
}
