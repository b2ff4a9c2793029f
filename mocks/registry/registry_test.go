package registry_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/mocks/population"
	"github.com/yeyak/yeyak/mocks/registry"
)

// people used across the tests, added to an empty registry.
var (
	alice = population.Person{ID: "P0000000001", BirthDate: booking.MustDate("1990-02-19"), Sex: 'F', Region: "11-110"}
	bob   = population.Person{ID: "P0000000002", BirthDate: booking.MustDate("1985-07-01"), Sex: 'M', Region: "26-110",
		Doses: []population.Dose{{Number: 1, Product: "pfizer", Date: booking.MustDate("2021-05-03")}}}
	carol = population.Person{ID: "P0000000003", BirthDate: booking.MustDate("1979-11-30"), Contraindicated: true}
	dave  = population.Person{ID: "P0000000004", BirthDate: booking.MustDate("1972-02-29"), Excluded: true}
	ghost = population.Person{ID: "P0000000005", BirthDate: booking.MustDate("2000-01-01"), Unknown: true}
)

func newTestRegistry(t *testing.T) *registry.Registry {
	t.Helper()
	r := registry.NewEmpty()
	for _, p := range []population.Person{alice, bob, carol, dave, ghost} {
		r.Add(p)
	}
	return r
}

func rec(id, person string, dose int) adapter.BookingRecord {
	return adapter.BookingRecord{BookingID: id, PersonID: person, CampaignID: "c2021", ClinicID: "C000001",
		Date: time.Date(2021, 8, 26, 0, 0, 0, 0, time.UTC), Product: "pfizer", Dose: dose}
}

