package httpapi_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/httpapi"
	"github.com/yeyak/yeyak/mocks/idp"
)

func TestTour(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		a := e.token(personA)

		r := e.do("GET", "/healthz", "", "", nil)
		if r.status != 200 {
			t.Fatalf("healthz: %d", r.status)
		}
		if r = e.do("GET", "/readyz", "", "", nil); r.status != 200 {
			t.Fatalf("readyz: %d %s", r.status, r.body)
		}
		if r = e.do("GET", "/v1/openapi.yaml", "", "", nil); r.status != 200 || !bytes.Contains(r.body, []byte("openapi: 3.1")) {
			t.Fatalf("openapi: %d", r.status)
		}

		r = e.do("GET", "/v1/campaigns", "", "", nil)
		var cs struct {
			Campaigns []struct {
				ID       string `json:"id"`
				Rotation struct {
					Starts string `json:"starts"`
					Digits []int  `json:"digits"`
				} `json:"rotation"`
			} `json:"campaigns"`
		}
		mustJSON(t, r, 200, &cs)
		if len(cs.Campaigns) != 1 || cs.Campaigns[0].Rotation.Starts != "2026-08-09" || cs.Campaigns[0].Rotation.Digits[0] != 9 {
			t.Fatalf("campaigns: %s", r.body)
		}

		var el struct {
			Eligible    bool   `json:"eligible"`
			Reason      string `json:"reason"`
			CanBookFrom string `json:"can_book_from"`
			Wave        int    `json:"wave"`
		}
		mustJSON(t, e.do("GET", "/v1/me/eligibility?campaign=c2026", a, "", nil), 200, &el)
		if !el.Eligible || el.Wave != 1 || el.Reason != "eligible" || el.CanBookFrom == "" {
			t.Fatalf("A eligibility: %+v (want eligible, reason and can_book_from present)", el)
		}
		el = struct {
			Eligible    bool   `json:"eligible"`
			Reason      string `json:"reason"`
			CanBookFrom string `json:"can_book_from"`
			Wave        int    `json:"wave"`
		}{}
		mustJSON(t, e.do("GET", "/v1/me/eligibility?campaign=c2026", e.token(personC), "", nil), 200, &el)
		if el.Eligible || el.Reason != "not_your_rotation_day" || el.CanBookFrom != "2026-08-11T15:00:00Z" {
			t.Fatalf("C eligibility: %+v (want digit-2 day 2026-08-12 00:00 KST)", el)
		}

		before := remaining(t, e, a, "C000001", vday, "pfizer")
		if before != 2 {
			t.Fatalf("remaining before = %d, want 2 (22 doses over 11 waves)", before)
		}

		body := bookBody("C000001", vday, "pfizer")
		r = e.book(a, "key-1", body)
		var bk struct {
			Booking struct {
				ID       string `json:"id"`
				Status   string `json:"status"`
				Date     string `json:"date"`
				ClinicID string `json:"clinic_id"`
				Dose     int    `json:"dose"`
				Linked   string `json:"linked_booking_id"`
			} `json:"booking"`
		}
		mustJSON(t, r, 201, &bk)
		if bk.Booking.Status != "confirmed" || bk.Booking.Dose != 1 || r.header.Get("Location") != "/v1/bookings/"+bk.Booking.ID {
			t.Fatalf("booking: %s %v", r.body, r.header)
		}
		// pfizer is a two-dose product: dose 2 is reserved with dose 1.
		dose2 := bk.Booking.Linked
		if dose2 == "" {
			t.Fatalf("no dose 2 reserved with a two-dose product: %s", r.body)
		}
		// Replay: same key, same booking (whitespace and order do not matter).
		r2 := e.book(a, "key-1", ` {"product":"pfizer","date":"`+vday.String()+`","clinic_id":"C000001","campaign_id":"c2026"}`)
		if r2.status != 201 || !bytes.Equal(r2.body, r.body) || r2.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay: %d %s", r2.status, r2.body)
		}
		if r3 := e.book(a, "key-1", bookBody("C000003", vday, "pfizer")); r3.status != 422 || r3.code(t) != "idempotency_key_reused" {
			t.Fatalf("reused key: %d %s", r3.status, r3.body)
		}
		if r4 := e.book(a, "key-2", body); r4.status != 409 || r4.code(t) != "already_booked" {
			t.Fatalf("second booking: %d %s", r4.status, r4.body)
		}
		if c := e.counts(); c.Bookings != 2 || c.Booked != 2 {
			t.Fatalf("after replays: %+v (want dose 1 and its dose 2)", c)
		}

		if err := e.snap.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := remaining(t, e, a, "C000001", vday, "pfizer"); got != before-1 {
			t.Fatalf("remaining after booking = %d, want %d", got, before-1)
		}

		var list struct {
			Bookings []struct{ ID string } `json:"bookings"`
		}
		mustJSON(t, e.do("GET", "/v1/bookings", a, "", nil), 200, &list)
		if len(list.Bookings) != 2 {
			t.Fatalf("list: %+v, want dose 1 and dose 2", list)
		}
		var d2 struct {
			Booking struct {
				Dose   int    `json:"dose"`
				Linked string `json:"linked_booking_id"`
				Date   string `json:"date"`
				Status string `json:"status"`
			} `json:"booking"`
		}
		mustJSON(t, e.do("GET", "/v1/bookings/"+dose2, a, "", nil), 200, &d2)
		if d2.Booking.Dose != 2 || d2.Booking.Linked != bk.Booking.ID || d2.Booking.Date != vday.AddDays(42).String() {
			t.Fatalf("dose 2: %+v, want dose 2 on %s linked to %s", d2.Booking, vday.AddDays(42), bk.Booking.ID)
		}
		mustJSON(t, e.do("GET", "/v1/bookings/"+bk.Booking.ID, a, "", nil), 200, &bk)

		r = e.do("POST", "/v1/bookings/"+bk.Booking.ID+"/reschedule", a, `{"clinic_id":"C000003","date":"`+vday.AddDays(1).String()+`"}`, nil)
		mustJSON(t, r, 200, &bk)
		if bk.Booking.ClinicID != "C000003" || bk.Booking.Date != vday.AddDays(1).String() {
			t.Fatalf("reschedule: %s", r.body)
		}
		mustJSON(t, e.do("GET", "/v1/bookings/"+dose2, a, "", nil), 200, &d2)
		if d2.Booking.Date != vday.AddDays(43).String() || d2.Booking.Status != "confirmed" {
			t.Fatalf("dose 2 did not move with dose 1: %+v", d2.Booking)
		}

		r = e.do("DELETE", "/v1/bookings/"+bk.Booking.ID, a, "", nil)
		mustJSON(t, r, 200, &bk)
		if bk.Booking.Status != "cancelled" {
			t.Fatalf("cancel: %s", r.body)
		}
		if r = e.do("DELETE", "/v1/bookings/"+bk.Booking.ID, a, "", nil); r.status != 409 || r.code(t) != "already_cancelled" {
			t.Fatalf("cancel again: %d %s", r.status, r.body)
		}
		if c := e.counts(); c.Booked != 0 {
			t.Fatalf("doses not returned: %+v", c)
		}
		mustJSON(t, e.do("GET", "/v1/bookings/"+dose2, a, "", nil), 200, &d2)
		if d2.Booking.Status != "cancelled" {
			t.Fatalf("dose 2 not cancelled with dose 1: %+v", d2.Booking)
		}

		// Privacy: no raw person id in anything logged during the tour.
		for _, p := range []string{personA, personC} {
			if strings.Contains(e.logs.String(), p) {
				t.Errorf("logs contain the raw person id %s", p)
			}
		}
	})
}

