package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/yeyak/yeyak/booking/httpapi/auth"
)

// Defaults of Config's zero values.
const (
	DefaultPersonRate         = 2.0 // requests per second per person
	DefaultPersonBurst        = 20
	DefaultAddrRate           = 100.0 // requests per second per client address
	DefaultAddrBurst          = 500
	DefaultMaxInFlightPerAddr = 32
	DefaultMaxKeys            = 100_000
	DefaultIPv6Prefix         = 64
)

// Config configures a Guard. Every zero value means the documented
// default; a negative rate or cap turns that limit off, explicitly (New
// logs each limit that is off at WARN).
type Config struct {
	// TrustedProxies lists the reverse proxies and load balancers, as CIDRs
	// ("10.0.0.0/8") or addresses ("192.0.2.7"), whose X-Forwarded-For is
	// believed. nil means none: the client address is always the
	// connection's peer address, and X-Forwarded-For is ignored.
	TrustedProxies []string
	// IPv6Prefix groups IPv6 clients by this prefix length for the
	// per-address limits: one subscriber usually holds a whole /64. 0
	// means 64; 128 means per address. IPv4 is always per address.
	IPv6Prefix int

	// PersonRate is the sustained requests per second one person (the
	// verified token's person id) may make. 0 means DefaultPersonRate (2);
	// negative turns the per-person limit off.
	PersonRate float64
	// PersonBurst is how many requests a person may make at once before
	// PersonRate applies. 0 means DefaultPersonBurst (20).
	PersonBurst int
	// AddrRate is the sustained requests per second of one client address
	// (all requests, authenticated or not). Carrier NAT puts many people
	// behind one address, so it is a generous backstop (50 people at the
	// full per-person rate); the per-person limit does the real work. 0
	// means DefaultAddrRate (100); negative turns it off.
	AddrRate float64
	// AddrBurst is the per-address burst. 0 means DefaultAddrBurst (500).
	AddrBurst int
	// MaxInFlightPerAddr caps the requests one client address has in
	// progress at once. 0 means DefaultMaxInFlightPerAddr (32); negative
	// turns the cap off.
	MaxInFlightPerAddr int
	// MaxKeys bounds each limiter table (per person, per address): the
	// least recently seen key is evicted beyond it. 0 means
	// DefaultMaxKeys (100 000, about 21 MB per table when full: ~210 bytes
	// a bucket).
	MaxKeys int

	// WriteError writes refusals. nil means WriteError (the /v1 error
	// shape).
	WriteError ErrorWriter
	// Registerer receives guard's metrics. nil means none are exported.
	Registerer prometheus.Registerer
	// Logger receives the settings at start. nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock of the rate limits. nil means time.Now.
	Now func() time.Time
}

// Guard applies the per-address and per-person limits. Safe for
// concurrent use; it starts no goroutine.
type Guard struct {
	cfg      Config
	addrs    addrResolver
	v6bits   int
	person   *limiterTable[string]
	addr     *limiterTable[netip.Addr]
	inflight *inflightTable[netip.Addr]
	write    ErrorWriter
	now      func() time.Time
	metrics  *metrics
}

// IdentityFunc returns the verified identity of a request's caller;
// httpapi.IdentityFrom is one.
type IdentityFunc func(ctx context.Context) (auth.Identity, bool)

