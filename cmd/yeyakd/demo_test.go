package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/sqlstore"
	"github.com/yeyak/yeyak/mocks/population"
)

// TestDemoSeedsThenKeepsBookings: the first start seeds in bulk; a restart
// on the same database keeps the bookings made in between (the bulk seed
// refuses a campaign with quota rows, and the restart path refreshes
// without clobbering what is booked).
func TestDemoSeedsThenKeepsBookings(t *testing.T) {
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "demo.db")
	cfg := &config{DemoPeople: 2000, DemoClinics: 10}
	now := func() time.Time { return time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC) }
	log := slog.New(slog.DiscardHandler)
	start := func() (*sqlstore.DB, *demo) {
		t.Helper()
		db, err := sqlstore.Open(ctx, dsn, sqlstore.Options{Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		d, err := newDemo(ctx, cfg, db, now, log)
		if err != nil {
			t.Fatal(err)
		}
		return db, d
	}
	db, d := start()
	p, ok := d.tourPerson()
	if !ok {
		t.Fatal("nobody may book")
	}
	svc, err := booking.NewService(booking.ServiceConfig{Store: db, People: demoPeople{d}, Now: now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.Book(ctx, booking.BookRequest{PersonID: p.ID, CampaignID: demoCampaignID, ClinicID: d.clinics[0].ID,
		Date: d.campaign.VaccinationFrom, Product: d.clinics[0].Products[0]})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, _ = start() // restart on the same database
	defer db.Close()
	got, err := db.Booking(ctx, p.ID, b.ID)
	if err != nil || got.Status != booking.StatusConfirmed {
		t.Fatalf("the booking did not survive the restart: %+v %v", got, err)
	}
	q, err := db.Quotas(ctx, demoCampaignID)
	if err != nil {
		t.Fatal(err)
	}
	booked := 0
	for _, r := range q {
		booked += r.Booked
	}
	if booked != 2 { // dose 1 and its dose 2
		t.Fatalf("booked doses after the restart: %d, want 2", booked)
	}
}

// demoPeople answers for the demo population (the registry's view).
type demoPeople struct{ d *demo }

func (p demoPeople) Person(_ context.Context, id string) (booking.Person, error) {
	i, ok := population.IndexOf(id)
	if !ok || i >= p.d.pop.Size() {
		return booking.Person{}, booking.Errorf(booking.EUNKNOWNPERSON, "unknown")
	}
	return booking.Person{ID: id, BirthDate: population.PersonAt(p.d.pop, i).BirthDate}, nil
}
