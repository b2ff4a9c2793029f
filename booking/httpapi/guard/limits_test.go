package guard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/yeyak/yeyak/booking/httpapi"
	"github.com/yeyak/yeyak/booking/httpapi/auth"
	"github.com/yeyak/yeyak/booking/httpapi/guard"
)

var t0 = time.Date(2026, 8, 9, 0, 0, 0, 0, time.UTC)

// clock is a settable clock safe for concurrent reads.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// withIdentity is an IdentityFunc reading what asPerson stored.
type idKey struct{}

func identityOf(ctx context.Context) (auth.Identity, bool) {
	id, ok := ctx.Value(idKey{}).(auth.Identity)
	return id, ok
}

func asPerson(r *http.Request, id auth.Identity) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), idKey{}, id))
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })

// apiError decodes a guard refusal, checking it against the /v1 OpenAPI
// document's Error schema.
func apiError(t *testing.T, rec *httptest.ResponseRecorder) (code string, retryAfter string) {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q: %v", rec.Body, err)
	}
	if err := errorSchema(t).VisitJSON(body); err != nil {
		t.Fatalf("error body %s does not match the API's Error schema: %v", rec.Body, err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	e := body["error"].(map[string]any)
	if e["retryable"] != true {
		t.Fatalf("refusal not retryable: %s", rec.Body)
	}
	return e["code"].(string), rec.Header().Get("Retry-After")
}

var (
	schemaOnce sync.Once
	schema     *openapi3.Schema
	schemaErr  error
)

func errorSchema(t *testing.T) *openapi3.Schema {
	t.Helper()
	schemaOnce.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(httpapi.OpenAPI())
		if err != nil {
			schemaErr = err
			return
		}
		ref, ok := doc.Components.Schemas["Error"]
		if !ok {
			schemaErr = fmt.Errorf("no Error schema in openapi.yaml")
			return
		}
		schema = ref.Value
	})
	if schemaErr != nil {
		t.Fatal(schemaErr)
	}
	return schema
}

func TestWriteErrorMatchesAPIShape(t *testing.T) {
	for _, c := range []struct {
		status int
		code   string
		wait   time.Duration
		header string
	}{
		{429, guard.CodeRateLimited, 1500 * time.Millisecond, "2"},
		{409, guard.CodeSessionActive, 30 * time.Minute, "1800"},
		{503, guard.CodeUnavailable, time.Millisecond, "1"},
	} {
		rec := httptest.NewRecorder()
		guard.WriteError(rec, c.status, c.code, "msg", c.wait)
		if rec.Code != c.status {
			t.Fatalf("status %d", rec.Code)
		}
		code, ra := apiError(t, rec)
		if code != c.code || ra != c.header {
			t.Fatalf("code %q Retry-After %q; want %q %q", code, ra, c.code, c.header)
		}
		if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("headers %v", rec.Header())
		}
	}
	// The codes are the API's.
	if guard.CodeRateLimited != string(httpapi.CodeRateLimited) || guard.CodeUnavailable != string(httpapi.CodeUnavailable) {
		t.Fatal("guard's codes differ from httpapi's")
	}
	rec := httptest.NewRecorder()
	guard.WriteError(rec, 429, guard.CodeRateLimited, "msg", 0)
	if rec.Header().Get("Retry-After") != "" {
		t.Fatal("Retry-After without a wait")
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want int
	}{{0, 1}, {-time.Second, 1}, {time.Nanosecond, 1}, {time.Second, 1}, {time.Second + 1, 2}, {10 * time.Minute, 600}, {1 << 62, 1<<31 - 1}} {
		if got := guard.RetryAfterSeconds(c.d); got != c.want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", c.d, got, c.want)
		}
	}
}

