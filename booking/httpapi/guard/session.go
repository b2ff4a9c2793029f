package guard

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Defaults of SessionConfig's zero values.
const (
	DefaultSessionWindow       = 10 * time.Minute
	DefaultSessionStoreTimeout = 200 * time.Millisecond
)

// SessionStore keeps each person's session record and applies the session
// rule atomically per person. MemorySessionStore (one process) and
// RedisSessionStore (a fleet) implement it; both pass the same contract
// tests.
//
// A record is (session, hold end, window end). The rule Admit applies:
//
//   - the person's current session, still held (now before its hold end),
//     is admitted, and its hold end moves to until when that is later (a
//     newer token of the same sign-in);
//   - a session is admitted as the person's new one, held until until,
//     with its window ending at windowEnd, when the person has no record,
//     or the current session's hold has ended and its window has passed;
//   - anything else is refused; retryAt is when the record stops blocking
//     (the later of its hold end and window end).
type SessionStore interface {
	// Admit applies the rule above to session for person at now.
	Admit(ctx context.Context, person, session string, now, until, windowEnd time.Time) (ok bool, retryAt time.Time, err error)
	// End ends person's session at now if it is the current one and is
	// still held; the record stays until its window ends, so ending a
	// session does not restart the window.
	End(ctx context.Context, person, session string, now time.Time) error
}

// sessionRecord is one person's current session.
type sessionRecord struct {
	session   string
	holdEnd   time.Time
	windowEnd time.Time
}

// blocksUntil is when the record stops mattering.
func (r sessionRecord) blocksUntil() time.Time {
	if r.windowEnd.After(r.holdEnd) {
		return r.windowEnd
	}
	return r.holdEnd
}

// decideSession is the rule of SessionStore.Admit on one record: the new
// record (when write), whether session is admitted and, if not, when to
// retry. RedisSessionStore's script is the same rule in Lua.
func decideSession(rec sessionRecord, exists bool, session string, now, until, windowEnd time.Time) (next sessionRecord, write, ok bool, retryAt time.Time) {
	if exists && rec.session == session && now.Before(rec.holdEnd) {
		if until.After(rec.holdEnd) {
			rec.holdEnd = until
			return rec, true, true, time.Time{}
		}
		return rec, false, true, time.Time{}
	}
	if exists && now.Before(rec.blocksUntil()) {
		return rec, false, false, rec.blocksUntil()
	}
	return sessionRecord{session: session, holdEnd: until, windowEnd: windowEnd}, true, true, time.Time{}
}

// SessionConfig configures Sessions. Zero values mean the documented
// defaults.
type SessionConfig struct {
	// Store keeps the session records. nil means a MemorySessionStore with
	// its defaults (one process; use a RedisSessionStore for a fleet).
	Store SessionStore
	// Window is the "one verification per window" rule: a person may start
	// a new session at most once per Window, even after the previous one
	// ended. 0 means DefaultSessionWindow (10 minutes, as in 2021);
	// negative turns the window off (only the one-active-session rule
	// remains).
	Window time.Duration
	// Hold bounds how long after its latest request a session keeps the
	// person's other sessions out; it never holds past its token's expiry.
	// 0 means until the token expires (or the session ends by End).
	Hold time.Duration
	// Enforce says whether the rule applies at a given time (the wirer
	// passes "is a rotation phase running now?"). When it answers false,
	// Admit admits without asking the store. nil means always.
	Enforce func(now time.Time) bool
	// StoreTimeout bounds each store call on the request path. 0 means
	// DefaultSessionStoreTimeout (200ms).
	StoreTimeout time.Duration
	// FailClosed makes Middleware answer 503 unavailable when the store
	// cannot be asked. The default (false) lets the request through (the
	// rule is an abuse control; an outage of its store must not stop
	// bookings); either way the failure is counted and logged.
	FailClosed bool
	// HashKey keys the HMAC that replaces person ids in store keys, so
	// Redis holds no raw person id. It must be the same across a fleet.
	// nil means plain SHA-256.
	HashKey []byte
	// WriteError writes refusals. nil means WriteError (the /v1 error shape).
	WriteError ErrorWriter
	// Registerer receives the session metrics. nil means none.
	Registerer prometheus.Registerer
	// Logger receives store failures (at most one line per 10s) and the
	// settings at start. nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock. nil means time.Now.
	Now func() time.Time
}

// Sessions enforces one active session per person (issue 7: "every device
// but the first to verify was blocked for 10 minutes, and one verification
// was allowed per 10 minutes"). A session is Identity.Session (package
// auth): the provider's session claim, else the token's jti, else the
// token. Safe for concurrent use; it starts no goroutine.
type Sessions struct {
	cfg      SessionConfig
	store    SessionStore
	window   time.Duration
	now      func() time.Time
	write    ErrorWriter
	log      *slog.Logger
	logLimit rate.Sometimes
	metrics  *sessionMetrics
}

// Decision is the answer of Sessions.Admit.
type Decision struct {
	// OK: the session may act.
	OK bool
	// RetryAfter, when refused: how long until another session of the
	// person can be admitted.
	RetryAfter time.Duration
}

