package guard_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/yeyak/yeyak/booking/httpapi/auth"
	"github.com/yeyak/yeyak/booking/httpapi/guard"
	"github.com/yeyak/yeyak/mocks/testenv"
)

// stores are the SessionStore implementations every session test runs on.
var stores = []struct {
	name string
	new  func(t *testing.T) guard.SessionStore
}{
	{"memory", func(t *testing.T) guard.SessionStore { return guard.NewMemorySessionStore(guard.MemoryStoreConfig{}) }},
	{"redis", func(t *testing.T) guard.SessionStore {
		cl, prefix := sharedRedis(t)
		s, err := guard.NewRedisSessionStore(guard.RedisStoreConfig{Client: cl, KeyPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
}

// sharedRedis returns a client to the machine's Redis and a key prefix of
// this test's own; the keys under it are deleted at the end (never FLUSH).
func sharedRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	addr, prefix := testenv.RedisAddr(t)
	cl := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := cl.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			cl.Del(ctx, keys...)
		}
		cl.Close()
	})
	return cl, prefix
}

func newSessions(t *testing.T, cfg guard.SessionConfig) *guard.Sessions {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	s, err := guard.NewSessions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// step is one call in a session scenario, at t0+at.
type step struct {
	at      time.Duration
	end     bool // End instead of Admit
	person  string
	session string
	expires time.Duration // token expiry, from t0
	ok      bool
	retry   time.Duration // Retry-After when refused
}

func TestSessionRule(t *testing.T) {
	scenarios := []struct {
		name  string
		cfg   guard.SessionConfig
		steps []step
	}{
		{"first session holds others out until its token expires", guard.SessionConfig{}, []step{
			{at: 0, person: "P1", session: "A", expires: 30 * time.Minute, ok: true},
			{at: time.Minute, person: "P1", session: "B", expires: 60 * time.Minute, retry: 29 * time.Minute},
			{at: time.Minute, person: "P1", session: "A", expires: 40 * time.Minute, ok: true}, // newer token, same sign-in
			{at: 2 * time.Minute, person: "P1", session: "B", expires: 60 * time.Minute, retry: 38 * time.Minute},
			{at: 2 * time.Minute, person: "P2", session: "B", expires: 60 * time.Minute, ok: true},  // another person
			{at: 39 * time.Minute, person: "P1", session: "A", expires: 35 * time.Minute, ok: true}, // an older token does not shorten it
			{at: 40 * time.Minute, person: "P1", session: "B", expires: 100 * time.Minute, ok: true},
			{at: 42 * time.Minute, person: "P1", session: "A", expires: 90 * time.Minute, retry: 58 * time.Minute},
		}},
		{"one verification per window", guard.SessionConfig{}, []step{
			{at: 0, person: "P1", session: "A", expires: 5 * time.Minute, ok: true},
			{at: 6 * time.Minute, person: "P1", session: "B", expires: 60 * time.Minute, retry: 4 * time.Minute},
			{at: 6 * time.Minute, person: "P1", session: "A", expires: 60 * time.Minute, retry: 4 * time.Minute}, // expired: A is over too
			{at: 10 * time.Minute, person: "P1", session: "B", expires: 60 * time.Minute, ok: true},
		}},
		{"window configurable", guard.SessionConfig{Window: 2 * time.Minute}, []step{
			{at: 0, person: "P1", session: "A", expires: time.Minute, ok: true},
			{at: time.Minute, person: "P1", session: "B", expires: 60 * time.Minute, retry: time.Minute},
			{at: 2 * time.Minute, person: "P1", session: "B", expires: 60 * time.Minute, ok: true},
		}},
		{"logout ends the hold, not the window", guard.SessionConfig{}, []step{
			{at: 0, person: "P1", session: "A", expires: 60 * time.Minute, ok: true},
			{at: 2 * time.Minute, end: true, person: "P1", session: "B"}, // not the current session: nothing
			{at: 2 * time.Minute, person: "P1", session: "B", expires: 60 * time.Minute, retry: 58 * time.Minute},
			{at: 2 * time.Minute, end: true, person: "P2", session: "A"}, // nobody's
			{at: 2 * time.Minute, end: true, person: "P1", session: "A"},
			{at: 3 * time.Minute, person: "P1", session: "B", expires: 60 * time.Minute, retry: 7 * time.Minute},
			{at: 3 * time.Minute, person: "P1", session: "A", expires: 60 * time.Minute, retry: 7 * time.Minute}, // logged out
			{at: 10 * time.Minute, person: "P1", session: "B", expires: 60 * time.Minute, ok: true},
			{at: 11 * time.Minute, end: true, person: "P1", session: "A"}, // stale logout: B stays
			{at: 11 * time.Minute, person: "P1", session: "B", expires: 60 * time.Minute, ok: true},
			{at: 11 * time.Minute, person: "P1", session: "C", expires: 60 * time.Minute, retry: 49 * time.Minute},
		}},
		{"window off: logout frees the person at once", guard.SessionConfig{Window: -1}, []step{
			{at: 0, person: "P1", session: "A", expires: 60 * time.Minute, ok: true},
			{at: time.Minute, person: "P1", session: "B", expires: 60 * time.Minute, retry: 59 * time.Minute},
			{at: time.Minute, end: true, person: "P1", session: "A"},
			{at: time.Minute, person: "P1", session: "B", expires: 60 * time.Minute, ok: true},
		}},
		{"hold after the latest request", guard.SessionConfig{Window: -1, Hold: 5 * time.Minute}, []step{
			{at: 0, person: "P1", session: "A", expires: 60 * time.Minute, ok: true},
			{at: 3 * time.Minute, person: "P1", session: "A", expires: 60 * time.Minute, ok: true},
			{at: 7 * time.Minute, person: "P1", session: "B", expires: 60 * time.Minute, retry: time.Minute},
			{at: 8 * time.Minute, person: "P1", session: "B", expires: 60 * time.Minute, ok: true},
		}},
		{"hold never past the token", guard.SessionConfig{Window: -1, Hold: time.Hour}, []step{
			{at: 0, person: "P1", session: "A", expires: 10 * time.Minute, ok: true},
			{at: 10 * time.Minute, person: "P1", session: "B", expires: 60 * time.Minute, ok: true},
		}},
		{"token at the edge of its skew is held briefly", guard.SessionConfig{Window: -1}, []step{
			{at: time.Minute, person: "P1", session: "A", expires: 0, ok: true},
			{at: time.Minute, person: "P1", session: "B", expires: 60 * time.Minute, retry: time.Second},
			{at: time.Minute + time.Second, person: "P1", session: "B", expires: 60 * time.Minute, ok: true},
		}},
		{"enforced only while the hook says so", guard.SessionConfig{Enforce: func(now time.Time) bool { return now.Before(t0.Add(time.Hour)) }}, []step{
			{at: 0, person: "P1", session: "A", expires: 120 * time.Minute, ok: true},
			{at: time.Minute, person: "P1", session: "B", expires: 120 * time.Minute, retry: 119 * time.Minute},
			{at: time.Hour, person: "P1", session: "B", expires: 120 * time.Minute, ok: true},
			{at: time.Hour, person: "P1", session: "C", expires: 120 * time.Minute, ok: true},
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					clk := newClock()
					cfg := sc.cfg
					cfg.Store, cfg.Now = st.new(t), clk.Now
					s := newSessions(t, cfg)
					ctx := context.Background()
					for i, p := range sc.steps {
						clk.mu.Lock()
						clk.t = t0.Add(p.at)
						clk.mu.Unlock()
						if p.end {
							if err := s.End(ctx, p.person, p.session); err != nil {
								t.Fatalf("step %d: End: %v", i, err)
							}
							continue
						}
						d, err := s.Admit(ctx, p.person, p.session, t0.Add(p.expires))
						if err != nil {
							t.Fatalf("step %d: Admit: %v", i, err)
						}
						if d.OK != p.ok || (!p.ok && d.RetryAfter != p.retry) {
							t.Fatalf("step %d (+%v %s %s): %+v, want ok=%v retry=%v", i, p.at, p.person, p.session, d, p.ok, p.retry)
						}
					}
				})
			}
		})
	}
}