// New validates cfg, applies its defaults and logs the effective limits.
func New(cfg Config) (*Guard, error) {
	trusted, err := parsePrefixes(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.IPv6Prefix == 0:
		cfg.IPv6Prefix = DefaultIPv6Prefix
	case cfg.IPv6Prefix < 16 || cfg.IPv6Prefix > 128:
		return nil, fmt.Errorf("guard: IPv6Prefix %d is outside 16..128", cfg.IPv6Prefix)
	}
	if cfg.PersonBurst < 0 || cfg.AddrBurst < 0 || cfg.MaxKeys < 0 {
		return nil, errors.New("guard: bursts and MaxKeys cannot be negative (a negative rate turns a limit off)")
	}
	if cfg.PersonRate == 0 {
		cfg.PersonRate = DefaultPersonRate
	}
	if cfg.PersonBurst == 0 {
		cfg.PersonBurst = DefaultPersonBurst
	}
	if cfg.AddrRate == 0 {
		cfg.AddrRate = DefaultAddrRate
	}
	if cfg.AddrBurst == 0 {
		cfg.AddrBurst = DefaultAddrBurst
	}
	if cfg.MaxInFlightPerAddr == 0 {
		cfg.MaxInFlightPerAddr = DefaultMaxInFlightPerAddr
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	g := &Guard{cfg: cfg, addrs: addrResolver{trusted: trusted}, v6bits: cfg.IPv6Prefix,
		write: cfg.WriteError, now: cfg.Now}
	if g.write == nil {
		g.write = WriteError
	}
	if g.now == nil {
		g.now = time.Now
	}
	if cfg.PersonRate > 0 {
		g.person = newLimiterTable[string](cfg.PersonRate, cfg.PersonBurst, cfg.MaxKeys)
	}
	if cfg.AddrRate > 0 {
		g.addr = newLimiterTable[netip.Addr](cfg.AddrRate, cfg.AddrBurst, cfg.MaxKeys)
	}
	if cfg.MaxInFlightPerAddr > 0 {
		g.inflight = newInflightTable[netip.Addr](cfg.MaxInFlightPerAddr)
	}
	if cfg.Registerer != nil {
		m, err := newMetrics(cfg.Registerer, g)
		if err != nil {
			return nil, err
		}
		g.metrics = m
	}
	g.logSettings(len(trusted))
	return g, nil
}

func (g *Guard) logSettings(trusted int) {
	log := g.cfg.Logger
	log.Info("guard: request limits",
		"person_rate", g.cfg.PersonRate, "person_burst", g.cfg.PersonBurst,
		"addr_rate", g.cfg.AddrRate, "addr_burst", g.cfg.AddrBurst,
		"max_in_flight_per_addr", g.cfg.MaxInFlightPerAddr, "max_keys", g.cfg.MaxKeys,
		"trusted_proxies", trusted, "ipv6_prefix", g.v6bits)
	if g.person == nil {
		log.Warn("guard: per-person rate limit is OFF (negative PersonRate)")
	}
	if g.addr == nil {
		log.Warn("guard: per-address rate limit is OFF (negative AddrRate)")
	}
	if g.inflight == nil {
		log.Warn("guard: per-address concurrency cap is OFF (negative MaxInFlightPerAddr)")
	}
}

// ClientAddr returns r's client address as Guard sees it: the peer
// address, or the X-Forwarded-For hop left of the trusted proxies. The
// zero Addr when the peer address cannot be read.
func (g *Guard) ClientAddr(r *http.Request) netip.Addr {
	return g.addrs.clientAddr(r)
}

// addrKey is the limit key of a client address: IPv6 masked to v6bits.
func (g *Guard) addrKey(a netip.Addr) netip.Addr {
	if a.Is6() && g.v6bits < 128 {
		p, _ := a.Prefix(g.v6bits)
		return p.Addr()
	}
	return a
}

// AllowAddr takes one request from the client address's rate limit. When
// it refuses it says how long until the next request would pass. Always
// true when the per-address limit is off.
func (g *Guard) AllowAddr(a netip.Addr) (ok bool, retryAfter time.Duration) {
	if g.addr == nil {
		return true, 0
	}
	return g.addr.allow(g.addrKey(a), g.now())
}

// AllowPerson takes one request from the person's rate limit (personID is
// the verified token's person). When it refuses it says how long until the
// next request would pass. Always true when the per-person limit is off.
func (g *Guard) AllowPerson(personID string) (ok bool, retryAfter time.Duration) {
	if g.person == nil {
		return true, 0
	}
	return g.person.allow(personID, g.now())
}

// Edge is the middleware for every request of the public listener, before
// routing and authentication: it resolves the client address (kept in the
// request context, see ClientAddr), caps the address's requests in flight,
// and applies its rate limit. Refusals are 429 rate_limited with
// Retry-After. Requests whose peer address cannot be read share one
// limit: nothing is exempt.
func (g *Guard) Edge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := g.addrs.clientAddr(r)
		key := g.addrKey(client)
		if g.inflight != nil {
			if !g.inflight.acquire(key) {
				g.refuse(w, reasonAddrInFlight, http.StatusTooManyRequests, CodeRateLimited,
					"Too many requests in progress from your address; try again shortly.", time.Second)
				return
			}
			defer g.inflight.release(key)
		}
		if g.addr != nil {
			if ok, wait := g.addr.allow(key, g.now()); !ok {
				g.refuse(w, reasonAddrRate, http.StatusTooManyRequests, CodeRateLimited,
					"Too many requests from your address; try again later.", wait)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientAddrKey{}, client)))
	})
}

// PersonLimit returns the middleware applying the per-person rate limit to
// requests whose caller identity is known (identity: httpapi.IdentityFrom,
// once the token is verified). Requests without an identity pass on: they
// are not a person's, and Edge's per-address limit covers them. Refusals
// are 429 rate_limited with Retry-After.
func (g *Guard) PersonLimit(identity IdentityFunc) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if id, ok := identity(r.Context()); ok {
				if ok, wait := g.AllowPerson(id.PersonID); !ok {
					g.refuse(w, reasonPersonRate, http.StatusTooManyRequests, CodeRateLimited,
						"Too many requests; try again later.", wait)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

func (g *Guard) refuse(w http.ResponseWriter, reason string, status int, code, msg string, wait time.Duration) {
	if g.metrics != nil {
		g.metrics.refused.WithLabelValues(reason).Inc()
	}
	g.write(w, status, code, msg, wait)
}

// Refusal reasons, the values of the reason label of
// yeyak_guard_refused_total.
const (
	reasonAddrRate     = "addr_rate"
	reasonAddrInFlight = "addr_in_flight"
	reasonPersonRate   = "person_rate"
	reasonSession      = "session_active"
)
