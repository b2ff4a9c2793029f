package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/admission"
	"github.com/yeyak/yeyak/booking/httpapi"
)

// TestProxyBookingMatrix drives EVERY route of openapi.yaml with person B's
// token against person A's resources (A's two-dose booking, A's queue
// ticket), with the waiting room and sign-out wired as in yeyakd: A's data
// never appears in a response, nothing of A's changes, and A's resources
// answer exactly as missing ones do. A route added to the document without
// a row here fails the test.
func TestProxyBookingMatrix(t *testing.T) {
	forEachBackendWith(t, withQueue, func(t *testing.T, e *env) {
		a, b := e.token(personA), e.token(personB)
		var bk struct {
			Booking struct {
				ID     string `json:"id"`
				Linked string `json:"linked_booking_id"`
			} `json:"booking"`
		}
		mustJSON(t, e.book(a, "a-1", bookBody("C000001", vday, "pfizer")), 201, &bk)
		dose1, dose2 := bk.Booking.ID, bk.Booking.Linked
		join := e.do("POST", "/v1/queue", a, "", nil)
		ticketA, _ := join.json(t)["ticket"].(string)
		if dose2 == "" || ticketA == "" {
			t.Fatalf("setup: dose 2 %q, ticket %q", dose2, ticketA)
		}
		secrets := []string{personA, dose1, dose2, ticketA}
		aSees := func() string {
			return string(e.do("GET", "/v1/bookings", a, "", nil).body)
		}
		beforeA, before := aSees(), e.counts()

		missing := booking.NewID()
		resched := `{"clinic_id":"C000003","date":"` + vday.AddDays(1).String() + `"}`
		type call struct{ method, path, body string }
		// For each route, B's calls; where a path names A's resource, the
		// same call with a missing id must answer the same bytes.
		matrix := map[string][]call{
			"GET /healthz":                      {{"GET", "/healthz", ""}},
			"GET /readyz":                       {{"GET", "/readyz", ""}},
			"GET /v1/openapi.yaml":              {{"GET", "/v1/openapi.yaml", ""}},
			"GET /v1/campaigns":                 {{"GET", "/v1/campaigns", ""}},
			"GET /v1/clinics":                   {{"GET", "/v1/clinics?campaign=c2026", ""}, {"GET", "/v1/clinics?campaign=c2026&near=37.5665,126.978", ""}},
			"GET /v1/me/eligibility":            {{"GET", "/v1/me/eligibility?campaign=c2026", ""}},
			"DELETE /v1/me/session":             {{"DELETE", "/v1/me/session", ""}},
			"POST /v1/bookings":                 {{"POST", "/v1/bookings", bookBody("C000003", vday, "pfizer")}},
			"POST /v1/bookings:assign":          {{"POST", "/v1/bookings:assign", `{"campaign_id":"c2026","near":{"lat":37.5,"lon":127.04}}`}},
			"GET /v1/bookings":                  {{"GET", "/v1/bookings", ""}},
			"GET /v1/bookings/{id}":             {{"GET", "/v1/bookings/" + dose1, ""}, {"GET", "/v1/bookings/" + dose2, ""}},
			"DELETE /v1/bookings/{id}":          {{"DELETE", "/v1/bookings/" + dose1, ""}, {"DELETE", "/v1/bookings/" + dose2, ""}},
			"POST /v1/bookings/{id}/reschedule": {{"POST", "/v1/bookings/" + dose1 + "/reschedule", resched}, {"POST", "/v1/bookings/" + dose2 + "/reschedule", resched}},
			"POST /v1/queue":                    {{"POST", "/v1/queue", ""}},
			"GET /v1/queue/{ticket}":            {{"GET", "/v1/queue/" + ticketA, ""}},
			"GET /queue":                        {{"GET", "/queue", ""}},
		}
		// Every documented operation has a row.
		var undocumented []string
		for path, item := range loadDoc(t).Paths.Map() {
			for method := range item.Operations() {
				if _, ok := matrix[method+" "+path]; !ok {
					undocumented = append(undocumented, method+" "+path)
				}
			}
		}
		sort.Strings(undocumented)
		if len(undocumented) > 0 {
			t.Fatalf("routes without a row in the proxy matrix: %v", undocumented)
		}
		for route, calls := range matrix {
			for i, c := range calls {
				r := e.do(c.method, c.path, b, c.body, map[string]string{"Idempotency-Key": "b-" + strings.ReplaceAll(route, " ", "") + string(rune('0'+i))})
				for _, s := range secrets {
					if bytes.Contains(r.body, []byte(s)) || strings.Contains(strings.Join(r.header.Values("Location"), " "), s) {
						t.Errorf("%s %s as B: A's %q appears: %d %s", c.method, c.path, s, r.status, r.body)
					}
				}
				for _, s := range []string{dose1, dose2, ticketA} {
					if !strings.Contains(c.path, s) {
						continue
					}
					none := e.do(c.method, strings.Replace(c.path, s, missing, 1), b, c.body, nil)
					if r.status != 404 || none.status != 404 || !bytes.Equal(r.body, none.body) {
						t.Errorf("%s %s as B: %d %s; with a missing id: %d %s (want the same 404)", c.method, c.path, r.status, r.body, none.status, none.body)
					}
				}
			}
		}
		// B's own booking and sign-out happened; nothing of A's changed.
		if got := aSees(); got != beforeA {
			t.Fatalf("A's bookings changed:\n%s\n%s", beforeA, got)
		}
		after := e.counts()
		if after.Bookings != before.Bookings+2 { // B's dose 1 and dose 2, nothing else
			t.Fatalf("rows: before %+v after %+v", before, after)
		}
	})
}

