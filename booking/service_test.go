package booking_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
)

// clock is a settable Now for the Service.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// fixture is a Service over the in-memory store with the 2021 campaign,
// three clinics and the clock inside digit 9's window (2021-08-09 21:00).
type fixture struct {
	svc    *booking.Service
	store  *memStore
	people *people
	clock  *clock
	c      *booking.Campaign
	logs   *bytes.Buffer
}

var (
	vaxDate   = d("2021-09-01")
	dose2Date = d("2021-10-13") // vaxDate + 42 days
)

func newFixture(t *testing.T, policy booking.RegistryPolicy) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{store: newMemStore(), clock: &clock{t: kst("2021-08-09 21:00")}, c: booking.Campaign2021(), logs: &bytes.Buffer{}}
	f.c.RegistryPolicy = policy
	f.people = &people{persons: map[string]booking.Person{
		"p9":       {ID: "p9", BirthDate: older9},
		"p9b":      {ID: "p9b", BirthDate: younger9},
		"p0":       {ID: "p0", BirthDate: younger0},
		"excluded": {ID: "excluded", BirthDate: older9, Excluded: true},
		"done":     {ID: "done", BirthDate: older9, DosesReceived: 2},
		"onedose":  {ID: "onedose", BirthDate: d("1980-03-19"), DosesReceived: 1},
		"old":      {ID: "old", BirthDate: d("1960-01-09")},
	}}
	if err := f.store.PutCampaign(ctx, f.c); err != nil {
		t.Fatal(err)
	}
	if err := f.store.PutClinics(ctx, []booking.Clinic{
		{ID: "c1", Name: "One", Region: "11-110", Products: []string{"pfizer"}},
		{ID: "c2", Name: "Two", Region: "11-140", Products: []string{"pfizer", "moderna"}},
		{ID: "c3", Name: "Three", Region: "26-110", Products: []string{"moderna"}},
	}); err != nil {
		t.Fatal(err)
	}
	for _, clinic := range []string{"c1", "c2"} {
		qs := booking.SplitSupply(f.c, booking.Supply{CampaignID: f.c.ID, ClinicID: clinic, Date: vaxDate, Product: "pfizer", Dose: 1, Doses: 110})
		qs = append(qs, booking.SplitSupply(f.c, booking.Supply{CampaignID: f.c.ID, ClinicID: clinic, Date: vaxDate, Product: "pfizer", Dose: 2, Doses: 20})...)
		// Dose 2 of a dose 1 on vaxDate: 42 days later (10-13), 3 days' tolerance.
		qs = append(qs, booking.SplitSupply(f.c, booking.Supply{CampaignID: f.c.ID, ClinicID: clinic, Date: dose2Date, Product: "pfizer", Dose: 2, Doses: 200})...)
		if err := f.store.SetQuotas(ctx, qs); err != nil {
			t.Fatal(err)
		}
	}
	svc, err := booking.NewService(booking.ServiceConfig{
		Store: f.store, People: f.people, Now: f.clock.Now,
		Logger: slog.New(slog.NewJSONHandler(f.logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	t.Cleanup(func() {
		// No personal data in logs: person ids never appear.
		for id := range f.people.persons {
			if strings.Contains(f.logs.String(), `"`+id+`"`) {
				t.Errorf("logs contain person id %q:\n%s", id, f.logs)
			}
		}
	})
	return f
}

func (f *fixture) req(person string) booking.BookRequest {
	return booking.BookRequest{PersonID: person, CampaignID: f.c.ID, ClinicID: "c1", Date: vaxDate, Product: "pfizer", Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
}

func (f *fixture) booked(clinic string, wave int) int {
	return f.store.quota(quotaKey{f.c.ID, clinic, vaxDate, "pfizer", 1, wave}).Booked
}

func payload(t *testing.T, e booking.Event) booking.EventPayload {
	t.Helper()
	var p booking.EventPayload
	if err := json.Unmarshal(e.Payload, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantCode(t *testing.T, err error, code booking.Code) {
	t.Helper()
	if got := booking.ErrorCode(err); got != code {
		t.Fatalf("error = %v (code %q), want %q", err, got, code)
	}
}

func TestNewServiceNeedsStoreAndPeople(t *testing.T) {
	if _, err := booking.NewService(booking.ServiceConfig{People: &people{}}); err == nil {
		t.Error("no Store: want error")
	}
	if _, err := booking.NewService(booking.ServiceConfig{Store: newMemStore()}); err == nil {
		t.Error("no People: want error")
	}
}

func TestBook(t *testing.T) {
	f := newFixture(t, booking.FailClosed)
	ctx := context.Background()
	b, err := f.svc.Book(ctx, f.req("p9"))
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != booking.StatusConfirmed || b.Wave != 1 || b.Dose != 1 || b.PersonID != "p9" || b.ClinicID != "c1" || b.ID == "" {
		t.Errorf("booking = %+v", b)
	}
	if f.booked("c1", 1) != 1 {
		t.Errorf("wave 1 booked = %d, want 1", f.booked("c1", 1))
	}
	// Dose 2 is reserved with dose 1: 42 days later at the same clinic,
	// from the dose-2 pool, the two linked; one event each.
	evs := f.store.allEvents()
	if len(evs) != 2 || evs[0].Type != booking.EventBookingConfirmed || evs[0].Key != "p9" || evs[1].Type != booking.EventBookingConfirmed || evs[1].Key != "p9" {
		t.Fatalf("events = %+v", evs)
	}
	p := payload(t, evs[0])
	if p.Booking.ID != b.ID || p.Booking.Status != booking.StatusConfirmed || p.Booking.Wave != 1 || p.EventID != evs[0].ID || p.Booking.LinkedID != b.LinkedID || b.LinkedID == "" {
		t.Errorf("payload = %+v", p)
	}
	p2 := payload(t, evs[1])
	if p2.Booking.ID != b.LinkedID || p2.Booking.LinkedID != b.ID || p2.Booking.Dose != 2 || p2.Booking.Date != dose2Date ||
		p2.Booking.ClinicID != "c1" || p2.Booking.Wave != booking.OpenWave || p2.Booking.Status != booking.StatusConfirmed {
		t.Errorf("dose 2 payload = %+v", p2)
	}
	if n := f.store.quota(quotaKey{f.c.ID, "c1", dose2Date, "pfizer", 2, booking.OpenWave}).Booked; n != 1 {
		t.Errorf("dose-2 pool on %s booked %d, want 1", dose2Date, n)
	}
	if evs[0].Headers[booking.HeaderTraceparent] == "" {
		t.Error("traceparent not carried to the event")
	}
	got, err := f.svc.Booking(ctx, "p9", b.ID)
	if err != nil || got.ID != b.ID {
		t.Errorf("Booking = %+v, %v", got, err)
	}
	list, err := f.svc.Bookings(ctx, "p9")
	if err != nil || len(list) != 2 {
		t.Errorf("Bookings = %v, %v", list, err)
	}

	// A person with one dose books dose 2, in their rotation window, from
	// the dose-2 pool.
	b2, err := f.svc.Book(ctx, f.req("onedose"))
	if err != nil {
		t.Fatal(err)
	}
	if b2.Dose != 2 || b2.Wave != booking.OpenWave {
		t.Errorf("booking = %+v, want dose 2 from the open wave", b2)
	}
	if n := f.store.quota(quotaKey{f.c.ID, "c1", vaxDate, "pfizer", 2, booking.OpenWave}).Booked; n != 1 {
		t.Errorf("dose-2 pool booked %d, want 1", n)
	}
}

func TestBookRefusals(t *testing.T) {
	f := newFixture(t, booking.FailClosed)
	ctx := context.Background()
	if _, err := f.svc.Book(ctx, f.req("p9b")); err != nil {
		t.Fatal(err)
	}
	with := func(person string, change func(*booking.BookRequest)) booking.BookRequest {
		r := f.req(person)
		if change != nil {
			change(&r)
		}
		return r
	}
	tests := []struct {
		name string
		req  booking.BookRequest
		want booking.Code
	}{
		{"no person", with("", nil), booking.EINVALID},
		{"no clinic", with("p9", func(r *booking.BookRequest) { r.ClinicID = "" }), booking.EINVALID},
		{"no date", with("p9", func(r *booking.BookRequest) { r.Date = booking.Date{} }), booking.EINVALID},
		{"unknown product", with("p9", func(r *booking.BookRequest) { r.Product = "astra" }), booking.EINVALID},
		{"date before vaccination", with("p9", func(r *booking.BookRequest) { r.Date = d("2021-08-25") }), booking.EINVALID},
		{"date after vaccination", with("p9", func(r *booking.BookRequest) { r.Date = d("2021-10-03") }), booking.EINVALID},
		{"unknown clinic", with("p9", func(r *booking.BookRequest) { r.ClinicID = "c404" }), booking.EINVALID},
		{"clinic without the product", with("p9", func(r *booking.BookRequest) { r.ClinicID = "c3" }), booking.EINVALID},
		{"unknown campaign", with("p9", func(r *booking.BookRequest) { r.CampaignID = "nope" }), booking.ENOTFOUND},
		{"unknown person", with("ghost", nil), booking.EUNKNOWNPERSON},
		{"excluded", with("excluded", nil), booking.ENOTELIGIBLE},
		{"all doses received", with("done", nil), booking.ENOTELIGIBLE},
		{"not in cohort", with("old", nil), booking.ENOTINCOHORT},
		{"not their day", with("p0", nil), booking.ENOTYOURDAY},
		{"already booked", with("p9b", nil), booking.EALREADYBOOKED},
		{"no quota at that clinic and product", with("p9", func(r *booking.BookRequest) { r.ClinicID, r.Product = "c2", "moderna" }), booking.ESOLDOUT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.store.allEvents())
			_, err := f.svc.Book(ctx, tt.req)
			wantCode(t, err, tt.want)
			if n := len(f.store.allEvents()); n != before {
				t.Errorf("a refused booking wrote %d events", n-before)
			}
		})
	}

	// Refusals outside the rotation hours carry when to come back.
	f.clock.Set(kst("2021-08-09 19:00"))
	_, err := f.svc.Book(ctx, f.req("p9"))
	wantCode(t, err, booking.EOUTSIDECAMPAIGN)
	if !strings.Contains(booking.ErrorMessage(err), "2021-08-09T20:00:00+09:00") {
		t.Errorf("message %q does not say when booking opens", booking.ErrorMessage(err))
	}
}

func TestBookSoldOut(t *testing.T) {
	f := newFixture(t, booking.FailClosed)
	ctx := context.Background()
	// Wave 1 at c1 holds 10 (110 doses over 11 waves); take them all.
	q := f.store.quota(quotaKey{f.c.ID, "c1", vaxDate, "pfizer", 1, 1})
	for i := range q.Capacity {
		id := "fill" + string(rune('a'+i))
		f.people.persons[id] = booking.Person{ID: id, BirthDate: older9}
		if _, err := f.svc.Book(ctx, f.req(id)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.svc.Book(ctx, f.req("p9"))
	wantCode(t, err, booking.ESOLDOUT)
	// Other waves keep their share: the next digit books on the 10th.
	f.clock.Set(kst("2021-08-10 21:00"))
	if _, err := f.svc.Book(ctx, f.req("p0")); err != nil {
		t.Fatalf("wave 2 should be untouched: %v", err)
	}
}

func TestRegistryDownPolicy(t *testing.T) {
	ctx := context.Background()
	t.Run("fail closed", func(t *testing.T) {
		f := newFixture(t, booking.FailClosed)
		f.people.setDown(true)
		r := f.req("p9")
		r.BirthDate = older9
		_, err := f.svc.Book(ctx, r)
		wantCode(t, err, booking.EREGISTRYDOWN)
		_, err = f.svc.Eligibility(ctx, "p9", f.c.ID, older9)
		wantCode(t, err, booking.EREGISTRYDOWN)
		if len(f.store.allEvents()) != 0 {
			t.Error("fail closed wrote events")
		}
	})
	t.Run("default policy is fail closed", func(t *testing.T) {
		f := newFixture(t, "")
		f.people.setDown(true)
		r := f.req("p9")
		r.BirthDate = older9
		_, err := f.svc.Book(ctx, r)
		wantCode(t, err, booking.EREGISTRYDOWN)
	})
	t.Run("provisional with a token birth date", func(t *testing.T) {
		f := newFixture(t, booking.Provisional)
		f.people.setDown(true)
		r := f.req("p9")
		r.BirthDate = older9
		dec, err := f.svc.Eligibility(ctx, "p9", f.c.ID, older9)
		if err != nil || !dec.OK || !dec.Provisional {
			t.Errorf("Eligibility = %+v, %v; want OK and provisional", dec, err)
		}
		b, err := f.svc.Book(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if b.Status != booking.StatusProvisional || b.Wave != 1 {
			t.Errorf("booking = %+v, want provisional from wave 1", b)
		}
		evs := f.store.allEvents()
		if len(evs) != 2 {
			t.Fatalf("events = %+v, want dose 1 and dose 2", evs)
		}
		for _, e := range evs {
			if e.Type != booking.EventBookingProvisional || payload(t, e).Booking.Status != booking.StatusProvisional {
				t.Errorf("event = %s %s", e.Type, e.Payload)
			}
		}
	})
	t.Run("provisional without a token birth date", func(t *testing.T) {
		f := newFixture(t, booking.Provisional)
		f.people.setDown(true)
		_, err := f.svc.Book(ctx, f.req("p9"))
		wantCode(t, err, booking.EREGISTRYDOWN)
	})
	t.Run("provisional still applies the rotation to the token date", func(t *testing.T) {
		f := newFixture(t, booking.Provisional)
		f.people.setDown(true)
		r := f.req("p0")
		r.BirthDate = younger0
		_, err := f.svc.Book(ctx, r)
		wantCode(t, err, booking.ENOTYOURDAY)
	})
	t.Run("registry up: the registry's birth date wins over the token", func(t *testing.T) {
		f := newFixture(t, booking.Provisional)
		r := f.req("p0")
		r.BirthDate = older9 // a token claiming digit 9
		_, err := f.svc.Book(ctx, r)
		wantCode(t, err, booking.ENOTYOURDAY)
	})
}

func TestEligibility(t *testing.T) {
	f := newFixture(t, booking.FailClosed)
	ctx := context.Background()
	tests := []struct {
		person string
		ok     bool
		reason booking.Code
	}{
		{"p9", true, ""},
		{"p0", false, booking.ENOTYOURDAY},
		{"excluded", false, booking.ENOTELIGIBLE},
		{"done", false, booking.ENOTELIGIBLE},
		{"old", false, booking.ENOTINCOHORT},
	}
	for _, tt := range tests {
		dec, err := f.svc.Eligibility(ctx, tt.person, f.c.ID, booking.Date{})
		if err != nil || dec.OK != tt.ok || dec.Reason != tt.reason || dec.Provisional {
			t.Errorf("Eligibility(%s) = %+v, %v; want ok=%v reason=%q", tt.person, dec, err, tt.ok, tt.reason)
		}
	}
	_, err := f.svc.Eligibility(ctx, "ghost", f.c.ID, booking.Date{})
	wantCode(t, err, booking.EUNKNOWNPERSON)
	_, err = f.svc.Eligibility(ctx, "p9", "nope", booking.Date{})
	wantCode(t, err, booking.ENOTFOUND)
	_, err = f.svc.Eligibility(ctx, "", f.c.ID, booking.Date{})
	wantCode(t, err, booking.EINVALID)
}

func TestCancel(t *testing.T) {
	f := newFixture(t, booking.FailClosed)
	ctx := context.Background()
	b, err := f.svc.Book(ctx, f.req("p9"))
	if err != nil {
		t.Fatal(err)
	}

	// Someone else's booking does not exist for them.
	_, err = f.svc.Cancel(ctx, "p0", b.ID, "")
	wantCode(t, err, booking.ENOTFOUND)
	_, err = f.svc.Booking(ctx, "p0", b.ID)
	wantCode(t, err, booking.ENOTFOUND)

	// Outside one's own window during the rotation: not allowed.
	f.clock.Set(kst("2021-08-10 21:00"))
	_, err = f.svc.Cancel(ctx, "p9", b.ID, "")
	wantCode(t, err, booking.ECHANGENOTALLOWED)

	f.clock.Set(kst("2021-08-10 17:00"))
	got, err := f.svc.Cancel(ctx, "p9", b.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != booking.StatusCancelled || got.CancelReason != "person" {
		t.Errorf("cancelled = %+v", got)
	}
	if f.booked("c1", 1) != 0 {
		t.Errorf("dose not returned to wave 1: booked %d", f.booked("c1", 1))
	}
	evs := f.store.allEvents()
	last := evs[len(evs)-2]
	if last.Type != booking.EventBookingCancelled || payload(t, last).Reason != "person" || payload(t, last).Booking.Status != booking.StatusCancelled {
		t.Errorf("event = %s %s", last.Type, last.Payload)
	}
	// Its dose 2 goes with it.
	d2 := evs[len(evs)-1]
	if p := payload(t, d2); d2.Type != booking.EventBookingCancelled || p.Reason != booking.ReasonDose1Cancelled || p.Booking.ID != b.LinkedID || p.Booking.Status != booking.StatusCancelled {
		t.Errorf("dose 2 event = %s %s", d2.Type, d2.Payload)
	}
	if n := f.store.quota(quotaKey{f.c.ID, "c1", dose2Date, "pfizer", 2, booking.OpenWave}).Booked; n != 0 {
		t.Errorf("dose 2 not returned: pool booked %d", n)
	}
	_, err = f.svc.Cancel(ctx, "p9", b.ID, "")
	wantCode(t, err, booking.EALREADYCANCELLED)
}

func TestCancelWhileRegistryDown(t *testing.T) {
	f := newFixture(t, booking.FailClosed)
	ctx := context.Background()
	b, err := f.svc.Book(ctx, f.req("p9"))
	if err != nil {
		t.Fatal(err)
	}
	f.people.setDown(true)
	// The rotation rule needs the birth date the registry cannot give.
	_, err = f.svc.Cancel(ctx, "p9", b.ID, "")
	wantCode(t, err, booking.EREGISTRYDOWN)
	// The open phase does not.
	f.clock.Set(kst("2021-09-01 10:00"))
	if _, err := f.svc.Cancel(ctx, "p9", b.ID, ""); err != nil {
		t.Fatal(err)
	}
}

func TestReschedule(t *testing.T) {
	f := newFixture(t, booking.FailClosed)
	ctx := context.Background()
	b, err := f.svc.Book(ctx, f.req("p9"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Reschedule(ctx, "p0", b.ID, "c2", vaxDate, "")
	wantCode(t, err, booking.ENOTFOUND)
	_, err = f.svc.Reschedule(ctx, "p9", b.ID, "c3", vaxDate, "")
	wantCode(t, err, booking.EINVALID) // c3 has no pfizer
	_, err = f.svc.Reschedule(ctx, "p9", b.ID, "c2", d("2021-10-30"), "")
	wantCode(t, err, booking.EINVALID)

	// In the own window: same wave, other clinic.
	moved, err := f.svc.Reschedule(ctx, "p9", b.ID, "c2", vaxDate, "tp")
	if err != nil {
		t.Fatal(err)
	}
	if moved.ID != b.ID || moved.ClinicID != "c2" || moved.Wave != 1 {
		t.Errorf("moved = %+v", moved)
	}
	if f.booked("c1", 1) != 0 || f.booked("c2", 1) != 1 {
		t.Errorf("c1 wave 1 booked %d, c2 wave 1 booked %d; want 0 and 1", f.booked("c1", 1), f.booked("c2", 1))
	}
	evs := f.store.allEvents()
	last := evs[len(evs)-2]
	p := payload(t, last)
	if last.Type != booking.EventBookingRescheduled || p.Previous == nil || p.Previous.ClinicID != "c1" || p.Previous.Date != vaxDate || p.Booking.ClinicID != "c2" {
		t.Errorf("event = %s %s", last.Type, last.Payload)
	}
	// Dose 2 moved with it, to the new clinic.
	d2 := evs[len(evs)-1]
	if p := payload(t, d2); d2.Type != booking.EventBookingRescheduled || p.Booking.ID != b.LinkedID || p.Booking.ClinicID != "c2" ||
		p.Booking.Date != dose2Date || p.Previous == nil || p.Previous.ClinicID != "c1" {
		t.Errorf("dose 2 event = %s %s", d2.Type, d2.Payload)
	}

	// Moving to where it already is changes nothing.
	n := len(f.store.allEvents())
	same, err := f.svc.Reschedule(ctx, "p9", b.ID, "c2", vaxDate, "")
	if err != nil || same.ClinicID != "c2" || len(f.store.allEvents()) != n {
		t.Errorf("no-op reschedule = %+v, %v, %d new events", same, err, len(f.store.allEvents())-n)
	}

	// Not in another digit's window.
	f.clock.Set(kst("2021-08-11 21:00"))
	_, err = f.svc.Reschedule(ctx, "p9", b.ID, "c1", vaxDate, "")
	wantCode(t, err, booking.ECHANGENOTALLOWED)

	// In the open phase the new dose comes from the open wave.
	f.clock.Set(kst("2021-09-01 10:00"))
	moved, err = f.svc.Reschedule(ctx, "p9", b.ID, "c1", vaxDate, "")
	if err != nil {
		t.Fatal(err)
	}
	if moved.Wave != booking.OpenWave || f.booked("c2", 1) != 0 || f.booked("c1", booking.OpenWave) != 1 {
		t.Errorf("moved = %+v; c2 wave 1 booked %d, c1 open wave booked %d", moved, f.booked("c2", 1), f.booked("c1", booking.OpenWave))
	}
}

func TestRescheduleSoldOutChangesNothing(t *testing.T) {
	f := newFixture(t, booking.FailClosed)
	ctx := context.Background()
	b, err := f.svc.Book(ctx, f.req("p9"))
	if err != nil {
		t.Fatal(err)
	}
	// c2 has no supply on another date.
	other := vaxDate.AddDays(1)
	n := len(f.store.allEvents())
	_, err = f.svc.Reschedule(ctx, "p9", b.ID, "c2", other, "")
	wantCode(t, err, booking.ESOLDOUT)
	got, _ := f.svc.Booking(ctx, "p9", b.ID)
	if got.ClinicID != "c1" || got.Date != vaxDate || f.booked("c1", 1) != 1 || len(f.store.allEvents()) != n {
		t.Errorf("after failed reschedule: %+v, c1 wave 1 booked %d, %d new events", got, f.booked("c1", 1), len(f.store.allEvents())-n)
	}
}

func TestProvisionalLifecycle(t *testing.T) {
	f := newFixture(t, booking.Provisional)
	ctx := context.Background()
	f.people.setDown(true)
	r1, r2 := f.req("p9"), f.req("p9b")
	r1.BirthDate, r2.BirthDate = older9, younger9
	b1, err := f.svc.Book(ctx, r1)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := f.svc.Book(ctx, r2)
	if err != nil {
		t.Fatal(err)
	}
	f.people.setDown(false)

	got, err := f.svc.ConfirmProvisional(ctx, b1.ID)
	if err != nil || got.Status != booking.StatusConfirmed {
		t.Fatalf("ConfirmProvisional = %+v, %v", got, err)
	}
	evs := f.store.allEvents()
	if last := evs[len(evs)-1]; last.Type != booking.EventBookingConfirmed {
		t.Errorf("event %s, want %s", last.Type, booking.EventBookingConfirmed)
	}
	// Idempotent for the consumer's redeliveries.
	n := len(f.store.allEvents())
	if got, err := f.svc.ConfirmProvisional(ctx, b1.ID); err != nil || got.Status != booking.StatusConfirmed || len(f.store.allEvents()) != n {
		t.Errorf("second ConfirmProvisional = %+v, %v", got, err)
	}
	_, err = f.svc.CancelProvisional(ctx, b1.ID, "")
	wantCode(t, err, booking.ECONFLICT)

	before := f.booked("c1", 1)
	got, err = f.svc.CancelProvisional(ctx, b2.ID, "")
	if err != nil || got.Status != booking.StatusCancelled || got.CancelReason != "ineligible" {
		t.Fatalf("CancelProvisional = %+v, %v", got, err)
	}
	if f.booked("c1", 1) != before-1 {
		t.Errorf("dose not freed: booked %d, was %d", f.booked("c1", 1), before)
	}
	evs = f.store.allEvents()
	if last := evs[len(evs)-2]; last.Type != booking.EventBookingCancelled || payload(t, last).Reason != "ineligible" || payload(t, last).Booking.ID != b2.ID {
		t.Errorf("event %s %s", last.Type, last.Payload)
	}
	if last := evs[len(evs)-1]; last.Type != booking.EventBookingCancelled || payload(t, last).Reason != booking.ReasonDose1Cancelled || payload(t, last).Booking.ID != b2.LinkedID {
		t.Errorf("dose 2 event %s %s", last.Type, last.Payload)
	}
	if got, err := f.svc.CancelProvisional(ctx, b2.ID, ""); err != nil || got.Status != booking.StatusCancelled {
		t.Errorf("second CancelProvisional = %+v, %v", got, err)
	}
	_, err = f.svc.ConfirmProvisional(ctx, b2.ID)
	wantCode(t, err, booking.EALREADYCANCELLED)
	_, err = f.svc.ConfirmProvisional(ctx, "nope")
	wantCode(t, err, booking.ENOTFOUND)
}

func TestCampaigns(t *testing.T) {
	f := newFixture(t, booking.FailClosed)
	ctx := context.Background()
	cs, err := f.svc.Campaigns(ctx)
	if err != nil || len(cs) != 1 || cs[0].ID != f.c.ID {
		t.Errorf("Campaigns = %v, %v", cs, err)
	}
	_, err = f.svc.Campaign(ctx, "nope")
	wantCode(t, err, booking.ENOTFOUND)
	_, err = f.svc.Campaign(ctx, "")
	wantCode(t, err, booking.EINVALID)
}

// Changing outside one's window (a ChangeOutsideWindow rotation) after the
// booking's wave has closed draws the new dose from the open wave, where
// the closed wave's doses rolled over.
func TestRescheduleAfterTheWaveClosed(t *testing.T) {
	f := newFixture(t, booking.FailClosed)
	f.c.Phases[0].ChangeOutsideWindow = true
	ctx := context.Background()
	b, err := f.svc.Book(ctx, f.req("p9"))
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Set(kst("2021-08-09 23:00")) // p9's own window: wave 1
	moved, err := f.svc.Reschedule(ctx, "p9", b.ID, "c2", vaxDate, "")
	if err != nil || moved.Wave != 1 {
		t.Fatalf("inside the window: %+v, %v", moved, err)
	}
	f.clock.Set(kst("2021-08-11 21:00")) // digit 1's day; wave 1 closed on the 10th at 18:00
	moved, err = f.svc.Reschedule(ctx, "p9", b.ID, "c1", vaxDate, "")
	if err != nil || moved.Wave != booking.OpenWave {
		t.Fatalf("after wave 1 closed: %+v, %v; want the open wave", moved, err)
	}
	if f.booked("c2", 1) != 0 || f.booked("c1", booking.OpenWave) != 1 {
		t.Errorf("c2 wave 1 booked %d, c1 open wave booked %d", f.booked("c2", 1), f.booked("c1", booking.OpenWave))
	}
}
