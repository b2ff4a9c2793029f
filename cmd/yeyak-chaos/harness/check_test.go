package harness

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/adapter/registrysync"
	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/sqlstore"
	"github.com/yeyak/yeyak/cmd/yeyak-load/load"
	"github.com/yeyak/yeyak/mocks/population"
	"github.com/yeyak/yeyak/mocks/registry"
	"github.com/yeyak/yeyak/mocks/testenv"
)

// world is a migrated PostgreSQL database and a registry that tests put
// into states, good and broken, behind the service's back.
type world struct {
	t   *testing.T
	db  *sql.DB
	reg *registry.Registry
	pop population.Config
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, testenv.Postgres(t), sqlstore.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	pop := population.Config{Seed: 2021, People: 200, ContraindicatedShare: -1, ExcludedShare: -1, UnknownShare: -1, VaccinatedShare: -1}
	return &world{t: t, db: store.DB().DB, reg: registry.New(registry.Config{Population: pop}), pop: pop}
}

func (w *world) exec(q string, args ...any) {
	w.t.Helper()
	if _, err := w.db.Exec(q, args...); err != nil {
		w.t.Fatalf("%s: %v", q, err)
	}
}

// quota puts a quota row for clinic on 2030-01-10.
func (w *world) quota(clinic string, capacity, booked int) {
	w.exec(`INSERT INTO quotas (campaign_id, clinic_id, vdate, product, dose, wave, capacity, booked, version)
		VALUES ('c', $1, '2030-01-10', 'pfizer', 1, 1, $2, $3, 1)`, clinic, capacity, booked)
}

// booking puts booking id of person index p at clinic.
func (w *world) booking(id string, p int, clinic, status string) {
	now := time.Now()
	w.exec(`INSERT INTO bookings (id, person_id, campaign_id, clinic_id, vdate, product, dose, wave, status, created_at, updated_at)
		VALUES ($1, $2, 'c', $3, '2030-01-10', 'pfizer', 1, 1, $4, $5, $5)`, id, population.ID(p), clinic, status, now)
}