// withQueue mounts the waiting room (a generous free flow, so it only
// adds its routes and pass checks) and a sign-out route.
func withQueue(t *testing.T, cfg *httpapi.Config) {
	{
		v := cfg.Verifier
		adm, err := admission.New(admission.Config{
			Keys:       []admission.Key{{ID: "k1", Secret: []byte("0123456789abcdef0123")}},
			PersonFunc: httpapi.PersonOf(v),
			Floor:      1000, Ceiling: 1000, // the real clock: the line moves on
		})
		if err != nil {
			t.Fatal(err)
		}
		q := adm.Handler()
		cfg.Extra = map[string]http.Handler{"POST /v1/queue": q, "GET /v1/queue/{ticket}": q, "GET /queue": q}
		cfg.Flow = append(cfg.Flow, adm.Middleware)
		cfg.EndSession = func(context.Context, string, string) error { return nil }
	}
}

// TestSamePersonParallelBurst: one person, several valid tokens (several
// devices), many parallel booking attempts with distinct keys: exactly one
// booking (and its dose 2) is made; the rest are already_booked.
func TestSamePersonParallelBurst(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		toks := make([]string, 5)
		for i := range toks {
			toks[i] = e.token(personA)
		}
		const tries = 30
		statuses := make([]int, tries)
		var wg sync.WaitGroup
		for i := range tries {
			wg.Go(func() {
				clinic := []string{"C000001", "C000003"}[i%2]
				r := e.book(toks[i%len(toks)], "burst-"+string(rune('a'+i)), bookBody(clinic, vday, "pfizer"))
				statuses[i] = r.status
				if r.status != 201 && (r.status != 409 || r.code(t) != "already_booked") {
					t.Errorf("attempt %d: %d %s", i, r.status, r.body)
				}
			})
		}
		wg.Wait()
		created := 0
		for _, s := range statuses {
			if s == 201 {
				created++
			}
		}
		var n int
		if err := e.db.DB().Get(&n, "SELECT COUNT(*) FROM bookings WHERE person_id = '"+personA+"' AND status <> 'cancelled' AND dose = 1"); err != nil {
			t.Fatal(err)
		}
		if created != 1 || n != 1 {
			t.Fatalf("%d created, %d active dose-1 bookings; want exactly 1", created, n)
		}
	})
}