func mustJSON(t *testing.T, r reply, status int, v any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func remaining(t *testing.T, e *env, tok, clinic string, d booking.Date, product string) int {
	t.Helper()
	var out struct {
		Wave    int `json:"wave"`
		Clinics []struct {
			ID           string `json:"id"`
			Availability []struct {
				Date      string `json:"date"`
				Product   string `json:"product"`
				Remaining int    `json:"remaining"`
			} `json:"availability"`
		} `json:"clinics"`
	}
	mustJSON(t, e.do("GET", "/v1/clinics?campaign=c2026&date="+d.String()+"&product="+product, tok, "", nil), 200, &out)
	for _, c := range out.Clinics {
		if c.ID != clinic {
			continue
		}
		for _, a := range c.Availability {
			if a.Date == d.String() && a.Product == product {
				return a.Remaining
			}
		}
	}
	t.Fatalf("clinic %s has no %s availability on %s", clinic, product, d)
	return 0
}

func TestClinicsFilters(t *testing.T) {
	e := newEnv(t, backends[0].dsn(t), nil)
	var out struct {
		Wave    int `json:"wave"`
		Clinics []struct {
			ID           string           `json:"id"`
			Region       string           `json:"region"`
			Availability []map[string]any `json:"availability"`
		} `json:"clinics"`
	}
	mustJSON(t, e.do("GET", "/v1/clinics?campaign=c2026&region=11", "", "", nil), 200, &out)
	if out.Wave != 1 || len(out.Clinics) != 2 || out.Clinics[0].ID != "C000001" || out.Clinics[1].ID != "C000003" {
		t.Fatalf("region 11: %+v", out)
	}
	if n := len(out.Clinics[0].Availability); n != 6 {
		t.Fatalf("C000001 availability rows = %d, want 3 dates × 2 products", n)
	}
	mustJSON(t, e.do("GET", "/v1/clinics?campaign=c2026&product=janssen&limit=5", "", "", nil), 200, &out)
	if len(out.Clinics) != 1 {
		t.Fatalf("janssen: %+v", out)
	}
	mustJSON(t, e.do("GET", "/v1/clinics?campaign=c2026&limit=1", "", "", nil), 200, &out)
	if len(out.Clinics) != 1 {
		t.Fatalf("limit=1: %+v", out)
	}
	mustJSON(t, e.do("GET", "/v1/clinics?campaign=c2026&date="+today.AddDays(30).String(), "", "", nil), 200, &out)
	if len(out.Clinics) != 0 {
		t.Fatalf("date with no supply: %+v", out)
	}
	if r := e.do("GET", "/v1/clinics?campaign=nope", "", "", nil); r.status != 404 {
		t.Fatalf("unknown campaign: %d", r.status)
	}
}

// TestBadInputWritesNothing drives each bad-input class and each refusal
// and checks the status, the stable code and that no row changed.
func TestBadInputWritesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		a := e.token(personA)
		ok := bookBody("C000001", vday, "pfizer")
		// A booking to reschedule and cancel against.
		var bk struct {
			Booking struct{ ID string } `json:"booking"`
		}
		mustJSON(t, e.book(e.token(personB), "b-1", bookBody("C000002", vday, "pfizer")), 201, &bk)
		bpath := "/v1/bookings/" + bk.Booking.ID
		b := e.token(personB)
		huge := `{"campaign_id":"` + strings.Repeat("x", httpapi.MaxBodyBytes) + `"}`

		tests := []struct {
			name   string
			method string
			path   string
			tok    string
			body   string
			hdr    map[string]string
			status int
			code   string
		}{
			{"no idempotency key", "POST", "/v1/bookings", a, ok, nil, 400, "invalid_request"},
			{"long idempotency key", "POST", "/v1/bookings", a, ok, map[string]string{"Idempotency-Key": strings.Repeat("k", 129)}, 400, "invalid_request"},
			{"wrong content type", "POST", "/v1/bookings", a, ok, map[string]string{"Idempotency-Key": "k", "Content-Type": "text/plain"}, 415, "unsupported_media_type"},
			{"no content type", "POST", "/v1/bookings", a, ok, map[string]string{"Idempotency-Key": "k", "Content-Type": ""}, 415, "unsupported_media_type"},
			{"body too large", "POST", "/v1/bookings", a, huge, map[string]string{"Idempotency-Key": "k"}, 413, "body_too_large"},
			{"unknown field", "POST", "/v1/bookings", a, `{"campaign_id":"c2026","clinic_id":"C000001","date":"` + vday.String() + `","product":"pfizer","person_id":"` + personB + `"}`, map[string]string{"Idempotency-Key": "k"}, 400, "invalid_request"},
			{"trailing data", "POST", "/v1/bookings", a, ok + `{}`, map[string]string{"Idempotency-Key": "k"}, 400, "invalid_request"},
			{"impossible date", "POST", "/v1/bookings", a, bookBody("C000001", booking.Date{Year: 2026, Month: 2, Day: 30}, "pfizer"), map[string]string{"Idempotency-Key": "k"}, 400, "invalid_request"},
			{"loose date", "POST", "/v1/bookings", a, strings.Replace(ok, vday.String(), "2026-8-12", 1), map[string]string{"Idempotency-Key": "k"}, 400, "invalid_request"},
			{"missing field", "POST", "/v1/bookings", a, `{"campaign_id":"c2026","clinic_id":"C000001","date":"` + vday.String() + `"}`, map[string]string{"Idempotency-Key": "k"}, 400, "invalid_request"},
			{"wrong type", "POST", "/v1/bookings", a, `{"campaign_id":1}`, map[string]string{"Idempotency-Key": "k"}, 400, "invalid_request"},
			{"not json", "POST", "/v1/bookings", a, `campaign=c2026`, map[string]string{"Idempotency-Key": "k"}, 400, "invalid_request"},
			{"array", "POST", "/v1/bookings", a, `[` + ok + `]`, map[string]string{"Idempotency-Key": "k"}, 400, "invalid_request"},
			{"date outside vaccination", "POST", "/v1/bookings", a, bookBody("C000001", today.AddDays(90), "pfizer"), map[string]string{"Idempotency-Key": "k"}, 400, "invalid_request"},
			{"unknown product", "POST", "/v1/bookings", a, bookBody("C000001", vday, "sputnik"), map[string]string{"Idempotency-Key": "k"}, 400, "invalid_request"},
			{"unknown campaign", "POST", "/v1/bookings", a, strings.Replace(ok, "c2026", "c1999", 1), map[string]string{"Idempotency-Key": "k"}, 404, "not_found"},
			{"no quota that day", "POST", "/v1/bookings", a, bookBody("C000001", today.AddDays(20), "pfizer"), map[string]string{"Idempotency-Key": "k"}, 409, "sold_out"},
			{"not your rotation day", "POST", "/v1/bookings", e.token(personC), ok, map[string]string{"Idempotency-Key": "k"}, 422, "not_your_rotation_day"},
			{"unknown person", "POST", "/v1/bookings", e.token(personUnknown), ok, map[string]string{"Idempotency-Key": "k"}, 403, "unknown_person"},
			{"no token", "POST", "/v1/bookings", "", ok, map[string]string{"Idempotency-Key": "k"}, 401, "unauthenticated"},
			{"unknown person lists", "GET", "/v1/bookings", e.token(personUnknown), "", nil, 403, "unknown_person"},
			{"unknown person reads", "GET", bpath, e.token(personUnknown), "", nil, 403, "unknown_person"},
			{"unknown person cancels", "DELETE", bpath, e.token(personUnknown), "", nil, 403, "unknown_person"},
			{"unknown person reschedules", "POST", bpath + "/reschedule", e.token(personUnknown), `{"clinic_id":"C000001","date":"` + vday.String() + `"}`, nil, 403, "unknown_person"},
			{"unknown person eligibility", "GET", "/v1/me/eligibility?campaign=c2026", e.token(personUnknown), "", nil, 403, "unknown_person"},
			{"reschedule unknown field", "POST", bpath + "/reschedule", b, `{"clinic_id":"C000001","date":"` + vday.String() + `","x":1}`, nil, 400, "invalid_request"},
			{"reschedule bad date", "POST", bpath + "/reschedule", b, `{"clinic_id":"C000001","date":"tomorrow"}`, nil, 400, "invalid_request"},
			{"reschedule wrong type", "POST", bpath + "/reschedule", b, `{"clinic_id":"C000001","date":"` + vday.String() + `"}`, map[string]string{"Content-Type": "application/xml"}, 415, "unsupported_media_type"},
			{"reschedule someone else's", "POST", bpath + "/reschedule", a, `{"clinic_id":"C000001","date":"` + vday.String() + `"}`, nil, 404, "not_found"},
			{"cancel someone else's", "DELETE", bpath, a, "", nil, 404, "not_found"},
			{"eligibility no campaign", "GET", "/v1/me/eligibility", a, "", nil, 400, "invalid_request"},
			{"eligibility unknown campaign", "GET", "/v1/me/eligibility?campaign=zzz", a, "", nil, 404, "not_found"},
			{"clinics no campaign", "GET", "/v1/clinics", "", "", nil, 400, "invalid_request"},
			{"clinics bad date", "GET", "/v1/clinics?campaign=c2026&date=2026-13-01", "", "", nil, 400, "invalid_request"},
			{"clinics bad limit", "GET", "/v1/clinics?campaign=c2026&limit=0", "", "", nil, 400, "invalid_request"},
			{"clinics huge limit", "GET", "/v1/clinics?campaign=c2026&limit=100000", "", "", nil, 400, "invalid_request"},
			{"unknown path", "GET", "/v1/nothing", "", "", nil, 404, "not_found"},
			{"wrong method", "PUT", "/v1/bookings", a, ok, nil, 405, "method_not_allowed"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := e.counts()
				r := e.do(tt.method, tt.path, tt.tok, tt.body, tt.hdr)
				if r.status != tt.status || r.code(t) != tt.code {
					t.Fatalf("%d %s, want %d %s", r.status, r.body, tt.status, tt.code)
				}
				if after := e.counts(); after != before {
					t.Fatalf("rows changed: before %+v after %+v", before, after)
				}
			})
		}
	})
}

