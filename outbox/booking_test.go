package outbox_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/sqlstore"
	"github.com/yeyak/yeyak/mocks/testenv"
	"github.com/yeyak/yeyak/outbox"
)

// These helpers produce outbox rows the way production does: booking.Service
// over booking/sqlstore, each booking change writing its event in the
// booking transaction.

// everyoneEligible answers every person as eligible, born in the cohort,
// like a warm eligibility cache.
type everyoneEligible struct{}

func (everyoneEligible) Person(_ context.Context, id string) (booking.Person, error) {
	return booking.Person{ID: id, BirthDate: booking.MustDate("1990-05-01")}, nil
}

// bookingSystem is booking.Service on a fresh database of the dialect.
type bookingSystem struct {
	store   *sqlstore.DB
	svc     *booking.Service
	campID  string
	slot    booking.Date
	clinics int
}

// newBookingSystem opens a fresh, migrated database of the dialect with a
// campaign in its open phase (a one-dose product, so one booking is one
// event) and clinics with plenty of doses.
func newBookingSystem(t testing.TB, dialect string) *bookingSystem {
	t.Helper()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "yeyak.db")
	if dialect == outbox.DialectPostgres {
		dsn = testenv.Postgres(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := sqlstore.Open(ctx, dsn, sqlstore.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", dialect, err)
	}
	t.Cleanup(func() { store.Close() })
	c := booking.Campaign2021()
	c.Products = []booking.Product{{ID: "janssen", Doses: 1}}
	if err := store.PutCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	s := &bookingSystem{store: store, campID: c.ID, slot: booking.MustDate("2021-08-27"), clinics: 8}
	var clinics []booking.Clinic
	var qs []booking.Quota
	for i := 1; i <= s.clinics; i++ {
		id := fmt.Sprintf("K%03d", i)
		clinics = append(clinics, booking.Clinic{ID: id, Name: "Clinic " + id, Region: "11-110", Products: []string{"janssen"}})
		for _, d := range []booking.Date{s.slot, s.slot.AddDays(1)} {
			qs = append(qs, booking.Quota{CampaignID: c.ID, ClinicID: id, Date: d, Product: "janssen", Dose: 1,
				Wave: booking.OpenWave, Capacity: 100_000})
		}
	}
	if err := store.PutClinics(ctx, clinics); err != nil {
		t.Fatal(err)
	}
	if err := store.SetQuotas(ctx, qs); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2021, 8, 25, 12, 0, 0, 0, time.FixedZone("KST", 9*3600)) // open phase
	s.svc, err = booking.NewService(booking.ServiceConfig{Store: store, People: everyoneEligible{},
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *bookingSystem) db() *sqlx.DB { return s.store.DB() }

// book books person i's first dose.
func (s *bookingSystem) book(ctx context.Context, i int) (*booking.Booking, error) {
	return s.svc.Book(ctx, booking.BookRequest{PersonID: personID(i), CampaignID: s.campID,
		ClinicID: fmt.Sprintf("K%03d", i%s.clinics+1), Date: s.slot, Product: "janssen",
		Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
}

func personID(i int) string { return fmt.Sprintf("P%010d", i) }

// stream runs person i's changes for every i in [from, to), on workers
// goroutines, each person's changes in order: book, then (every 5th)
// reschedule or (every 7th) cancel. It returns the number of events written
// and fails the test on any error.
func (s *bookingSystem) stream(t testing.TB, from, to, workers int) int {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	events := 0
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := from + w; i < to; i += workers {
				n, err := s.change(ctx, i)
				if err != nil {
					t.Errorf("person %d: %v", i, err)
					return
				}
				mu.Lock()
				events += n
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return events
}

// change runs person i's changes and returns the events they wrote.
func (s *bookingSystem) change(ctx context.Context, i int) (int, error) {
	b, err := s.book(ctx, i)
	if err != nil {
		return 0, fmt.Errorf("book: %w", err)
	}
	switch {
	case i%5 == 0:
		if _, err := s.svc.Reschedule(ctx, b.PersonID, b.ID, fmt.Sprintf("K%03d", (i+1)%s.clinics+1), s.slot.AddDays(1), ""); err != nil {
			return 1, fmt.Errorf("reschedule: %w", err)
		}
		return 2, nil
	case i%7 == 0:
		if _, err := s.svc.Cancel(ctx, b.PersonID, b.ID, ""); err != nil {
			return 1, fmt.Errorf("cancel: %w", err)
		}
		return 2, nil
	}
	return 1, nil
}

// outboxOrder returns the outbox's event ids per person (aggregate key) in
// commit (seq) order, published or not.
func outboxOrder(t testing.TB, db *sqlx.DB) (map[string][]string, int) {
	t.Helper()
	var rows []struct {
		ID  string `db:"id"`
		Key string `db:"aggregate_key"`
	}
	if err := db.Select(&rows, `SELECT id, aggregate_key FROM outbox ORDER BY seq`); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, r := range rows {
		out[r.Key] = append(out[r.Key], r.ID)
	}
	return out, len(rows)
}
