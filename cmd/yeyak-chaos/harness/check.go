package harness

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/yeyak/yeyak/adapter/registrysync"
	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/cmd/yeyak-load/load"
	"github.com/yeyak/yeyak/mocks/registry"
)

// Result is what Check found.
type Result struct {
	// Violations are the broken invariants, one sentence each with its
	// evidence. Empty means every invariant held.
	Violations []string
	// Bookings counts the database's bookings by status.
	Confirmed, Provisional, Cancelled int
	// Acknowledged is the number of acknowledged bookings checked.
	Acknowledged int
	// RegistryActive is the number of active reservations in the registry.
	RegistryActive int
	// Deliveries is the number of record-booking writes the registry
	// processed for the database's bookings; Redelivered the bookings it
	// received more than once (at-least-once delivery: allowed, as long as
	// the effect is once).
	Deliveries, Redelivered int
	// DeadLetters is the number of messages the sync consumer
	// dead-lettered.
	DeadLetters int
	// DoubleBooked is the number of people holding more than one active
	// booking for the same campaign and dose (each is also a violation).
	DoubleBooked int
}

// OK reports whether every invariant held.
func (r *Result) OK() bool { return len(r.Violations) == 0 }

const maxViolations = 20 // per kind: enough evidence, bounded output

type violations struct {
	list  []string
	kinds map[string]int
}

func (v *violations) add(kind, format string, args ...any) {
	if v.kinds == nil {
		v.kinds = map[string]int{}
	}
	v.kinds[kind]++
	if v.kinds[kind] <= maxViolations {
		v.list = append(v.list, kind+": "+fmt.Sprintf(format, args...))
	}
}

func (v *violations) done() []string {
	for kind, n := range v.kinds {
		if n > maxViolations {
			v.list = append(v.list, fmt.Sprintf("%s: … %d more", kind, n-maxViolations))
		}
	}
	sort.Strings(v.list)
	return v.list
}

type dbBooking struct {
	id, person, clinic, date, product, status, reason string
	dose                                              int
}