// NewSessions validates cfg and applies its defaults.
func NewSessions(cfg SessionConfig) (*Sessions, error) {
	if cfg.Hold < 0 {
		return nil, errors.New("guard: SessionConfig.Hold cannot be negative (0 means until the token expires)")
	}
	s := &Sessions{cfg: cfg, store: cfg.Store, now: cfg.Now, write: cfg.WriteError, log: cfg.Logger,
		logLimit: rate.Sometimes{Interval: 10 * time.Second}}
	switch {
	case cfg.Window == 0:
		s.window = DefaultSessionWindow
	case cfg.Window > 0:
		s.window = cfg.Window
	}
	if s.cfg.StoreTimeout <= 0 {
		s.cfg.StoreTimeout = DefaultSessionStoreTimeout
	}
	if s.store == nil {
		s.store = NewMemorySessionStore(MemoryStoreConfig{})
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.write == nil {
		s.write = WriteError
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if cfg.Registerer != nil {
		m, err := newSessionMetrics(cfg.Registerer)
		if err != nil {
			return nil, err
		}
		s.metrics = m
	}
	s.log.Info("guard: one active session per person", "window", s.window.String(), "hold", cfg.Hold.String(),
		"always", cfg.Enforce == nil, "fail_closed", cfg.FailClosed, "store", fmt.Sprintf("%T", s.store))
	if s.window == 0 {
		s.log.Warn("guard: session window is OFF (negative Window): a person may start a new session as soon as the last one ends")
	}
	return s, nil
}

// Admit decides whether session (auth.Identity.Session) may act for
// personID, whose token expires at expires. When the rule is not enforced
// now it admits without asking the store. Store errors are returned as
// they are (the decision is then OK: false); Middleware applies the
// FailClosed policy.
func (s *Sessions) Admit(ctx context.Context, personID, session string, expires time.Time) (Decision, error) {
	now := s.now()
	if s.cfg.Enforce != nil && !s.cfg.Enforce(now) {
		return Decision{OK: true}, nil
	}
	if personID == "" || session == "" {
		return Decision{}, errors.New("guard: session admission needs a person id and a session")
	}
	until := expires
	if s.cfg.Hold > 0 && until.After(now.Add(s.cfg.Hold)) {
		until = now.Add(s.cfg.Hold)
	}
	if !until.After(now) { // a token at the edge of its skew: hold it briefly
		until = now.Add(time.Second)
	}
	if _, inProcess := s.store.(*MemorySessionStore); !inProcess {
		// The memory store never blocks; only a remote one needs a deadline.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.StoreTimeout)
		defer cancel()
	}
	ok, retryAt, err := s.store.Admit(ctx, s.personKey(personID), session, now, until, now.Add(s.window))
	if err != nil {
		return Decision{}, fmt.Errorf("guard: session store: %w", err)
	}
	if !ok {
		return Decision{RetryAfter: retryAt.Sub(now)}, nil
	}
	return Decision{OK: true}, nil
}

// End ends personID's session (a logout endpoint calls it with the
// caller's Identity.Session): another device may then start a session
// once the window since this one started has passed. Ending a session
// that is not the person's current one does nothing.
func (s *Sessions) End(ctx context.Context, personID, session string) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StoreTimeout)
	defer cancel()
	if err := s.store.End(ctx, s.personKey(personID), session, s.now()); err != nil {
		return fmt.Errorf("guard: session store: %w", err)
	}
	return nil
}

// Middleware returns the middleware applying the rule to requests whose
// caller identity is known (identity: httpapi.IdentityFrom). Requests
// without an identity pass on. A refused session gets 409 session_active
// with Retry-After; a store failure lets the request through (or, with
// FailClosed, answers 503 unavailable).
func (s *Sessions) Middleware(identity IdentityFunc) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, ok := identity(r.Context())
			if !ok {
				next.ServeHTTP(w, r)
				return
			}
			d, err := s.Admit(r.Context(), id.PersonID, id.Session, id.Expires)
			switch {
			case err != nil:
				if s.metrics != nil {
					s.metrics.storeErrors.Inc()
				}
				s.logLimit.Do(func() {
					s.log.Warn("guard: session store failed", "fail_closed", s.cfg.FailClosed, "err", err)
				})
				if s.cfg.FailClosed {
					s.write(w, http.StatusServiceUnavailable, CodeUnavailable,
						"The service cannot check sessions right now; try again shortly.", 5*time.Second)
					return
				}
			case !d.OK:
				if s.metrics != nil {
					s.metrics.refused.WithLabelValues(reasonSession).Inc()
				}
				s.write(w, http.StatusConflict, CodeSessionActive,
					"Another device is signed in for this person; sign out there or wait until its session ends.", d.RetryAfter)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// personKey replaces a person id by a keyed hash in store keys.
func (s *Sessions) personKey(personID string) string {
	var sum []byte
	if len(s.cfg.HashKey) > 0 {
		m := hmac.New(sha256.New, s.cfg.HashKey)
		m.Write([]byte(personID))
		sum = m.Sum(nil)
	} else {
		h := sha256.Sum256([]byte(personID))
		sum = h[:]
	}
	return hex.EncodeToString(sum[:16])
}

type sessionMetrics struct {
	refused     *prometheus.CounterVec
	storeErrors prometheus.Counter
}

func newSessionMetrics(reg prometheus.Registerer) (*sessionMetrics, error) {
	m := &sessionMetrics{
		refused: newRefusedCounter(),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "yeyak_guard_session_store_errors_total",
			Help: "Session store calls that failed (the request went on unless FailClosed).",
		}),
	}
	var err error
	if m.refused, err = registerCounterVec(reg, m.refused); err != nil {
		return nil, err
	}
	m.refused.WithLabelValues(reasonSession)
	if err := reg.Register(m.storeErrors); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("guard: register metrics: %w", err)
		}
		m.storeErrors = are.ExistingCollector.(prometheus.Counter)
	}
	return m, nil
}
