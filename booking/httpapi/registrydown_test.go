package httpapi_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/httpapi"
)

// TestRegistryDownPolicy: when the registry cannot answer for an uncached
// person, the campaign's policy decides and the answer says which one
// happened: fail_closed → 503 registry_unavailable with Retry-After and
// nothing written; provisional → 201 with status provisional (the dose is
// held), and eligibility says provisional.
func TestRegistryDownPolicy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		tok := e.token(personDown)
		before := e.counts()
		r := e.book(tok, "k1", bookBody("C000001", vday, "pfizer"))
		if r.status != 503 || r.code(t) != "registry_unavailable" || r.json(t)["error"].(map[string]any)["retryable"] != true {
			t.Fatalf("fail_closed: %d %s", r.status, r.body)
		}
		if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
			t.Fatalf("fail_closed: Retry-After %q", r.header.Get("Retry-After"))
		}
		if after := e.counts(); after != before {
			t.Fatalf("fail_closed wrote: %+v → %+v", before, after)
		}
		if r := e.do("GET", "/v1/me/eligibility?campaign=c2026", tok, "", nil); r.status != 503 || r.code(t) != "registry_unavailable" {
			t.Fatalf("fail_closed eligibility: %d %s", r.status, r.body)
		}

		c := testCampaign()
		c.RegistryPolicy = "provisional"
		if err := e.db.PutCampaign(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		el := e.do("GET", "/v1/me/eligibility?campaign=c2026", tok, "", nil)
		if m := el.json(t); el.status != 200 || m["eligible"] != true || m["provisional"] != true {
			t.Fatalf("provisional eligibility: %d %s", el.status, el.body)
		}
		r = e.book(tok, "k2", bookBody("C000001", vday, "pfizer"))
		var bk struct {
			Booking struct {
				Status string `json:"status"`
				Linked string `json:"linked_booking_id"`
			} `json:"booking"`
		}
		mustJSON(t, r, 201, &bk)
		if bk.Booking.Status != "provisional" || bk.Booking.Linked == "" {
			t.Fatalf("provisional booking: %s", r.body)
		}
		if after := e.counts(); after.Booked != before.Booked+2 {
			t.Fatalf("the provisional booking holds no doses: %+v → %+v", before, after)
		}
	})
}

// TestObserveSeesErrorCodes: the admission signal gets each booking-flow
// response's error code, so yeyakd can leave registry outages out of the
// health it admits by.
func TestObserveSeesErrorCodes(t *testing.T) {
	type obs struct {
		route  string
		status int
		code   booking.Code
	}
	var mu sync.Mutex
	var seen []obs
	e := newEnvWith(t, backends[0].dsn(t), nil, func(cfg *httpapi.Config) {
		cfg.Observe = func(route string, status int, code booking.Code, _ time.Duration) {
			mu.Lock()
			seen = append(seen, obs{route, status, code})
			mu.Unlock()
		}
		// A guard refusing person B (as the waiting room or a limit would).
		cfg.Flow = append(cfg.Flow, func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if id, _ := httpapi.IdentityFrom(r.Context()); id.PersonID == personB {
					w.Header().Set("Retry-After", "1")
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusTooManyRequests)
					_, _ = w.Write([]byte(`{"error":{"code":"queue_required","message":"wait","retryable":true}}`))
					return
				}
				next.ServeHTTP(w, r)
			})
		})
	})
	e.book(e.token(personDown), "k1", bookBody("C000001", vday, "pfizer"))
	e.book(e.token(personB), "k3", bookBody("C000001", vday, "pfizer")) // refused by the guard: not the booking path's work
	e.book(e.token(personA), "k2", bookBody("C000001", vday, "pfizer"))
	e.do("GET", "/v1/campaigns", "", "", nil) // not a booking-flow route
	mu.Lock()
	defer mu.Unlock()
	want := []obs{{"POST /v1/bookings", 503, booking.EREGISTRYDOWN}, {"POST /v1/bookings", 201, ""}}
	if len(seen) != len(want) || seen[0] != want[0] || seen[1] != want[1] {
		t.Fatalf("observed %+v, want %+v", seen, want)
	}
}

// TestObserveLatencyFromTheRouter: the latency the admission signal gets
// runs from when the router took the request, so what a booking costs
// before its handler (token verification, the person's lookup, the Flow
// wrappers that let it through) is part of the booking path's health.
func TestObserveLatencyFromTheRouter(t *testing.T) {
	const delay = 300 * time.Millisecond
	var mu sync.Mutex
	var seen []time.Duration
	e := newEnvWith(t, backends[0].dsn(t), nil, func(cfg *httpapi.Config) {
		cfg.Observe = func(_ string, _ int, _ booking.Code, elapsed time.Duration) {
			mu.Lock()
			seen = append(seen, elapsed)
			mu.Unlock()
		}
		// A Flow wrapper that lets the request through after a while (as
		// a contended limit or session store would).
		cfg.Flow = append(cfg.Flow, func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				time.Sleep(delay)
				next.ServeHTTP(w, r)
			})
		})
	})
	if r := e.book(e.token(personA), "k1", bookBody("C000001", vday, "pfizer")); r.status != 201 {
		t.Fatalf("book: %d %s", r.status, r.body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] < delay {
		t.Fatalf("observed %v, want one latency of at least %v", seen, delay)
	}
}

// TestGateBeforeAuthentication: the Gate runs on every booking-flow route
// before the token is looked at (a request with a forged token meets the
// gate's answer, not 401), and on no other route.
func TestGateBeforeAuthentication(t *testing.T) {
	var mu sync.Mutex
	var gated []string
	e := newEnvWith(t, backends[0].dsn(t), nil, func(cfg *httpapi.Config) {
		cfg.EndSession = func(context.Context, string, string) error { return nil }
		cfg.Gate = func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				gated = append(gated, r.Method+" "+r.URL.Path)
				mu.Unlock()
				if r.Header.Get("X-Let-Through") != "" {
					next.ServeHTTP(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusTooManyRequests)
				_, _ = w.Write([]byte(`{"error":{"code":"queue_required","message":"wait","retryable":true}}`))
			})
		}
	})
	forged := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	for _, rt := range []struct{ method, path string }{
		{"GET", "/v1/me/eligibility?campaign=c2026"},
		{"GET", "/v1/clinics?campaign=c2026"},
		{"POST", "/v1/bookings"},
		{"POST", "/v1/bookings:assign"},
		{"GET", "/v1/bookings"},
		{"GET", "/v1/bookings/b1"},
		{"DELETE", "/v1/bookings/b1"},
		{"POST", "/v1/bookings/b1/reschedule"},
	} {
		if r := e.do(rt.method, rt.path, forged, "", nil); r.status != http.StatusTooManyRequests || r.code(t) != "queue_required" {
			t.Errorf("%s %s with a forged token: %d %s, want the gate's 429", rt.method, rt.path, r.status, r.body)
		}
	}
	if r := e.do("GET", "/v1/me/eligibility?campaign=c2026", forged, "", map[string]string{"X-Let-Through": "1"}); r.status != http.StatusUnauthorized {
		t.Errorf("through the gate with a forged token: %d %s, want 401", r.status, r.body)
	}
	mu.Lock()
	n := len(gated)
	mu.Unlock()
	e.do("GET", "/v1/campaigns", "", "", nil)
	e.do("DELETE", "/v1/me/session", forged, "", nil)
	mu.Lock()
	defer mu.Unlock()
	if len(gated) != n || n != 9 {
		t.Fatalf("gated %d requests %v, want the 9 booking-flow ones only", len(gated), gated)
	}
}