// TestTokensRefused: forged, expired, wrong-issuer, alg:none and other
// kinds of bad tokens get 401 on every authenticated endpoint.
func TestTokensRefused(t *testing.T) {
	e := newEnv(t, backends[0].dsn(t), nil)
	iss, _ := e.idp.Issuer("pass")
	must := func(s string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// An impostor provider with the same name and issuer but its own keys.
	evil, err := idp.New(idp.Config{Now: func() time.Time { return testNow }, Providers: []idp.ProviderConfig{{Name: "pass"}}})
	if err != nil {
		t.Fatal(err)
	}
	valid := e.token(personA)
	parts := strings.Split(valid, ".")
	enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	pub, _ := e.idp.PublicSet(context.Background(), "pass")
	pubJSON, _ := json.Marshal(pub)
	hsHead := enc(map[string]string{"alg": "HS256", "typ": "JWT"})
	mac := hmac.New(sha256.New, pubJSON)
	mac.Write([]byte(hsHead + "." + parts[1]))

	tokens := map[string]string{
		"forged":         must(evil.Issue("pass", personA, births[personA], time.Hour)),
		"expired":        must(e.idp.Issue("pass", personA, births[personA], -time.Hour)),
		"not yet valid":  must(e.idp.IssueClaims("pass", map[string]any{"sub": personA, "nbf": testNow.Add(time.Hour), "exp": testNow.Add(2 * time.Hour)})),
		"wrong issuer":   must(e.idp.IssueClaims("pass", map[string]any{"sub": personA, "iss": "https://other.example", "exp": testNow.Add(time.Hour)})),
		"wrong audience": must(e.idp.IssueClaims("pass", map[string]any{"sub": personA, "aud": "not-yeyak", "exp": testNow.Add(time.Hour)})),
		"other provider": must(e.idp.IssueClaims("kakao", map[string]any{"sub": personA, "iss": iss, "exp": testNow.Add(time.Hour)})),
		"alg none":       enc(map[string]string{"alg": "none", "typ": "JWT"}) + "." + parts[1] + ".",
		"hs256 pub key":  hsHead + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)),
		"tampered":       parts[0] + "." + enc(map[string]any{"iss": iss, "aud": "yeyak", "sub": personB, "exp": testNow.Add(time.Hour).Unix()}) + "." + parts[2],
		"garbage":        "not-a-token",
		"basic scheme":   "",
	}
	endpoints := []struct{ method, path, body string }{
		{"GET", "/v1/me/eligibility?campaign=c2026", ""},
		{"POST", "/v1/bookings", bookBody("C000001", vday, "pfizer")},
		{"GET", "/v1/bookings", ""},
		{"GET", "/v1/bookings/x", ""},
		{"DELETE", "/v1/bookings/x", ""},
		{"POST", "/v1/bookings/x/reschedule", `{"clinic_id":"C000001","date":"` + vday.String() + `"}`},
	}
	before := e.counts()
	for name, tok := range tokens {
		for _, ep := range endpoints {
			hdr := map[string]string{"Idempotency-Key": "k-" + name, "Authorization": "Bearer " + tok}
			if name == "basic scheme" {
				hdr["Authorization"] = "Basic dXNlcjpwYXNz"
			}
			r := e.do(ep.method, ep.path, "", ep.body, hdr)
			if r.status != 401 || r.code(t) != "invalid_token" || r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s on %s %s: %d %s", name, ep.method, ep.path, r.status, r.body)
			}
		}
	}
	if after := e.counts(); after != before {
		t.Fatalf("refused tokens changed rows: %+v → %+v", before, after)
	}
	// The genuine token of the other provider works (several providers at once).
	tok := must(e.idp.Issue("kakao", personA, booking.Date{}, time.Hour))
	if r := e.do("GET", "/v1/bookings", tok, "", nil); r.status != 200 {
		t.Fatalf("kakao token: %d %s", r.status, r.body)
	}
}

