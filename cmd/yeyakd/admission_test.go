package main

import (
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
)

type observed struct {
	write, failed bool
	latency       time.Duration
}

type observerRec struct{ got []observed }

func (o *observerRec) Observe(d time.Duration, failed bool) {
	o.got = append(o.got, observed{latency: d, failed: failed})
}

func (o *observerRec) ObserveWrite(d time.Duration, failed bool) {
	o.got = append(o.got, observed{write: true, latency: d, failed: failed})
}

// TestObserveAdmission: the booking writes reach the law as writes (judged
// on their own), the reads as reads, 5xx as failures, and an answer that
// the registry is unavailable not at all.
func TestObserveAdmission(t *testing.T) {
	rec := &observerRec{}
	obs := observeAdmission(rec)
	ms := time.Millisecond
	obs("POST /v1/bookings", 201, "", 40*ms)
	obs("POST /v1/bookings:assign", 201, "", 41*ms)
	obs("DELETE /v1/bookings/{id}", 200, "", 42*ms)
	obs("POST /v1/bookings/{id}/reschedule", 500, booking.EINTERNAL, 43*ms)
	obs("GET /v1/clinics", 200, "", 1*ms)
	obs("GET /v1/me/eligibility", 503, booking.EUNAVAILABLE, 2*ms)
	obs("GET /v1/me/eligibility", 503, booking.EREGISTRYDOWN, 800*ms)
	obs("POST /v1/bookings", 503, booking.EREGISTRYDOWN, 800*ms)
	want := []observed{
		{write: true, latency: 40 * ms}, {write: true, latency: 41 * ms}, {write: true, latency: 42 * ms},
		{write: true, failed: true, latency: 43 * ms},
		{latency: 1 * ms}, {failed: true, latency: 2 * ms},
	}
	if len(rec.got) != len(want) {
		t.Fatalf("observed %+v, want %+v", rec.got, want)
	}
	for i := range want {
		if rec.got[i] != want[i] {
			t.Errorf("observation %d: %+v, want %+v", i, rec.got[i], want[i])
		}
	}
}
