package httpapi_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking/httpapi"
	"github.com/yeyak/yeyak/booking/httpapi/guard"
)

// newGuardedEnv is the API with the abuse limits wired as yeyakd wires
// them: per-address limits at the edge, the per-person limit and the
// one-active-session rule in the booking flow, and sign-out.
func newGuardedEnv(t *testing.T, gcfg guard.Config, scfg guard.SessionConfig) *env {
	return newEnvWith(t, backends[0].dsn(t), nil, func(cfg *httpapi.Config) {
		gcfg.Now, scfg.Now = func() time.Time { return testNow }, func() time.Time { return testNow }
		g, err := guard.New(gcfg)
		if err != nil {
			t.Fatal(err)
		}
		s, err := guard.NewSessions(scfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Edge = g.Edge
		cfg.Flow = append(cfg.Flow, g.PersonLimit(httpapi.IdentityFrom), s.Middleware(httpapi.IdentityFrom))
		cfg.EndSession = s.End
	})
}

// TestPersonRateLimit: beyond a person's burst their calls answer 429
// rate_limited with Retry-After and write nothing; another person is not
// affected.
func TestPersonRateLimit(t *testing.T) {
	e := newGuardedEnv(t, guard.Config{PersonRate: 0.1, PersonBurst: 3, AddrRate: -1, MaxInFlightPerAddr: -1}, guard.SessionConfig{Window: -1})
	a := e.token(personA)
	for i := range 3 {
		if r := e.do("GET", "/v1/bookings", a, "", nil); r.status != 200 {
			t.Fatalf("call %d within the burst: %d %s", i, r.status, r.body)
		}
	}
	before := e.counts()
	r := e.book(a, "k1", bookBody("C000001", vday, "pfizer"))
	if r.status != 429 || r.code(t) != "rate_limited" {
		t.Fatalf("over the burst: %d %s", r.status, r.body)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 10 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	if after := e.counts(); after != before {
		t.Fatalf("a refused call wrote: %+v → %+v", before, after)
	}
	if r := e.do("GET", "/v1/bookings", e.token(personB), "", nil); r.status != 200 {
		t.Fatalf("another person: %d %s", r.status, r.body)
	}
}

// TestAddressLimits: one address over its rate gets 429 on every route,
// authenticated or not; X-Forwarded-For from an untrusted peer changes
// nothing.
func TestAddressLimits(t *testing.T) {
	e := newGuardedEnv(t, guard.Config{AddrRate: 0.1, AddrBurst: 2, PersonRate: -1}, guard.SessionConfig{Window: -1})
	for i := range 2 {
		if r := e.do("GET", "/v1/campaigns", "", "", map[string]string{"X-Forwarded-For": "203.0.113." + strconv.Itoa(i)}); r.status != 200 {
			t.Fatalf("call %d: %d", i, r.status)
		}
	}
	r := e.do("GET", "/v1/campaigns", "", "", map[string]string{"X-Forwarded-For": "198.51.100.7"})
	if r.status != 429 || r.code(t) != "rate_limited" || r.header.Get("Retry-After") == "" {
		t.Fatalf("third call from the same peer (spoofed XFF): %d %s", r.status, r.body)
	}
}

// TestOneActiveSession: a second sign-in (another token session) of the
// same person is refused with 409 session_active while the first is
// active, on every booking-flow route, and is let in once the first signs
// out; the first keeps working; other people are not affected.
func TestOneActiveSession(t *testing.T) {
	e := newGuardedEnv(t, guard.Config{PersonRate: -1, AddrRate: -1, MaxInFlightPerAddr: -1}, guard.SessionConfig{Window: -1})
	first, second := e.token(personA), e.token(personA) // distinct jti: two sign-ins
	if r := e.do("GET", "/v1/me/eligibility?campaign=c2026", first, "", nil); r.status != 200 {
		t.Fatalf("first session: %d %s", r.status, r.body)
	}
	before := e.counts()
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/me/eligibility?campaign=c2026", ""},
		{"GET", "/v1/bookings", ""},
		{"POST", "/v1/bookings", bookBody("C000001", vday, "pfizer")},
	} {
		r := e.do(c.method, c.path, second, c.body, map[string]string{"Idempotency-Key": "k2"})
		if r.status != 409 || r.code(t) != "session_active" || r.header.Get("Retry-After") == "" {
			t.Fatalf("second session %s %s: %d %s", c.method, c.path, r.status, r.body)
		}
	}
	if after := e.counts(); after != before {
		t.Fatalf("refused calls wrote: %+v → %+v", before, after)
	}
	if r := e.book(first, "k1", bookBody("C000001", vday, "pfizer")); r.status != 201 {
		t.Fatalf("first session books: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/bookings", e.token(personB), "", nil); r.status != 200 {
		t.Fatalf("another person: %d", r.status)
	}
	if r := e.do("DELETE", "/v1/me/session", "", "", nil); r.status != 401 {
		t.Fatalf("sign out without a token: %d", r.status)
	}
	if r := e.do("DELETE", "/v1/me/session", first, "", nil); r.status != http.StatusNoContent {
		t.Fatalf("sign out: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/bookings", second, "", nil); r.status != 200 {
		t.Fatalf("second session after the first signed out: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/bookings", first, "", nil); r.status != 409 {
		t.Fatalf("the signed-out session is now the other one: %d %s", r.status, r.body)
	}
}