// TestNoProxyBooking: B cannot see, change or cancel A's booking; the
// answers are byte-identical to those for a missing id.
func TestNoProxyBooking(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		a, b := e.token(personA), e.token(personB)
		var bk struct {
			Booking struct {
				ID       string `json:"id"`
				Status   string `json:"status"`
				ClinicID string `json:"clinic_id"`
			} `json:"booking"`
		}
		mustJSON(t, e.book(a, "a-1", bookBody("C000001", vday, "pfizer")), 201, &bk)
		id := bk.Booking.ID
		missing := booking.NewID()
		resched := `{"clinic_id":"C000003","date":"` + vday.String() + `"}`
		for _, ep := range []struct{ method, suffix, body string }{
			{"GET", "", ""}, {"DELETE", "", ""}, {"POST", "/reschedule", resched},
		} {
			theirs := e.do(ep.method, "/v1/bookings/"+id+ep.suffix, b, ep.body, nil)
			none := e.do(ep.method, "/v1/bookings/"+missing+ep.suffix, b, ep.body, nil)
			if theirs.status != 404 || !bytes.Equal(theirs.body, none.body) {
				t.Errorf("%s A's booking as B: %d %s; missing id: %d %s", ep.method, theirs.status, theirs.body, none.status, none.body)
			}
			if bytes.Contains(theirs.body, []byte("C000001")) {
				t.Errorf("A's data leaked to B: %s", theirs.body)
			}
		}
		var list struct {
			Bookings []any `json:"bookings"`
		}
		mustJSON(t, e.do("GET", "/v1/bookings", b, "", nil), 200, &list)
		if len(list.Bookings) != 0 {
			t.Fatalf("B sees bookings: %+v", list)
		}
		// A's booking is untouched.
		mustJSON(t, e.do("GET", "/v1/bookings/"+id, a, "", nil), 200, &bk)
		if bk.Booking.Status != "confirmed" || bk.Booking.ClinicID != "C000001" {
			t.Fatalf("A's booking changed: %+v", bk)
		}
		// The same Idempotency-Key from two people are two keys.
		if r := e.book(b, "a-1", bookBody("C000001", vday, "pfizer")); r.status != 201 {
			t.Fatalf("B with A's key: %d %s", r.status, r.body)
		}
	})
}