func TestPersonLimit(t *testing.T) {
	clk := newClock()
	g := newGuard(t, guard.Config{PersonRate: 0.1, PersonBurst: 3, Now: clk.Now})
	h := g.PersonLimit(identityOf)(okHandler)
	serve := func(person string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, asPerson(request("203.0.113.1:1"), auth.Identity{PersonID: person}))
		return rec
	}
	for i := range 3 {
		if rec := serve("P1"); rec.Code != http.StatusNoContent {
			t.Fatalf("request %d within the burst: %d", i, rec.Code)
		}
	}
	rec := serve("P1")
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("4th request: %d, want 429", rec.Code)
	}
	if code, ra := apiError(t, rec); code != guard.CodeRateLimited || ra != "10" {
		t.Fatalf("refusal %q Retry-After %q; want rate_limited, 10 (one token per 10s)", code, ra)
	}
	if rec := serve("P2"); rec.Code != http.StatusNoContent {
		t.Fatalf("another person limited by P1's requests: %d", rec.Code)
	}
	// Retry-After counts down with the clock; refusals take no token.
	clk.Add(4 * time.Second)
	for range 5 {
		rec = serve("P1")
		if _, ra := apiError(t, rec); ra != "6" {
			t.Fatalf("Retry-After after 4s = %q, want 6", ra)
		}
	}
	clk.Add(6 * time.Second)
	if rec := serve("P1"); rec.Code != http.StatusNoContent {
		t.Fatalf("after Retry-After: %d", rec.Code)
	}
	if rec := serve("P1"); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("second request after one token refilled: %d", rec.Code)
	}
	// No identity: not a person's request; passes on.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, request("203.0.113.1:1"))
	if rec.Code != http.StatusNoContent {
		t.Fatalf("anonymous request: %d", rec.Code)
	}
}

func TestAddrLimit(t *testing.T) {
	clk := newClock()
	g := newGuard(t, guard.Config{AddrRate: 1, AddrBurst: 2, TrustedProxies: []string{"10.0.0.0/8"}, Now: clk.Now})
	h := g.Edge(okHandler)
	serve := func(r *http.Request) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code == http.StatusTooManyRequests {
			if code, ra := apiError(t, rec); code != guard.CodeRateLimited || ra != "1" {
				t.Fatalf("refusal %q Retry-After %q", code, ra)
			}
		}
		return rec.Code
	}
	// Two clients behind one trusted proxy have separate limits; a client
	// forging XFF directly shares its real address's limit.
	for _, c := range []struct {
		r    *http.Request
		want int
	}{
		{request("10.0.0.2:1", "203.0.113.5"), 204},
		{request("10.0.0.2:1", "203.0.113.5"), 204},
		{request("10.0.0.2:1", "203.0.113.5"), 429},
		{request("10.0.0.2:1", "203.0.113.6"), 204},
		{request("198.51.100.7:1", "203.0.113.7"), 204},
		{request("198.51.100.7:2", "203.0.113.8"), 204},
		{request("198.51.100.7:3", "203.0.113.9"), 429},
		// Unreadable peers share one limit: nothing is exempt.
		{request("pipe"), 204},
		{request("pipe"), 204},
		{request("@"), 429},
	} {
		if got := serve(c.r); got != c.want {
			t.Fatalf("%s XFF %v: %d, want %d", c.r.RemoteAddr, c.r.Header.Values("X-Forwarded-For"), got, c.want)
		}
	}
	clk.Add(time.Second)
	if got := serve(request("10.0.0.2:1", "203.0.113.5")); got != 204 {
		t.Fatalf("after a second: %d", got)
	}
}