// TestSessionBurst: many devices of one person at the same instant: exactly
// one session is admitted, on every store.
func TestSessionBurst(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			clk := newClock()
			s := newSessions(t, guard.SessionConfig{Store: st.new(t), Now: clk.Now, StoreTimeout: 10 * time.Second})
			var admitted atomic.Int32
			var wg sync.WaitGroup
			errs := make(chan error, 32)
			for i := range 32 {
				wg.Go(func() {
					d, err := s.Admit(context.Background(), "P1", fmt.Sprintf("device-%d", i), t0.Add(time.Hour))
					if err != nil {
						errs <- err
					}
					if d.OK {
						admitted.Add(1)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if n := admitted.Load(); n != 1 {
				t.Fatalf("%d sessions admitted for one person, want 1", n)
			}
		})
	}
}

func TestSessionMiddleware(t *testing.T) {
	clk := newClock()
	reg := prometheus.NewRegistry()
	s := newSessions(t, guard.SessionConfig{Now: clk.Now, Registerer: reg})
	h := s.Middleware(identityOf)(okHandler)
	serve := func(r *http.Request) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	first := auth.Identity{PersonID: "P0000000042", Session: "s1", Expires: t0.Add(30 * time.Minute)}
	second := auth.Identity{PersonID: "P0000000042", Session: "s2", Expires: t0.Add(30 * time.Minute)}
	if rec := serve(asPerson(request("203.0.113.1:1"), first)); rec.Code != http.StatusNoContent {
		t.Fatalf("first device: %d", rec.Code)
	}
	rec := serve(asPerson(request("203.0.113.2:1"), second))
	if rec.Code != http.StatusConflict {
		t.Fatalf("second device: %d, want 409", rec.Code)
	}
	if code, ra := apiError(t, rec); code != guard.CodeSessionActive || ra != "1800" {
		t.Fatalf("refusal %q Retry-After %q; want session_active 1800", code, ra)
	}
	if rec := serve(request("203.0.113.2:1")); rec.Code != http.StatusNoContent {
		t.Fatalf("request without identity: %d", rec.Code)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP yeyak_guard_refused_total Requests refused by the abuse guard, by reason (addr_rate, addr_in_flight, person_rate, session_active).
# TYPE yeyak_guard_refused_total counter
yeyak_guard_refused_total{reason="session_active"} 1
`), "yeyak_guard_refused_total"); err != nil {
		t.Fatal(err)
	}
}

// TestSessionStoreDown: a store that cannot answer lets requests through
// by default and answers 503 with FailClosed; both are counted.
func TestSessionStoreDown(t *testing.T) {
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer dead.Close()
	store, err := guard.NewRedisSessionStore(guard.RedisStoreConfig{Client: dead})
	if err != nil {
		t.Fatal(err)
	}
	id := auth.Identity{PersonID: "P1", Session: "s1", Expires: time.Now().Add(time.Hour)}
	for _, failClosed := range []bool{false, true} {
		reg := prometheus.NewRegistry()
		s := newSessions(t, guard.SessionConfig{Store: store, FailClosed: failClosed, Registerer: reg, StoreTimeout: 5 * time.Second})
		if _, err := s.Admit(context.Background(), id.PersonID, id.Session, id.Expires); err == nil {
			t.Fatal("Admit on a dead store succeeded")
		}
		rec := httptest.NewRecorder()
		s.Middleware(identityOf)(okHandler).ServeHTTP(rec, asPerson(request("203.0.113.1:1"), id))
		want := http.StatusNoContent
		if failClosed {
			want = http.StatusServiceUnavailable
		}
		if rec.Code != want {
			t.Fatalf("FailClosed=%v: %d, want %d", failClosed, rec.Code, want)
		}
		if failClosed {
			if code, _ := apiError(t, rec); code != guard.CodeUnavailable {
				t.Fatalf("code %q", code)
			}
		}
		if n := metricValue(t, reg, "yeyak_guard_session_store_errors_total"); n != 1 {
			t.Fatalf("store errors counted: %v", n)
		}
	}
}

// metricValue is the value of an unlabelled counter in reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestSessionAdmitChecksArguments(t *testing.T) {
	s := newSessions(t, guard.SessionConfig{})
	for _, c := range [][2]string{{"", "s"}, {"P1", ""}} {
		if _, err := s.Admit(context.Background(), c[0], c[1], time.Now().Add(time.Hour)); err == nil {
			t.Errorf("Admit(%q, %q) succeeded", c[0], c[1])
		}
	}
	if _, err := guard.NewSessions(guard.SessionConfig{Hold: -time.Second, Logger: quiet}); err == nil {
		t.Error("negative Hold accepted")
	}
	if _, err := guard.NewRedisSessionStore(guard.RedisStoreConfig{}); err == nil {
		t.Error("Redis store without a client accepted")
	}
}

// TestSessionEnforceOffSkipsStore: when the rule is not enforced the store
// is not asked at all.
func TestSessionEnforceOffSkipsStore(t *testing.T) {
	s := newSessions(t, guard.SessionConfig{Store: failingStore{t}, Enforce: func(time.Time) bool { return false }})
	for _, session := range []string{"a", "b", "c"} {
		if d, err := s.Admit(context.Background(), "P1", session, time.Now().Add(time.Hour)); err != nil || !d.OK {
			t.Fatalf("Admit while not enforced = %+v, %v", d, err)
		}
	}
}

type failingStore struct{ t *testing.T }

func (f failingStore) Admit(context.Context, string, string, time.Time, time.Time, time.Time) (bool, time.Time, error) {
	f.t.Fatal("store asked while the rule is not enforced")
	return false, time.Time{}, errors.New("unreachable")
}

func (f failingStore) End(context.Context, string, string, time.Time) error {
	f.t.Fatal("store asked while the rule is not enforced")
	return nil
}

// TestRedisSessionKeys: the store keeps no raw person id, expires its keys
// by itself, and the person hash depends on HashKey.
func TestRedisSessionKeys(t *testing.T) {
	cl, prefix := sharedRedis(t)
	store, err := guard.NewRedisSessionStore(guard.RedisStoreConfig{Client: cl, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	a := newSessions(t, guard.SessionConfig{Store: store, HashKey: []byte("fleet-secret-1")})
	b := newSessions(t, guard.SessionConfig{Store: store, HashKey: []byte("fleet-secret-2")})
	if d, err := a.Admit(ctx, "P0000000042", "s1", now.Add(30*time.Minute)); err != nil || !d.OK {
		t.Fatalf("a: %+v %v", d, err)
	}
	if d, err := b.Admit(ctx, "P0000000042", "s2", now.Add(30*time.Minute)); err != nil || !d.OK {
		t.Fatalf("b (another hash key) saw a's record: %+v %v", d, err)
	}
	keys, err := cl.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("keys %v, want two", keys)
	}
	for _, k := range keys {
		if strings.Contains(k, "P0000000042") || strings.Contains(k, "0000000042") {
			t.Fatalf("raw person id in Redis key %q", k)
		}
		vals, _ := cl.HGetAll(ctx, k).Result()
		for _, v := range vals {
			if strings.Contains(v, "0000000042") {
				t.Fatalf("raw person id in Redis value %q", v)
			}
		}
		ttl, err := cl.PTTL(ctx, k).Result()
		if err != nil || ttl <= 29*time.Minute || ttl > 30*time.Minute {
			t.Fatalf("PTTL %v, %v; want the token's remaining 30 minutes", ttl, err)
		}
	}
	// Ending before the window keeps the record for the window only.
	if err := a.End(ctx, "P0000000042", "s1"); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if ttl, _ := cl.PTTL(ctx, k).Result(); ttl > 30*time.Minute {
			t.Fatalf("PTTL %v after End", ttl)
		}
	}
	ttlA := time.Duration(0)
	for _, k := range keys {
		if v, _ := cl.HGet(ctx, k, "s").Result(); v == "s1" {
			ttlA, _ = cl.PTTL(ctx, k).Result()
		}
	}
	if ttlA <= 9*time.Minute || ttlA > 10*time.Minute {
		t.Fatalf("ended session's record lives %v, want the window's remaining 10 minutes", ttlA)
	}
}

func TestMemorySessionStoreBounded(t *testing.T) {
	store := guard.NewMemorySessionStore(guard.MemoryStoreConfig{MaxPersons: 1000})
	s := newSessions(t, guard.SessionConfig{Store: store})
	exp := time.Now().Add(time.Hour)
	for i := range 100_000 {
		if _, err := s.Admit(context.Background(), fmt.Sprint("P", i), "s", exp); err != nil {
			t.Fatal(err)
		}
	}
	if n := store.Len(); n > 1000 {
		t.Fatalf("%d records held, want ≤ 1000", n)
	}
}
