package sqlstore

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/mocks/testenv"
)

// raceForWave has people goroutines book one wave holding doses, all at
// once, and checks invariant 1: exactly doses succeed, the rest are sold
// out, the row counts doses and each success wrote its outbox row.
func raceForWave(t *testing.T, db *DB, people, doses int) {
	t.Helper()
	q := quota("c1", day1, 1, 4, doses)
	mustSetQuotas(t, db, q)
	errs := make([]error, people)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range people {
		wg.Go(func() {
			<-start
			b := newBooking(fmt.Sprintf("p%04d", i), "c1", day1, 1, 4)
			errs[i] = db.CreateBookings(context.Background(), []*booking.Booking{b}, eventsFor(booking.EventBookingConfirmed, b))
		})
	}
	close(start)
	wg.Wait()
	var ok, soldOut int
	for _, err := range errs {
		switch booking.ErrorCode(err) {
		case "":
			ok++
		case booking.ESOLDOUT:
			soldOut++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != doses || soldOut != people-doses {
		t.Fatalf("%d booked, %d sold out; want %d and %d", ok, soldOut, doses, people-doses)
	}
	wantBooked(t, db, q, doses)
	if n := bookingRows(t, db); n != doses {
		t.Fatalf("bookings = %d, want %d", n, doses)
	}
	if n := outboxRows(t, db); n != doses {
		t.Fatalf("outbox rows = %d, want %d", n, doses)
	}
}

// raceSamePerson has one person book tries times at once (plenty of
// capacity): invariant 2, exactly one active booking.
func raceSamePerson(t *testing.T, db *DB, tries int) {
	t.Helper()
	q := quota("c2", day1, 1, 0, 1000)
	mustSetQuotas(t, db, q)
	errs := make([]error, tries)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range tries {
		wg.Go(func() {
			<-start
			b := newBooking("same-person", "c2", day1, 1, 0)
			errs[i] = db.CreateBookings(context.Background(), []*booking.Booking{b}, eventsFor(booking.EventBookingConfirmed, b))
		})
	}
	close(start)
	wg.Wait()
	var ok int
	for _, err := range errs {
		switch booking.ErrorCode(err) {
		case "":
			ok++
		case booking.EALREADYBOOKED:
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d bookings succeeded for one person, want 1", ok)
	}
	wantBooked(t, db, q, 1)
	if n := count(t, db, "SELECT COUNT(*) FROM bookings WHERE person_id = ?", "same-person"); n != 1 {
		t.Fatalf("person has %d bookings, want 1", n)
	}
}

// raceCancelAndRebook cancels and moves while others book the same rows:
// doses are conserved (booked == active bookings per row) and no call
// fails with a lock or deadlock error.
func raceCancelAndRebook(t *testing.T, db *DB, people int) {
	t.Helper()
	a, b := quota("c3", day1, 1, 1, people), quota("c3", day2, 1, 0, people)
	mustSetQuotas(t, db, a, b)
	var wg sync.WaitGroup
	for i := range people {
		wg.Go(func() {
			ctx := context.Background()
			old := newBooking(fmt.Sprintf("r%03d", i), "c3", day1, 1, 1)
			if err := db.CreateBookings(ctx, []*booking.Booking{old}, nil); err != nil {
				t.Errorf("create: %v", err)
				return
			}
			nb := *old
			nb.Date, nb.Wave = day2, 0
			if err := db.MoveBookings(ctx, []booking.Move{{Old: old, New: &nb}}, eventsFor(booking.EventBookingRescheduled, &nb)); err != nil {
				t.Errorf("move: %v", err)
				return
			}
			if i%2 == 0 {
				if err := db.CancelBookings(ctx, []*booking.Booking{&nb}, eventsFor(booking.EventBookingCancelled, &nb)); err != nil {
					t.Errorf("cancel: %v", err)
				}
			}
		})
	}
	wg.Wait()
	wantBooked(t, db, a, 0)
	wantBooked(t, db, b, people/2)
	active := count(t, db, "SELECT COUNT(*) FROM bookings WHERE clinic_id = 'c3' AND status <> 'cancelled'")
	if active != people/2 {
		t.Fatalf("active bookings = %d, want %d", active, people/2)
	}
}

func TestRacePostgres(t *testing.T) {
	t.Parallel()
	db := openPostgres(t)
	t.Run("WaveOf50For400", func(t *testing.T) { raceForWave(t, db, 400, 50) })
	t.Run("SamePerson20", func(t *testing.T) { raceSamePerson(t, db, 20) })
	t.Run("CancelMoveRebook", func(t *testing.T) { raceCancelAndRebook(t, db, 40) })
}

func TestRaceSQLite(t *testing.T) {
	t.Parallel()
	db := openSQLite(t)
	t.Run("WaveOf10For80", func(t *testing.T) { raceForWave(t, db, 80, 10) })
	t.Run("SamePerson20", func(t *testing.T) { raceSamePerson(t, db, 20) })
	t.Run("CancelMoveRebook", func(t *testing.T) { raceCancelAndRebook(t, db, 20) })
}

// TestSQLiteMemory checks sqlite::memory: is one database for the whole
// pool, not one per connection.
func TestSQLiteMemory(t *testing.T) {
	t.Parallel()
	db := mustOpen(t, "sqlite::memory:")
	raceForWave(t, db, 30, 5)
	other := mustOpen(t, "sqlite::memory:")
	if n := bookingRows(t, other); n != 0 {
		t.Fatalf("a second memory database sees %d bookings of the first", n)
	}
}

// TestOutboxNotifyPostgres checks that a committed booking notifies
// yeyak_outbox in both notify modes, that a failed one does not, and that
// in after-commit mode the trigger stays silent for the store's sessions
// but not for other writers.
func TestOutboxNotifyPostgres(t *testing.T) {
	t.Parallel()
	for _, mode := range []NotifyMode{NotifyInTx, NotifyAfterCommit} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			dsn := testenv.Postgres(t)
			ctx := ctxT(t)
			db, err := Open(ctx, dsn, Options{OutboxNotify: mode, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			listener, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			defer listener.Close(context.Background())
			if _, err := listener.Exec(ctx, "LISTEN yeyak_outbox"); err != nil {
				t.Fatalf("listen: %v", err)
			}
			waitNotify := func(d time.Duration) error {
				wctx, cancel := context.WithTimeout(ctx, d)
				defer cancel()
				_, err := listener.WaitForNotification(wctx)
				return err
			}
			mustSetQuotas(t, db, quota("c1", day1, 1, 0, 1))

			fail := newBooking("p2", "c9", day1, 1, 0)
			wantCode(t, db.CreateBookings(ctx, []*booking.Booking{fail}, eventsFor(booking.EventBookingConfirmed, fail)), booking.ESOLDOUT)
			book(t, db, newBooking("p1", "c1", day1, 1, 0))
			if err := waitNotify(5 * time.Second); err != nil {
				t.Fatalf("no notification after a committed booking: %v", err)
			}
			if err := waitNotify(200 * time.Millisecond); err == nil {
				t.Fatal("a second notification: the failed booking notified too")
			}

			// A raw insert on one of the store's sessions notifies only in
			// in-transaction mode (the store's own commits are covered
			// above).
			ins := "INSERT INTO outbox (id, aggregate_key, event_type, payload, headers, created_at) VALUES ($1, 'k', 't', '{}', '{}', now())"
			if _, err := db.DB().ExecContext(ctx, ins, booking.NewID()); err != nil {
				t.Fatal(err)
			}
			err = waitNotify(300 * time.Millisecond)
			if mode == NotifyInTx && err != nil {
				t.Fatalf("trigger did not notify: %v", err)
			}
			if mode == NotifyAfterCommit && err == nil {
				t.Fatal("trigger notified on a store session in after-commit mode")
			}
			// Any other writer's insert always notifies.
			other, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close(context.Background())
			if _, err := other.Exec(ctx, ins, booking.NewID()); err != nil {
				t.Fatal(err)
			}
			if err := waitNotify(5 * time.Second); err != nil {
				t.Fatalf("another writer's insert did not notify: %v", err)
			}
		})
	}
}

// TestSQLiteTwoHandles races writers on two handles to one SQLite file
// (as the outbox relay writes beside the store): BEGIN IMMEDIATE and the
// busy timeout make them wait for each other instead of failing with
// "database is locked", including cancels that read before they write.
func TestSQLiteTwoHandles(t *testing.T) {
	t.Parallel()
	dsn := "sqlite:" + t.TempDir() + "/shared.db"
	db1, db2 := mustOpen(t, dsn), mustOpen(t, dsn)
	q := quota("c1", day1, 1, 0, 1000)
	mustSetQuotas(t, db1, q)
	var wg sync.WaitGroup
	for i := range 40 {
		db := db1
		if i%2 == 1 {
			db = db2
		}
		wg.Go(func() {
			ctx := context.Background()
			b := newBooking(fmt.Sprintf("h%03d", i), "c1", day1, 1, 0)
			if err := db.CreateBookings(ctx, []*booking.Booking{b}, eventsFor(booking.EventBookingConfirmed, b)); err != nil {
				t.Errorf("create: %v", err)
				return
			}
			if i%4 < 2 {
				if err := db.CancelBookings(ctx, []*booking.Booking{b}, nil); err != nil {
					t.Errorf("cancel: %v", err)
				}
			}
		})
	}
	wg.Wait()
	wantBooked(t, db2, q, 20)
}

// TestSQLiteBeginImmediate checks that a transaction takes SQLite's write
// lock at BEGIN (so a read-then-write transaction cannot fail to upgrade
// its lock): while one is open, another handle's write waits out its busy
// timeout.
func TestSQLiteBeginImmediate(t *testing.T) {
	t.Parallel()
	dsn := "sqlite:" + t.TempDir() + "/lock.db"
	db1 := mustOpen(t, dsn)
	ctx := ctxT(t)
	db2, err := Open(ctx, dsn, Options{BusyTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	tx, err := db1.DB().BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db2.PutClinics(ctx, []booking.Clinic{{ID: "c1"}}); err == nil {
		t.Fatal("a write went through while another transaction was open: BEGIN is not IMMEDIATE")
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := db2.PutClinics(ctx, []booking.Clinic{{ID: "c1"}}); err != nil {
		t.Fatalf("write after the other transaction ended: %v", err)
	}
}

// TestQuotaVersionsCommitOutOfOrderPostgres: a transaction that drew a
// lower quota version commits after one with a higher version; a reader
// that always asks from the version it was given must still see it.
func TestQuotaVersionsCommitOutOfOrderPostgres(t *testing.T) {
	t.Parallel()
	db := openPostgres(t)
	ctx := ctxT(t)
	qa, qb := quota("cA", day1, 1, 0, 5), quota("cB", day1, 1, 0, 5)
	mustSetQuotas(t, db, qa, qb)
	_, v0, err := db.QuotasChangedSince(ctx, testCampaign, 0)
	if err != nil {
		t.Fatal(err)
	}

	slow, err := db.DB().BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Rollback()
	if _, err := slow.ExecContext(ctx, db.q.take, 1, qa.CampaignID, qa.ClinicID, db.dialect.dateArg(qa.Date), qa.Product, qa.Dose, qa.Wave, 1); err != nil {
		t.Fatal(err)
	}
	book(t, db, newBooking("p1", "cB", day1, 1, 0)) // higher version, committed first

	rows, v1, err := db.QuotasChangedSince(ctx, testCampaign, v0)
	if err != nil || len(rows) != 1 || rows[0].ClinicID != "cB" {
		t.Fatalf("while the slow transaction is open: %+v, %v", rows, err)
	}
	if err := slow.Commit(); err != nil {
		t.Fatal(err)
	}
	rows, v2, err := db.QuotasChangedSince(ctx, testCampaign, v1)
	if err != nil {
		t.Fatal(err)
	}
	var sawA bool
	for _, r := range rows {
		sawA = sawA || (r.ClinicID == "cA" && r.Booked == 1)
	}
	if !sawA {
		t.Fatalf("the late commit with the lower version was missed: got %+v from version %d", rows, v1)
	}
	// Quiet again: the watermark catches up and nothing is returned twice.
	if rows, _, err := db.QuotasChangedSince(ctx, testCampaign, v2); err != nil || len(rows) != 0 {
		t.Fatalf("after catching up: %+v, %v", rows, err)
	}
}

// TestReservePairPostgres checks Reserve's one-statement pair (reservePair)
// where it differs from taking the doses one by one: the second dose's
// date is chosen from the statement's snapshot, and here a transaction
// holding that date's last dose commits while the statement waits for the
// row. The statement undoes itself and the transaction, trying the dates
// one by one, must take the next date: not fail, nor overbook.
func TestReservePairPostgres(t *testing.T) {
	t.Parallel()
	db := openPostgres(t)
	ctx := ctxT(t)
	early, late := day2.AddDays(20), day2.AddDays(21)
	d1, qEarly, qLate := quota("c1", day1, 1, 0, 5), quota("c1", early, 2, 0, 1), quota("c1", late, 2, 0, 5)
	mustSetQuotas(t, db, d1, qEarly, qLate)

	other, err := db.x.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback()
	if _, err := other.ExecContext(ctx, db.q.take, 1, qEarly.CampaignID, qEarly.ClinicID, db.dialect.dateArg(early), qEarly.Product, 2, 0, 1); err != nil {
		t.Fatal(err)
	}

	first := newBooking("p1", "c1", day1, 1, 0)
	second := newBooking("p1", "c1", day1, 2, 0)
	first.LinkedID, second.LinkedID = second.ID, first.ID
	r := booking.Reservation{Create: []*booking.Booking{first, second}, Flex: second, FlexDates: []booking.Date{early, late},
		Events: func() []booking.Event { return eventsFor(booking.EventBookingConfirmed, first, second) }}
	done := make(chan error, 1)
	go func() { done <- db.Reserve(ctx, r) }()

	// Once the reservation waits for the early row's lock, the other
	// transaction commits the early date's last dose.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := db.x.GetContext(ctx, &waiting, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reservation never waited for the row the other transaction holds")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := other.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if second.Date != late {
		t.Fatalf("second dose on %s, want %s (the early date's last dose went to the other transaction)", second.Date, late)
	}
	wantBooked(t, db, d1, 1)
	wantBooked(t, db, qEarly, 1)
	wantBooked(t, db, qLate, 1)
	if n := bookingRows(t, db); n != 2 {
		t.Fatalf("bookings = %d, want 2", n)
	}
	if n := outboxRows(t, db); n != 2 {
		t.Fatalf("outbox rows = %d, want 2", n)
	}
}
