package httpapi_test

import (
	"context"
	"net/url"
	"testing"
)

// Seoul City Hall: Jongno Clinic is 0.4 km away, Gangnam Clinic about
// 8.4 km, Haeundae Clinic (Busan) 325 km.
const cityHall = "37.5665,126.9780"

type nearPage struct {
	Wave       int    `json:"wave"`
	NextCursor string `json:"next_cursor"`
	Clinics    []struct {
		ID           string   `json:"id"`
		DistanceKm   *float64 `json:"distance_km"`
		Availability []struct {
			Date      string `json:"date"`
			Product   string `json:"product"`
			Remaining int    `json:"remaining"`
		} `json:"availability"`
	} `json:"clinics"`
}

func TestClinicsNear(t *testing.T) {
	e := newEnv(t, backends[0].dsn(t), nil)
	var p nearPage
	mustJSON(t, e.do("GET", "/v1/clinics?campaign=c2026&near="+cityHall+"&radius_km=20", "", "", nil), 200, &p)
	if len(p.Clinics) != 2 || p.Clinics[0].ID != "C000001" || p.Clinics[1].ID != "C000003" || p.NextCursor != "" {
		t.Fatalf("near City Hall, 20 km: %+v", p)
	}
	if d0, d1 := *p.Clinics[0].DistanceKm, *p.Clinics[1].DistanceKm; !(d0 < 1 && d1 > 5 && d1 < 12) {
		t.Fatalf("distances %v %v", d0, d1)
	}
	// Paging: one clinic a page, nothing repeated, nothing lost.
	var p1, p2 nearPage
	mustJSON(t, e.do("GET", "/v1/clinics?campaign=c2026&near="+cityHall+"&radius_km=20&limit=1", "", "", nil), 200, &p1)
	if len(p1.Clinics) != 1 || p1.Clinics[0].ID != "C000001" || p1.NextCursor == "" {
		t.Fatalf("page 1: %+v", p1)
	}
	mustJSON(t, e.do("GET", "/v1/clinics?campaign=c2026&near="+cityHall+"&radius_km=20&limit=1&cursor="+url.QueryEscape(p1.NextCursor), "", "", nil), 200, &p2)
	if len(p2.Clinics) != 1 || p2.Clinics[0].ID != "C000003" || p2.NextCursor != "" {
		t.Fatalf("page 2: %+v", p2)
	}
	// Busan is in range of a 400 km search only if the radius allowed it:
	// it does not (100 km at most).
	for _, bad := range []string{
		"near=37.5", "near=abc,def", "near=91,0", "near=37.5,181", "near=NaN,1",
		"near=" + cityHall + "&radius_km=0", "near=" + cityHall + "&radius_km=400", "near=" + cityHall + "&radius_km=x",
		"near=" + cityHall + "&cursor=" + url.QueryEscape(p1.NextCursor+"x"),
		"near=" + cityHall + "&limit=101",
		"cursor=" + url.QueryEscape(p1.NextCursor), "radius_km=5",
	} {
		r := e.do("GET", "/v1/clinics?campaign=c2026&"+bad, "", "", nil)
		if r.status != 400 || r.code(t) != "invalid_request" {
			t.Errorf("%s: %d %s, want 400 invalid_request", bad, r.status, r.body)
		}
	}
	// Only clinics with a dose left for the wave: sell out Jongno's
	// wave-1 doses on every date and it drops out of the search.
	// (SQLite: versions are max(version)+1; the snapshot follows them.)
	q := "UPDATE quotas SET booked = capacity, version = (SELECT MAX(version) + 1 FROM quotas) WHERE clinic_id = 'C000001' AND wave = 1 AND dose = 1"
	if _, err := e.db.DB().Exec(q); err != nil {
		t.Fatal(err)
	}
	if err := e.snap.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustJSON(t, e.do("GET", "/v1/clinics?campaign=c2026&near="+cityHall+"&radius_km=20", "", "", nil), 200, &p)
	if len(p.Clinics) != 1 || p.Clinics[0].ID != "C000003" {
		t.Fatalf("after Jongno sold out: %+v", p)
	}
}