// Check verifies yeyak's invariants on a settled system (see WaitQuiet)
// by querying its database (PostgreSQL or SQLite, database/sql) and, when
// reg is not nil, the registry:
//
//   - no quota oversold: booked ≤ capacity, and booked equals the active
//     bookings on the quota row (no drift either way);
//   - at most one active booking per person, campaign and dose, and no
//     person acknowledged two bookings they did not cancel;
//   - every booking the API acknowledged exists, and every acknowledged
//     cancel or reschedule is what the database holds;
//   - no provisional booking left;
//   - every confirmed booking is active in the registry exactly once (under
//     its id or the id its last reschedule derived) at its clinic and date,
//     every cancelled one has no active reservation, and the registry holds
//     no active reservation that no confirmed booking accounts for.
func Check(ctx context.Context, db *sql.DB, reg *registry.Registry, acked []load.BookingRecord) (*Result, error) {
	res := &Result{}
	var v violations

	// Quotas: oversold, and counters that drifted from the bookings.
	rows, err := db.QueryContext(ctx, `
		SELECT q.campaign_id, q.clinic_id, CAST(q.vdate AS TEXT), q.product, q.dose, q.wave, q.capacity, q.booked, COALESCE(b.n, 0)
		FROM quotas q LEFT JOIN (
			SELECT campaign_id, clinic_id, vdate, product, dose, wave, COUNT(*) AS n
			FROM bookings WHERE status <> 'cancelled'
			GROUP BY campaign_id, clinic_id, vdate, product, dose, wave
		) b ON b.campaign_id = q.campaign_id AND b.clinic_id = q.clinic_id AND b.vdate = q.vdate
			AND b.product = q.product AND b.dose = q.dose AND b.wave = q.wave
		WHERE q.booked > q.capacity OR COALESCE(b.n, 0) > q.capacity OR COALESCE(b.n, 0) <> q.booked`)
	if err != nil {
		return nil, fmt.Errorf("check quotas: %w", err)
	}
	for rows.Next() {
		var camp, clinic, date, product string
		var dose, wave, capacity, booked, active int
		if err := rows.Scan(&camp, &clinic, &date, &product, &dose, &wave, &capacity, &booked, &active); err != nil {
			rows.Close()
			return nil, err
		}
		key := fmt.Sprintf("%s/%s/%s/%s dose %d wave %d", camp, clinic, date, product, dose, wave)
		if booked > capacity || active > capacity {
			v.add("oversold", "%s: capacity %d, booked counter %d, active bookings %d", key, capacity, booked, active)
		} else {
			v.add("quota drift", "%s: booked counter %d but %d active bookings", key, booked, active)
		}
	}
	rows.Close()
	var orphans int
	if err := db.QueryRowContext(ctx, `
		SELECT COUNT(*) FROM bookings b WHERE b.status <> 'cancelled' AND NOT EXISTS (
			SELECT 1 FROM quotas q WHERE q.campaign_id = b.campaign_id AND q.clinic_id = b.clinic_id
				AND q.vdate = b.vdate AND q.product = b.product AND q.dose = b.dose AND q.wave = b.wave)`).Scan(&orphans); err != nil {
		return nil, fmt.Errorf("check quotas: %w", err)
	}
	if orphans > 0 {
		v.add("oversold", "%d active bookings hold no quota row", orphans)
	}

	// One active booking per person, campaign and dose.
	rows, err = db.QueryContext(ctx, `SELECT person_id, campaign_id, dose, COUNT(*) FROM bookings
		WHERE status <> 'cancelled' GROUP BY person_id, campaign_id, dose HAVING COUNT(*) > 1`)
	if err != nil {
		return nil, fmt.Errorf("check double bookings: %w", err)
	}
	for rows.Next() {
		var person, camp string
		var dose, n int
		if err := rows.Scan(&person, &camp, &dose, &n); err != nil {
			rows.Close()
			return nil, err
		}
		res.DoubleBooked++
		v.add("booked twice", "person %s has %d active bookings in %s for dose %d", person, n, camp, dose)
	}
	rows.Close()

	// Every booking, by id.
	all := map[string]*dbBooking{}
	rows, err = db.QueryContext(ctx, `SELECT id, person_id, clinic_id, CAST(vdate AS TEXT), product, dose, status, cancel_reason FROM bookings`)
	if err != nil {
		return nil, fmt.Errorf("read bookings: %w", err)
	}
	for rows.Next() {
		b := &dbBooking{}
		if err := rows.Scan(&b.id, &b.person, &b.clinic, &b.date, &b.product, &b.dose, &b.status, &b.reason); err != nil {
			rows.Close()
			return nil, err
		}
		all[b.id] = b
		switch b.status {
		case "confirmed":
			res.Confirmed++
		case "provisional":
			res.Provisional++
			v.add("provisional left", "booking %s is still provisional", b.id)
		case "cancelled":
			res.Cancelled++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}

	// What the API acknowledged is what the database holds.
	res.Acknowledged = len(acked)
	for _, a := range acked {
		b := all[a.ID]
		if b == nil {
			v.add("acknowledged booking lost", "booking %s (%s, person %s) is not in the database", a.ID, a.Ack, a.PersonID)
			continue
		}
		if b.person != a.PersonID {
			v.add("acknowledged booking lost", "booking %s belongs to %s in the database, acknowledged to %s", a.ID, b.person, a.PersonID)
		}
		if a.Uncertain {
			continue
		}
		switch {
		case a.Change == "cancelled":
			if b.status != "cancelled" {
				v.add("acknowledged change lost", "booking %s: cancel acknowledged, database says %s", a.ID, b.status)
			}
		case b.status == "cancelled":
			if a.Status == "provisional" && b.reason == registrysync.ReasonIneligible {
				break // the registry refused a provisional booking: by design
			}
			v.add("acknowledged booking lost", "booking %s (%s, %s) is cancelled in the database (reason %q) though nobody asked",
				a.ID, a.Ack, a.Status, b.reason)
		case b.clinic != a.ClinicID || b.date != a.Date:
			v.add("acknowledged change lost", "booking %s: acknowledged at %s on %s (%s), database has %s on %s",
				a.ID, a.ClinicID, a.Date, orNone(a.Change), b.clinic, b.date)
		}
	}

	// The API never acknowledged two bookings to one person that they did
	// not cancel (the database's unique index aside).
	open := map[string]int{}
	for _, a := range acked {
		if a.Change != "cancelled" {
			open[a.PersonID]++
		}
	}
	for person, n := range open {
		if n > 1 {
			res.DoubleBooked++
			v.add("booked twice", "person %s was acknowledged %d bookings, none cancelled by them", person, n)
		}
	}

	// Dead letters: a figure; what they cost shows in the registry checks.
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM dead_letters`).Scan(&res.DeadLetters); err != nil {
		return nil, fmt.Errorf("count dead letters: %w", err)
	}

	if reg != nil {
		if err := checkRegistry(ctx, db, reg, all, res, &v); err != nil {
			return nil, err
		}
	}
	res.Violations = v.done()
	return res, nil
}

func orNone(s string) string {
	if s == "" {
		return "as booked"
	}
	return s
}

// checkRegistry compares the registry's reservations with the bookings.
func checkRegistry(ctx context.Context, db *sql.DB, reg *registry.Registry, all map[string]*dbBooking, res *Result, v *violations) error {
	// A rescheduled booking lives in the registry under an id derived
	// from the reschedule event (registrysync.RegistryID).
	derived := map[string][]string{}
	rows, err := db.QueryContext(ctx, `SELECT payload FROM outbox WHERE event_type = '`+string(booking.EventBookingRescheduled)+`'`)
	if err != nil {
		return fmt.Errorf("read reschedule events: %w", err)
	}
	for rows.Next() {
		var payload string
		if err := rows.Scan(&payload); err != nil {
			rows.Close()
			return err
		}
		// Only the ids matter here (booking.EventPayload's field names).
		var p struct {
			EventID string `json:"event_id"`
			Booking struct {
				ID string `json:"id"`
			} `json:"booking"`
		}
		if err := json.Unmarshal([]byte(payload), &p); err != nil {
			rows.Close()
			return fmt.Errorf("reschedule event payload: %w", err)
		}
		derived[p.Booking.ID] = append(derived[p.Booking.ID], registrysync.RegistryID(p.Booking.ID, p.EventID))
	}
	rows.Close()

	accounted := 0
	for _, b := range all {
		ids := append([]string{b.id}, derived[b.id]...)
		var active []registry.Reservation
		for _, id := range ids {
			if r, ok := reg.Reservation(id); ok && r.Active() {
				active = append(active, r)
			}
			recs, _ := reg.WritesFor(id)
			res.Deliveries += recs
			if recs > 1 {
				res.Redelivered++
			}
		}
		accounted += len(active)
		switch b.status {
		case "confirmed":
			if len(active) != 1 {
				v.add("registry", "confirmed booking %s has %d active registry reservations, want exactly 1", b.id, len(active))
				continue
			}
			r := active[0]
			if r.ClinicID != b.clinic || r.Date.Format("2006-01-02") != b.date || r.PersonID != b.person {
				v.add("registry", "confirmed booking %s is at %s on %s in the database, at %s on %s in the registry",
					b.id, b.clinic, b.date, r.ClinicID, r.Date.Format("2006-01-02"))
			}
		case "cancelled", "provisional":
			if len(active) != 0 {
				v.add("registry", "%s booking %s has %d active registry reservations, want none", b.status, b.id, len(active))
			}
		}
	}
	_, res.RegistryActive = reg.Reservations()
	if res.RegistryActive != accounted {
		v.add("registry", "the registry holds %d active reservations, the bookings account for %d", res.RegistryActive, accounted)
	}
	return nil
}