// blockingService holds Book until release is closed.
type blockingService struct {
	httpapi.Service
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (s *blockingService) Book(ctx context.Context, req booking.BookRequest) (*booking.Booking, error) {
	s.once.Do(func() { close(s.entered) })
	<-s.release
	return s.Service.Book(ctx, req)
}

func TestIdempotencyInProgress(t *testing.T) {
	bs := &blockingService{entered: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, backends[0].dsn(t), func(s httpapi.Service) httpapi.Service { bs.Service = s; return bs })
	a := e.token(personA)
	body := bookBody("C000001", vday, "pfizer")
	first := make(chan reply, 1)
	go func() { first <- e.book(a, "same", body) }()
	select {
	case <-bs.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("first request never reached Book")
	}
	r := e.book(a, "same", body)
	if r.status != 409 || r.code(t) != "idempotency_in_progress" || r.header.Get("Retry-After") == "" {
		t.Fatalf("concurrent same key: %d %s", r.status, r.body)
	}
	close(bs.release)
	if f := <-first; f.status != 201 {
		t.Fatalf("first: %d %s", f.status, f.body)
	}
	if r := e.book(a, "same", body); r.status != 201 || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("after completion: %d %s", r.status, r.body)
	}
}

// failingService fails Book with a plain (internal) error.
type failingService struct{ httpapi.Service }