func TestIPv6Grouping(t *testing.T) {
	clk := newClock()
	for _, c := range []struct {
		prefix    int
		sameLimit bool
	}{{0, true}, {64, true}, {128, false}} {
		g := newGuard(t, guard.Config{AddrRate: 1, AddrBurst: 1, IPv6Prefix: c.prefix, Now: clk.Now})
		if ok, _ := g.AllowAddr(mustAddr("2001:db8:1:2::1")); !ok {
			t.Fatal("first request refused")
		}
		ok, _ := g.AllowAddr(mustAddr("2001:db8:1:2:ffff::9"))
		if ok == c.sameLimit {
			t.Fatalf("prefix %d: a neighbour in the /64 allowed = %v", c.prefix, ok)
		}
		if ok, _ := g.AllowAddr(mustAddr("2001:db8:1:3::1")); !ok {
			t.Fatalf("prefix %d: another /64 refused", c.prefix)
		}
	}
}

func TestInFlightCap(t *testing.T) {
	g := newGuard(t, guard.Config{MaxInFlightPerAddr: 2, AddrRate: -1})
	release := make(chan struct{})
	var inside atomic.Int32
	h := g.Edge(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inside.Add(1)
		<-release
		w.WriteHeader(http.StatusNoContent)
	}))
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for range 2 {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, request("203.0.113.1:1"))
			codes <- rec.Code
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for inside.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("requests did not start")
		}
		time.Sleep(time.Millisecond)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, request("203.0.113.1:2"))
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("third concurrent request: %d, want 429", rec.Code)
	}
	if code, ra := apiError(t, rec); code != guard.CodeRateLimited || ra != "1" {
		t.Fatalf("refusal %q Retry-After %q", code, ra)
	}
	// Another address is not affected (its request would block: use a
	// handler-free check through a second guard path).
	other := g.Edge(okHandler)
	rec = httptest.NewRecorder()
	other.ServeHTTP(rec, request("203.0.113.2:1"))
	if rec.Code != http.StatusNoContent {
		t.Fatalf("another address: %d", rec.Code)
	}
	close(release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusNoContent {
			t.Fatalf("capped request's own answer: %d", c)
		}
	}
	// Slots are given back, also when the handler panics.
	boom := g.Edge(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	for range 3 {
		func() {
			defer func() { _ = recover() }()
			boom.ServeHTTP(httptest.NewRecorder(), request("203.0.113.1:1"))
		}()
	}
	for range 3 {
		rec := httptest.NewRecorder()
		other.ServeHTTP(rec, request("203.0.113.1:1"))
		if rec.Code != http.StatusNoContent {
			t.Fatalf("slot not given back: %d", rec.Code)
		}
	}
}

// TestLimitsConcurrent: at a fixed instant, however many goroutines ask,
// exactly burst requests of one key pass.
func TestLimitsConcurrent(t *testing.T) {
	clk := newClock()
	g := newGuard(t, guard.Config{PersonBurst: 37, AddrBurst: 53, Now: clk.Now})
	var persons, addrs atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for range 50 {
				if ok, _ := g.AllowPerson("P1"); ok {
					persons.Add(1)
				}
				if ok, _ := g.AllowAddr(mustAddr("203.0.113.1")); ok {
					addrs.Add(1)
				}
				g.AllowPerson(fmt.Sprintf("P-%d", i)) // other keys, other shards
			}
		})
	}
	wg.Wait()
	if persons.Load() != 37 || addrs.Load() != 53 {
		t.Fatalf("passed %d person and %d address requests, want the bursts 37 and 53", persons.Load(), addrs.Load())
	}
}

