package sqlstore

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/mocks/testenv"
)

const testCampaign = "covid-2021-18-49"

var (
	day1 = booking.MustDate("2021-08-26")
	day2 = booking.MustDate("2021-08-27")
)

// openSQLite opens a store on a fresh SQLite file in tb's temp dir.
func openSQLite(tb testing.TB) *DB {
	tb.Helper()
	return mustOpen(tb, "sqlite:"+filepath.Join(tb.TempDir(), "yeyak.db"))
}

// openPostgres opens a store on a fresh PostgreSQL database (skipping tb
// when PostgreSQL is absent).
func openPostgres(tb testing.TB) *DB {
	tb.Helper()
	return mustOpen(tb, testenv.Postgres(tb))
}

func mustOpen(tb testing.TB, dsn string) *DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := Open(ctx, dsn, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

func quota(clinic string, d booking.Date, dose, wave, capacity int) booking.Quota {
	return booking.Quota{CampaignID: testCampaign, ClinicID: clinic, Date: d, Product: "pfizer", Dose: dose, Wave: wave, Capacity: capacity}
}

func mustSetQuotas(tb testing.TB, db *DB, qs ...booking.Quota) {
	tb.Helper()
	if err := db.SetQuotas(ctxT(tb), qs); err != nil {
		tb.Fatalf("SetQuotas: %v", err)
	}
}

func newBooking(person, clinic string, d booking.Date, dose, wave int) *booking.Booking {
	now := time.Now().UTC()
	return &booking.Booking{
		ID: booking.NewID(), PersonID: person, CampaignID: testCampaign, ClinicID: clinic, Date: d,
		Product: "pfizer", Dose: dose, Wave: wave, Status: booking.StatusConfirmed, CreatedAt: now, UpdatedAt: now,
	}
}

func eventsFor(typ booking.EventType, bs ...*booking.Booking) []booking.Event {
	var evs []booking.Event
	for _, b := range bs {
		evs = append(evs, booking.NewEvent(typ, b, nil, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", time.Now()))
	}
	return evs
}

func book(tb testing.TB, db *DB, bs ...*booking.Booking) {
	tb.Helper()
	if err := db.CreateBookings(ctxT(tb), bs, eventsFor(booking.EventBookingConfirmed, bs...)); err != nil {
		tb.Fatalf("CreateBookings: %v", err)
	}
}

// quotaOf returns the stored row for q's key.
func quotaOf(tb testing.TB, db *DB, q booking.Quota) booking.Quota {
	tb.Helper()
	qs, err := db.Quotas(ctxT(tb), q.CampaignID)
	if err != nil {
		tb.Fatalf("Quotas: %v", err)
	}
	for _, r := range qs {
		if r.ClinicID == q.ClinicID && r.Date == q.Date && r.Product == q.Product && r.Dose == q.Dose && r.Wave == q.Wave {
			return r
		}
	}
	tb.Fatalf("no quota row %+v", q)
	return booking.Quota{}
}

func wantBooked(tb testing.TB, db *DB, q booking.Quota, want int) {
	tb.Helper()
	if got := quotaOf(tb, db, q).Booked; got != want {
		tb.Fatalf("quota %s %s wave %d: booked = %d, want %d", q.ClinicID, q.Date, q.Wave, got, want)
	}
}

func count(tb testing.TB, db *DB, query string, args ...any) int {
	tb.Helper()
	var n int
	if err := db.DB().QueryRowxContext(ctxT(tb), db.Dialect().Rebind(query), args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

func outboxRows(tb testing.TB, db *DB) int {
	tb.Helper()
	return count(tb, db, "SELECT COUNT(*) FROM outbox")
}

func bookingRows(tb testing.TB, db *DB) int {
	tb.Helper()
	return count(tb, db, "SELECT COUNT(*) FROM bookings")
}

func wantCode(tb testing.TB, err error, code booking.Code) {
	tb.Helper()
	if got := booking.ErrorCode(err); got != code {
		tb.Fatalf("error code = %q, want %q (err: %v)", got, code, err)
	}
}