func TestEligibility(t *testing.T) {
	ctx := context.Background()
	r := newTestRegistry(t)
	got, err := r.Eligibility(ctx, bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.PersonID != bob.ID || !got.BirthDate.Equal(time.Date(1985, 7, 1, 0, 0, 0, 0, time.UTC)) ||
		len(got.Doses) != 1 || got.Doses[0].Product != "pfizer" || got.Doses[0].Number != 1 {
		t.Fatalf("bob = %+v", got)
	}
	for _, id := range []string{ghost.ID, "P9999999999", "nobody"} {
		if _, err := r.Eligibility(ctx, id); !errors.Is(err, adapter.ErrNotFound) {
			t.Errorf("Eligibility(%s) = %v, want ErrNotFound", id, err)
		}
	}
	c, _ := r.Eligibility(ctx, carol.ID)
	d, _ := r.Eligibility(ctx, dave.ID)
	if !c.Contraindicated || c.Excluded || !d.Excluded || d.Contraindicated {
		t.Fatalf("flags: carol %+v dave %+v", c, d)
	}

	recs, err := r.EligibilityBulk(ctx, []string{alice.ID, ghost.ID, "x", bob.ID, alice.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].PersonID != alice.ID || recs[1].PersonID != bob.ID {
		t.Fatalf("bulk = %+v", recs)
	}
	s := r.Stats()
	if s.Reads != 6 || s.BulkReads != 1 || s.BulkIDs != 5 {
		t.Fatalf("stats %+v", s)
	}
}

func TestPopulationBacked(t *testing.T) {
	ctx := context.Background()
	cfg := population.Config{Seed: 4, People: 5000}
	r := registry.New(registry.Config{Population: cfg})
	var known, unknown int
	for i := range 5000 {
		p := population.PersonAt(cfg, i)
		got, err := r.Eligibility(ctx, p.ID)
		if p.Unknown {
			unknown++
			if !errors.Is(err, adapter.ErrNotFound) {
				t.Fatalf("unknown %d: %v", i, err)
			}
			continue
		}
		known++
		if err != nil || got.BirthDate.Day() != p.BirthDate.Day || len(got.Doses) != len(p.Doses) ||
			got.Contraindicated != p.Contraindicated || got.Excluded != p.Excluded {
			t.Fatalf("person %d: %+v, %v; want %+v", i, got, err, p)
		}
	}
	if unknown == 0 || known == 0 {
		t.Fatalf("known %d unknown %d", known, unknown)
	}
	if _, err := r.Eligibility(ctx, population.ID(5000)); !errors.Is(err, adapter.ErrNotFound) {
		t.Fatalf("index past the population: %v", err)
	}
	// Add overrides a population person.
	p := population.PersonAt(cfg, 0)
	p.Contraindicated = true
	r.Add(p)
	if got, _ := r.Eligibility(ctx, p.ID); !got.Contraindicated {
		t.Fatal("Add did not override the population")
	}
}

func TestRecordBookingRules(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		b        adapter.BookingRecord
		rejected bool
	}{
		{"eligible dose 1", rec("b1", alice.ID, 1), false},
		{"unknown person", rec("b2", ghost.ID, 1), true},
		{"never heard of", rec("b3", "P7777777777", 1), true},
		{"contraindicated", rec("b4", carol.ID, 1), true},
		{"excluded", rec("b5", dave.ID, 1), true},
		{"dose 1 already given", rec("b6", bob.ID, 1), true},
		{"dose 2 after dose 1", rec("b7", bob.ID, 2), false},
		{"missing booking id", rec("", alice.ID, 1), true},
		{"dose 0", rec("b8", alice.ID, 0), true},
		{"missing product", func() adapter.BookingRecord { b := rec("b9", alice.ID, 1); b.Product = ""; return b }(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRegistry(t)
			err := r.RecordBooking(ctx, tc.b)
			if tc.rejected {
				if !errors.Is(err, adapter.ErrRejected) || errors.Is(err, adapter.ErrUnavailable) {
					t.Fatalf("err = %v, want ErrRejected", err)
				}
				if _, ok := r.Reservation(tc.b.BookingID); ok {
					t.Fatal("rejected booking stored")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			res, ok := r.Reservation(tc.b.BookingID)
			if !ok || !res.Active() || res.BookingRecord != tc.b || res.Registered.IsZero() {
				t.Fatalf("stored %+v %v", res, ok)
			}
			got, _ := r.Eligibility(ctx, tc.b.PersonID)
			if len(got.Bookings) != 1 || got.Bookings[0] != tc.b {
				t.Fatalf("eligibility bookings %+v", got.Bookings)
			}
		})
	}
}

func TestWritesIdempotentAndCounted(t *testing.T) {
	ctx := context.Background()
	r := newTestRegistry(t)
	b := rec("bk-1", alice.ID, 1)
	for range 3 {
		if err := r.RecordBooking(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	// Same id, different content: success, nothing changes.
	other := b
	other.ClinicID = "C999999"
	if err := r.RecordBooking(ctx, other); err != nil {
		t.Fatal(err)
	}
	if res, _ := r.Reservation(b.BookingID); res.ClinicID != b.ClinicID {
		t.Fatalf("duplicate write changed the row: %+v", res)
	}
	if total, active := r.Reservations(); total != 1 || active != 1 {
		t.Fatalf("reservations %d/%d", total, active)
	}
	for range 2 {
		if err := r.CancelBooking(ctx, b.BookingID); err != nil {
			t.Fatal(err)
		}
	}
	// A cancelled row stays cancelled when the record is redelivered.
	if err := r.RecordBooking(ctx, b); err != nil {
		t.Fatal(err)
	}
	res, _ := r.Reservation(b.BookingID)
	if res.Active() || res.Status != "C" || !res.Updated.After(res.Registered) && !res.Updated.Equal(res.Registered) {
		t.Fatalf("after cancel + redelivery: %+v", res)
	}
	if got, _ := r.Eligibility(ctx, alice.ID); len(got.Bookings) != 0 {
		t.Fatalf("cancelled booking still listed: %+v", got.Bookings)
	}
	if records, cancels := r.WritesFor(b.BookingID); records != 5 || cancels != 2 {
		t.Fatalf("WritesFor = %d records, %d cancels; want 5, 2", records, cancels)
	}
	// Cancelling an unknown id succeeds and is counted.
	if err := r.CancelBooking(ctx, "never-booked"); err != nil {
		t.Fatal(err)
	}
	if _, cancels := r.WritesFor("never-booked"); cancels != 1 {
		t.Fatal("cancel of unknown id not counted")
	}
	s := r.Stats()
	if s.Records != 5 || s.Duplicates != 4 || s.Cancels != 3 {
		t.Fatalf("stats %+v", s)
	}
	r.Reset()
	if _, ok := r.Reservation(b.BookingID); ok {
		t.Fatal("Reset kept reservations")
	}
	if rc, cc := r.WritesFor(b.BookingID); rc+cc != 0 || r.Stats().Records != 0 {
		t.Fatal("Reset kept counters")
	}
	if _, err := r.Eligibility(ctx, alice.ID); err != nil {
		t.Fatal("Reset dropped people")
	}
}

func TestConcurrentWritesOneEffect(t *testing.T) {
	ctx := context.Background()
	r := registry.New(registry.Config{Population: population.Config{Seed: 1, People: 1000, VaccinatedShare: -1, ContraindicatedShare: -1, ExcludedShare: -1, UnknownShare: -1}})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 100 {
				b := rec(population.ID(i), population.ID(i), 1)
				if err := r.RecordBooking(ctx, b); err != nil {
					t.Error(err)
				}
				if g%4 == 0 {
					_, _ = r.Eligibility(ctx, b.PersonID)
				}
			}
		})
	}
	wg.Wait()
	if total, _ := r.Reservations(); total != 100 {
		t.Fatalf("%d reservations, want 100", total)
	}
	if records, _ := r.WritesFor(population.ID(7)); records != 16 {
		t.Fatalf("records for one id = %d, want 16", records)
	}
}
