// Package guard is the /v1 API's abuse-protection layer: the limits that
// keep a launch morning's bots and scripts from crowding out people.
//
//   - Client address (Guard.ClientAddr, ClientAddr): the connection's peer
//     address, or — only when that peer is one of Config.TrustedProxies —
//     the X-Forwarded-For hop left of the trusted proxies, walked right to
//     left. Whatever a client writes itself into X-Forwarded-For is never
//     believed. IPv6 clients are grouped by /64 (Config.IPv6Prefix).
//   - Per-address rate limit and concurrency cap (Guard.Edge): a generous
//     backstop, since carrier NAT puts many people behind one address.
//   - Per-person rate limit (Guard.PersonLimit, Guard.AllowPerson), keyed
//     by the verified token's person id: the limit that does the real work.
//   - One active session per person (Sessions): the first device to verify
//     holds the person until its token expires or it logs out (End); a
//     different session meanwhile gets 409 session_active, and a person
//     may start a new session at most once per window (10 minutes by
//     default, as in 2021). On when SessionConfig.Enforce says so (rotation
//     phases). In-process store, or Redis for a fleet.
//   - Server timeouts (ServerTimeouts): header, body, write and idle
//     timeouts and a header size bound, so slow clients (slowloris) are
//     cut off.
//
// Rate limits are token buckets (golang.org/x/time/rate) held in bounded,
// sharded LRU tables (Config.MaxKeys each); the concurrency table holds
// only addresses with requests in flight; the memory session store is
// bounded too (MemoryStoreConfig.MaxPersons). Refusals use the API's error
// shape — 429 rate_limited, 409 session_active, with Retry-After computed
// from the limiter's reservation or the blocking session's end — written
// by Config.WriteError (default WriteError). Zero config values mean the
// documented defaults; a negative rate or cap turns that limit off, and
// New logs it at WARN, so nothing is exempt silently. Logs and metric
// labels carry no person id and no address; the session store keys
// persons by a (keyed) hash.
//
// # How to mount (cmd/yeyakd and httpapi.Config)
//
// The public server's connection limits:
//
//	srv := guard.ServerTimeouts(&http.Server{Addr: cfg.Listen, Handler: api}, guard.ServerLimits{})
//
// The per-address limits wrap every request before routing (httpapi's
// Config.Edge hook); the per-person limit and the session rule run once
// the token is verified (Config.Flow, in that order, reading the identity
// with httpapi.IdentityFrom):
//
//	g, err := guard.New(guard.Config{
//		TrustedProxies: cfg.TrustedProxies, // e.g. the load balancer's CIDR
//		Registerer:     reg, Logger: log,
//	})
//	sessions, err := guard.NewSessions(guard.SessionConfig{
//		Store:    store, // guard.NewRedisSessionStore(...) for a fleet; nil: in-process
//		Enforce:  func(now time.Time) bool { return rotationPhaseRunning(now) },
//		HashKey:  personKey, // the same HMAC key as the logs' person hash
//		Registerer: reg, Logger: log,
//	})
//	api, err := httpapi.NewServer(httpapi.Config{
//		// …
//		Edge: g.Edge,
//		Flow: []func(http.Handler) http.Handler{
//			g.PersonLimit(httpapi.IdentityFrom),
//			sessions.Middleware(httpapi.IdentityFrom),
//		},
//	})
//
// A logout endpoint (authenticated) calls sessions.End(ctx, id.PersonID,
// id.Session). The API's error table needs the code session_active → 409,
// retryable (CodeSessionActive here); rate_limited and unavailable are
// already there. With no trusted proxies configured, X-Forwarded-For is
// ignored, which is right when clients connect directly and wrong behind a
// load balancer (everyone would share its address): configure its CIDR.
package guard