// TestAssign: POST /v1/bookings:assign books the nearest clinic with a
// dose for the caller's wave, passes over one sold out since the search,
// is idempotent, and answers 409 sold_out (writing nothing) only when
// nothing within the radius has stock.
func TestAssign(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		body := `{"campaign_id":"c2026","near":{"lat":37.5665,"lon":126.978},"product":"pfizer","dates":["` + vday.String() + `"]}`
		assign := func(person, key, body string) reply {
			t.Helper()
			return e.do("POST", "/v1/bookings:assign", e.token(person), body, map[string]string{"Idempotency-Key": key})
		}
		clinicOf := func(r reply) string {
			t.Helper()
			var bk struct {
				Booking struct {
					ClinicID string `json:"clinic_id"`
					Date     string `json:"date"`
					Dose     int    `json:"dose"`
				} `json:"booking"`
			}
			mustJSON(t, r, 201, &bk)
			if bk.Booking.Date != vday.String() || bk.Booking.Dose != 1 {
				t.Fatalf("assigned %+v", bk.Booking)
			}
			return bk.Booking.ClinicID
		}
		// Two wave-1 doses per clinic and date: A and B get Jongno.
		ra := assign(personA, "a1", body)
		if got := clinicOf(ra); got != "C000001" {
			t.Fatalf("A assigned %s, want the nearest C000001", got)
		}
		if r := assign(personA, "a1", body); r.status != 201 || string(r.body) != string(ra.body) || r.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay: %d %s", r.status, r.body)
		}
		if r := e.book(e.token(personA), "a1", bookBody("C000001", vday, "pfizer")); r.status != 422 || r.code(t) != "idempotency_key_reused" {
			t.Fatalf("the assign key reused on POST /v1/bookings: %d %s", r.status, r.body)
		}
		if got := clinicOf(assign(personB, "b1", body)); got != "C000001" {
			t.Fatalf("B assigned %s, want C000001", got)
		}
		// Nothing near Jeju: 409 sold_out, nothing written, the key free.
		before := e.counts()
		far := `{"campaign_id":"c2026","near":{"lat":33.4996,"lon":126.5312},"radius_km":10}`
		if r := assign(personD, "d1", far); r.status != 409 || r.code(t) != "sold_out" {
			t.Fatalf("D near Jeju: %d %s, want 409 sold_out", r.status, r.body)
		}
		if after := e.counts(); after != before {
			t.Fatalf("refused assign wrote: %+v → %+v", before, after)
		}
		// Jongno is sold out for wave 1 on that date — even if the snapshot
		// has not seen it yet, D goes to the next nearest, Gangnam.
		if got := clinicOf(assign(personD, "d2", body)); got != "C000003" {
			t.Fatalf("D assigned %s, want C000003", got)
		}
		before = e.counts()
		for _, tc := range []struct{ name, body string }{
			{"no near", `{"campaign_id":"c2026"}`},
			{"near without lon", `{"campaign_id":"c2026","near":{"lat":37.5}}`},
			{"off the globe", `{"campaign_id":"c2026","near":{"lat":100,"lon":0}}`},
			{"radius too large", `{"campaign_id":"c2026","near":{"lat":37.5,"lon":127},"radius_km":500}`},
			{"bad date", `{"campaign_id":"c2026","near":{"lat":37.5,"lon":127},"dates":["tomorrow"]}`},
			{"unknown field", `{"campaign_id":"c2026","near":{"lat":37.5,"lon":127},"clinic_id":"C000001"}`},
		} {
			if r := assign(personC, "c-"+tc.name[:2], tc.body); r.status != 400 || r.code(t) != "invalid_request" {
				t.Errorf("%s: %d %s, want 400 invalid_request", tc.name, r.status, r.body)
			}
		}
		if after := e.counts(); after != before {
			t.Fatalf("bad assign input wrote: %+v → %+v", before, after)
		}
	})
}