func (failingService) Book(context.Context, booking.BookRequest) (*booking.Booking, error) {
	return nil, errFailing
}

var errFailing = &failError{}

type failError struct{}

func (*failError) Error() string { return "disk on fire at /var/lib/secret" }

func TestInternalErrorIsHiddenAndLogged(t *testing.T) {
	e := newEnv(t, backends[0].dsn(t), func(s httpapi.Service) httpapi.Service { return failingService{s} })
	a := e.token(personA)
	before := e.counts()
	r := e.book(a, "k", bookBody("C000001", vday, "pfizer"))
	if r.status != 500 || r.code(t) != "internal" || bytes.Contains(r.body, []byte("disk")) {
		t.Fatalf("internal error: %d %s", r.status, r.body)
	}
	if !strings.Contains(e.logs.String(), "disk on fire") {
		t.Fatal("the cause was not logged for the operator")
	}
	if strings.Contains(e.logs.String(), personA) {
		t.Fatal("raw person id logged")
	}
	if e.counts() != before {
		t.Fatal("a failed booking left rows (the idempotency key must be released)")
	}
}

type downPinger struct{}

func (downPinger) Ping(context.Context) error { return context.DeadlineExceeded }

func TestReadyzDown(t *testing.T) {
	e := newEnv(t, backends[0].dsn(t), nil)
	h, err := httpapi.NewServer(httpapi.Config{Service: e.svc, Verifier: nopVerifier{}, Idempotency: httpapi.NewMemoryIdempotency(), Snapshot: e.snap, Ready: downPinger{}})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	h.ServeHTTP(rec, mustRequest(t, "GET", "/readyz"))
	if rec.status != 503 || rec.h.Get("Retry-After") == "" {
		t.Fatalf("readyz with the database down: %d", rec.status)
	}
}