// record writes booking id to the registry at clinic.
func (w *world) record(id string, p int, clinic string) {
	w.t.Helper()
	err := w.reg.RecordBooking(context.Background(), adapter.BookingRecord{BookingID: id, PersonID: population.ID(p), CampaignID: "c",
		ClinicID: clinic, Product: "pfizer", Dose: 1, Date: time.Date(2030, 1, 10, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) check(acked ...load.BookingRecord) *Result {
	w.t.Helper()
	res, err := Check(context.Background(), w.db, w.reg, acked)
	if err != nil {
		w.t.Fatal(err)
	}
	return res
}

func ack(id string, p int, clinic, status, change string) load.BookingRecord {
	return load.BookingRecord{ID: id, PersonID: population.ID(p), CampaignID: "c", ClinicID: clinic, Date: "2030-01-10",
		Product: "pfizer", Status: status, Ack: "created", Change: change}
}

func wantViolations(t *testing.T, res *Result, kinds ...string) {
	t.Helper()
	if len(kinds) == 0 && !res.OK() {
		t.Fatalf("violations in a sound state: %q", res.Violations)
	}
	for _, k := range kinds {
		found := false
		for _, v := range res.Violations {
			if strings.HasPrefix(v, k+":") {
				found = true
			}
		}
		if !found {
			t.Errorf("no %q violation in %q", k, res.Violations)
		}
	}
}

func TestCheckSoundState(t *testing.T) {
	w := newWorld(t)
	w.quota("K1", 2, 1)
	w.booking("b1", 1, "K1", "confirmed")
	w.record("b1", 1, "K1")
	w.quota("K2", 2, 0)
	w.booking("b2", 2, "K2", "cancelled")
	w.record("b2", 2, "K2")
	if err := w.reg.CancelBooking(context.Background(), "b2"); err != nil {
		t.Fatal(err)
	}
	// b3 was rescheduled from K2 to K3: the registry holds it under the
	// derived id at K3, its first reservation cancelled.
	w.quota("K3", 1, 1)
	w.booking("b3", 3, "K3", "confirmed")
	w.record("b3", 3, "K2")
	ev := booking.EventPayload{SchemaVersion: 1, EventID: "e1", Type: booking.EventBookingRescheduled,
		Booking: booking.EventBooking{ID: "b3", Date: booking.MustDate("2030-01-10")}}
	payload, _ := json.Marshal(ev)
	w.exec(`INSERT INTO outbox (id, aggregate_key, event_type, payload, headers, created_at, published_at) VALUES ('e1', 'P', $1, $2, '{}', now(), now())`,
		string(booking.EventBookingRescheduled), string(payload))
	w.record(registrysync.RegistryID("b3", "e1"), 3, "K3")
	if err := w.reg.CancelBooking(context.Background(), "b3"); err != nil {
		t.Fatal(err)
	}
	res := w.check(ack("b1", 1, "K1", "confirmed", ""), ack("b2", 2, "K2", "cancelled", "cancelled"), ack("b3", 3, "K3", "confirmed", "rescheduled"))
	wantViolations(t, res)
	if res.Confirmed != 2 || res.Cancelled != 1 || res.RegistryActive != 2 || res.Acknowledged != 3 {
		t.Errorf("figures %+v", res)
	}
}

func TestCheckFindsOversoldAndDrift(t *testing.T) {
	w := newWorld(t)
	w.quota("K1", 1, 1)
	w.booking("b1", 1, "K1", "confirmed")
	w.booking("b2", 2, "K1", "confirmed") // the counter says 1, two hold a dose of one
	w.record("b1", 1, "K1")
	w.record("b2", 2, "K1")
	w.quota("K2", 5, 3) // counter 3, nobody booked
	wantViolations(t, w.check(), "oversold", "quota drift")
}

func TestCheckFindsLostAcknowledgements(t *testing.T) {
	w := newWorld(t)
	w.quota("K1", 5, 2)
	w.booking("b1", 1, "K1", "confirmed")
	w.record("b1", 1, "K1")
	w.booking("b2", 2, "K1", "confirmed")
	w.record("b2", 2, "K1")
	res := w.check(
		ack("b1", 1, "K1", "confirmed", "cancelled"),   // cancel acknowledged, not in the database
		ack("b2", 2, "K9", "confirmed", "rescheduled"), // reschedule acknowledged, not in the database
		ack("b9", 9, "K1", "confirmed", ""),            // a 201 with no booking behind it
	)
	wantViolations(t, res, "acknowledged change lost", "acknowledged booking lost")
	if len(res.Violations) != 3 {
		t.Errorf("violations %q", res.Violations)
	}
	// An uncertain change is not held against the database.
	u := ack("b2", 2, "K9", "confirmed", "")
	u.Uncertain = true
	wantViolations(t, w.check(ack("b1", 1, "K1", "confirmed", ""), u))
}

// TestCheckFindsDoubleBookings: two bookings acknowledged to one person,
// neither cancelled by them, is a double booking whatever the database
// holds now.
func TestCheckFindsDoubleBookings(t *testing.T) {
	w := newWorld(t)
	w.quota("K1", 5, 1)
	w.booking("b1", 1, "K1", "confirmed")
	w.record("b1", 1, "K1")
	w.booking("b2", 1, "K1", "cancelled") // the unique index keeps one active
	res := w.check(ack("b1", 1, "K1", "confirmed", ""), ack("b2", 1, "K1", "confirmed", ""))
	wantViolations(t, res, "booked twice", "acknowledged booking lost")
	if res.DoubleBooked != 1 {
		t.Errorf("DoubleBooked %d, want 1", res.DoubleBooked)
	}
	// Booked, cancelled, booked again: one open booking.
	res = w.check(ack("b1", 1, "K1", "confirmed", ""), ack("b2", 1, "K1", "cancelled", "cancelled"))
	wantViolations(t, res)
}

func TestCheckFindsRegistryMismatches(t *testing.T) {
	w := newWorld(t)
	w.quota("K1", 10, 3)
	w.booking("b1", 1, "K1", "confirmed") // never reached the registry
	w.booking("b2", 2, "K1", "confirmed")
	w.record("b2", 2, "K2") // at the wrong clinic
	w.booking("b3", 3, "K1", "cancelled")
	w.record("b3", 3, "K1")    // cancel never reached the registry
	w.record("stray", 4, "K1") // a reservation no booking accounts for
	w.booking("b5", 5, "K1", "provisional")
	res := w.check()
	wantViolations(t, res, "registry", "provisional left")
	for _, want := range []string{"b1 has 0 active", "b2 is at K1", "cancelled booking b3 has 1 active", "holds 3 active reservations, the bookings account for 2"} {
		if !strings.Contains(strings.Join(res.Violations, "\n"), want) {
			t.Errorf("no violation mentions %q: %q", want, res.Violations)
		}
	}
}

func TestSettle(t *testing.T) {
	w := newWorld(t)
	w.exec(`INSERT INTO outbox (id, aggregate_key, event_type, payload, headers, created_at) VALUES ('e1', 'P', 'BookingConfirmed', '{}', '{"event-id":"e1"}', now())`)
	ctx := context.Background()
	q, err := Settle(ctx, w.db)
	if err != nil || q.Pending != 1 || q.Unhandled != 1 || q.settled() {
		t.Fatalf("one unpublished event: %+v %v", q, err)
	}
	if _, err := WaitQuiet(ctx, w.db, 600*time.Millisecond); err == nil {
		t.Fatal("WaitQuiet settled with an event pending")
	}
	w.exec(`UPDATE outbox SET published_at = now()`)
	w.exec(`INSERT INTO dead_letters (id, topic, partition_no, offset_no, msg_key, payload, headers, error, created_at)
		VALUES ('d1', 't', 0, 1, 'k', '\x00', '{"event-id":"e1"}', 'permanent', now())`)
	if q, err := WaitQuiet(ctx, w.db, 10*time.Second); err != nil || !q.settled() {
		t.Fatalf("a dead-lettered event counts as handled: %+v %v", q, err)
	}
	w.exec(`INSERT INTO outbox (id, aggregate_key, event_type, payload, headers, created_at, published_at) VALUES ('e2', 'P', 'BookingConfirmed', '{}', '{}', now(), now())`)
	w.exec(`INSERT INTO inbox (event_id, processed_at) VALUES ('e2', now())`)
	w.booking("b1", 1, "K1", "provisional")
	if q, _ := Settle(ctx, w.db); q.Provisional != 1 || q.Unhandled != 0 || q.settled() {
		t.Fatalf("provisional booking: %+v", q)
	}
}