func TestDefaultsAndOff(t *testing.T) {
	clk := newClock()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	g := newGuard(t, guard.Config{Now: clk.Now, Logger: log})
	count := func(allow func() bool) int {
		n := 0
		for range 1000 {
			if allow() {
				n++
			}
		}
		return n
	}
	if n := count(func() bool { ok, _ := g.AllowPerson("P1"); return ok }); n != guard.DefaultPersonBurst {
		t.Fatalf("default person burst: %d passed", n)
	}
	if n := count(func() bool { ok, _ := g.AllowAddr(mustAddr("203.0.113.1")); return ok }); n != guard.DefaultAddrBurst {
		t.Fatalf("default address burst: %d passed", n)
	}
	if strings.Contains(logs.String(), "OFF") {
		t.Fatalf("a default limit logged as off: %s", logs.String())
	}

	logs.Reset()
	off := newGuard(t, guard.Config{Now: clk.Now, Logger: log, PersonRate: -1, AddrRate: -1, MaxInFlightPerAddr: -1})
	if n := count(func() bool { ok, _ := off.AllowPerson("P1"); return ok }); n != 1000 {
		t.Fatalf("person limit off: %d of 1000 passed", n)
	}
	if n := count(func() bool { ok, _ := off.AllowAddr(mustAddr("203.0.113.1")); return ok }); n != 1000 {
		t.Fatalf("address limit off: %d of 1000 passed", n)
	}
	for _, want := range []string{"per-person rate limit is OFF", "per-address rate limit is OFF", "concurrency cap is OFF"} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

func TestDefaultInFlightCap(t *testing.T) {
	g := newGuard(t, guard.Config{AddrRate: -1})
	release := make(chan struct{})
	var inside atomic.Int32
	h := g.Edge(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inside.Add(1); <-release }))
	var wg sync.WaitGroup
	for range guard.DefaultMaxInFlightPerAddr {
		wg.Go(func() { h.ServeHTTP(httptest.NewRecorder(), request("203.0.113.1:1")) })
	}
	deadline := time.Now().Add(10 * time.Second)
	for inside.Load() < guard.DefaultMaxInFlightPerAddr {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests started", inside.Load(), guard.DefaultMaxInFlightPerAddr)
		}
		time.Sleep(time.Millisecond)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, request("203.0.113.1:1"))
	close(release)
	wg.Wait()
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("request over the default cap: %d", rec.Code)
	}
}

func TestMetrics(t *testing.T) {
	clk := newClock()
	reg := prometheus.NewRegistry()
	g := newGuard(t, guard.Config{PersonBurst: 1, AddrBurst: 1, Now: clk.Now, Registerer: reg})
	h := g.Edge(g.PersonLimit(identityOf)(okHandler))
	for range 2 {
		h.ServeHTTP(httptest.NewRecorder(), asPerson(request("203.0.113.1:1"), auth.Identity{PersonID: "P0000000042"}))
	}
	for range 3 {
		h.ServeHTTP(httptest.NewRecorder(), asPerson(request(fmt.Sprintf("203.0.113.%d:1", 10+clk.Now().Second())), auth.Identity{PersonID: "P0000000042"}))
		clk.Add(time.Second)
	}
	refused, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var dump strings.Builder
	for _, mf := range refused {
		fmt.Fprintln(&dump, mf.String())
	}
	for _, personal := range []string{"P0000000042", "203.0.113"} {
		if strings.Contains(dump.String(), personal) {
			t.Fatalf("metrics carry personal data %q:\n%s", personal, dump.String())
		}
	}
	// A second Guard on the same registry shares the counter.
	g2 := newGuard(t, guard.Config{PersonBurst: 1, Now: clk.Now, Registerer: reg})
	g2.PersonLimit(identityOf)(okHandler).ServeHTTP(httptest.NewRecorder(), asPerson(request("203.0.113.1:1"), auth.Identity{PersonID: "X"}))
	g2.PersonLimit(identityOf)(okHandler).ServeHTTP(httptest.NewRecorder(), asPerson(request("203.0.113.1:1"), auth.Identity{PersonID: "X"}))
	want := `
# HELP yeyak_guard_refused_total Requests refused by the abuse guard, by reason (addr_rate, addr_in_flight, person_rate, session_active).
# TYPE yeyak_guard_refused_total counter
yeyak_guard_refused_total{reason="addr_in_flight"} 0
yeyak_guard_refused_total{reason="addr_rate"} 1
yeyak_guard_refused_total{reason="person_rate"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "yeyak_guard_refused_total"); err != nil {
		t.Fatal(err)
	}
}