func TestOpenAPIDocumentsEveryCode(t *testing.T) {
	doc := loadDoc(t)
	enum := doc.Components.Schemas["ErrorCode"].Value.Enum
	documented := map[string]bool{}
	for _, v := range enum {
		documented[v.(string)] = true
	}
	for _, c := range httpapi.Codes() {
		if !documented[string(c)] {
			t.Errorf("error code %q is not in openapi.yaml's ErrorCode enum", c)
		}
		if !strings.Contains(doc.Info.Description, string(c)) {
			t.Errorf("error code %q is missing from the status table in openapi.yaml", c)
		}
	}
	if len(enum) != len(httpapi.Codes()) {
		t.Errorf("openapi.yaml documents %d codes, the API has %d", len(enum), len(httpapi.Codes()))
	}
}

func TestOpsHandler(t *testing.T) {
	mounted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("breakers " + r.URL.Path)) })
	h := httpapi.NewOpsHandler(httpapi.OpsConfig{Mounts: map[string]http.Handler{"/ops/breakers": mounted}})
	for _, tc := range []struct {
		path, want string
	}{
		{"/metrics", "go_goroutines"},
		{"/ops/breakers", "breakers /ops/breakers"},
		{"/ops/breakers/read/reset", "breakers /ops/breakers/read/reset"},
	} {
		rec := newRecorder()
		h.ServeHTTP(rec, mustRequest(t, "GET", tc.path))
		if rec.status != 200 || !strings.Contains(rec.body.String(), tc.want) {
			t.Errorf("GET %s: %d %.80s", tc.path, rec.status, rec.body.String())
		}
	}
}
