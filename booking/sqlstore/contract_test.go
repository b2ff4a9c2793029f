package sqlstore

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
)

func TestStoreSQLite(t *testing.T) {
	t.Parallel()
	runStoreContract(t, openSQLite)
}

func TestStorePostgres(t *testing.T) {
	t.Parallel()
	openPostgres(t) // skip the whole suite early when PostgreSQL is absent
	runStoreContract(t, openPostgres)
}

// runStoreContract checks every booking.Store method's contract against a
// fresh database from open for each subtest.
func runStoreContract(t *testing.T, open func(testing.TB) *DB) {
	t.Run("PingAndMigrations", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := ctxT(t)
		if err := db.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		cur, latest, err := db.MigrationVersion(ctx)
		if err != nil || cur != latest || latest < 3 {
			t.Fatalf("MigrationVersion = %d, %d, %v; want equal and ≥ 3", cur, latest, err)
		}
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
	})

	t.Run("Campaigns", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := ctxT(t)
		if _, err := db.Campaign(ctx, "nope"); booking.ErrorCode(err) != booking.ENOTFOUND {
			t.Fatalf("Campaign(unknown) = %v, want ENOTFOUND", err)
		}
		c := &booking.Campaign{
			ID: "b", Name: "18-49", Products: []booking.Product{{ID: "pfizer", Doses: 2, IntervalDays: 42}},
			BornFrom: booking.MustDate("1972-01-01"), BornTo: booking.MustDate("2003-12-31"),
			VaccinationFrom: day1, VaccinationTo: booking.MustDate("2021-09-30"), TimeZone: "Asia/Seoul",
			Phases: []booking.Phase{{Kind: booking.PhaseRotation, Starts: booking.MustDate("2021-08-09"), Days: 10,
				Opens: 20 * time.Hour, Closes: 42 * time.Hour}},
			OpenUntil: time.Date(2021, 9, 18, 9, 0, 0, 0, time.UTC), RegistryPolicy: booking.Provisional,
		}
		if err := db.PutCampaign(ctx, c); err != nil {
			t.Fatalf("PutCampaign: %v", err)
		}
		got, err := db.Campaign(ctx, "b")
		if err != nil || !reflect.DeepEqual(got, c) {
			t.Fatalf("Campaign = %+v, %v; want %+v", got, err, c)
		}
		c2 := *c
		c2.Name = "renamed"
		if err := db.PutCampaign(ctx, &c2); err != nil {
			t.Fatalf("PutCampaign replace: %v", err)
		}
		a := *c
		a.ID, a.Name = "a", "first"
		if err := db.PutCampaign(ctx, &a); err != nil {
			t.Fatalf("PutCampaign: %v", err)
		}
		all, err := db.Campaigns(ctx)
		if err != nil || len(all) != 2 || all[0].ID != "a" || all[1].Name != "renamed" {
			t.Fatalf("Campaigns = %+v, %v", all, err)
		}
		wantCode(t, db.PutCampaign(ctx, &booking.Campaign{}), booking.EINVALID)
	})

	t.Run("Clinics", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := ctxT(t)
		if _, err := db.Clinic(ctx, "nope"); booking.ErrorCode(err) != booking.ENOTFOUND {
			t.Fatalf("Clinic(unknown) = %v, want ENOTFOUND", err)
		}
		cs := []booking.Clinic{
			{ID: "c2", Name: "Two", Region: "11-110", Lat: 37.57, Lon: 126.98, Products: []string{"pfizer", "moderna"}},
			{ID: "c1", Name: "One", Region: "26-260", Lat: 35.1, Lon: 129.04, Products: []string{}},
		}
		if err := db.PutClinics(ctx, cs); err != nil {
			t.Fatalf("PutClinics: %v", err)
		}
		cs[0].Name = "Two renamed"
		if err := db.PutClinics(ctx, cs[:1]); err != nil {
			t.Fatalf("PutClinics replace: %v", err)
		}
		got, err := db.Clinic(ctx, "c2")
		if err != nil || !reflect.DeepEqual(*got, cs[0]) {
			t.Fatalf("Clinic = %+v, %v; want %+v", got, err, cs[0])
		}
		all, err := db.Clinics(ctx)
		if err != nil || !reflect.DeepEqual(all, []booking.Clinic{cs[1], cs[0]}) {
			t.Fatalf("Clinics = %+v, %v", all, err)
		}
		wantCode(t, db.PutClinics(ctx, []booking.Clinic{{Name: "no id"}}), booking.EINVALID)
	})

	t.Run("Quotas", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := ctxT(t)
		q1, q2, q3 := quota("c1", day1, 1, 1, 5), quota("c1", day1, 1, 0, 3), quota("c0", day2, 1, 2, 1)
		mustSetQuotas(t, db, q1, q2, q3)
		all, err := db.Quotas(ctx, testCampaign)
		if err != nil || !reflect.DeepEqual(all, []booking.Quota{q3, q2, q1}) {
			t.Fatalf("Quotas = %+v, %v; want ordered by clinic, date, …, wave", all, err)
		}
		if qs, err := db.Quotas(ctx, "other"); err != nil || len(qs) != 0 {
			t.Fatalf("Quotas(other) = %v, %v", qs, err)
		}
		changed, v0, err := db.QuotasChangedSince(ctx, testCampaign, 0)
		if err != nil || len(changed) != 3 || v0 <= 0 {
			t.Fatalf("QuotasChangedSince(0) = %d rows, %d, %v", len(changed), v0, err)
		}
		if changed, v, err := db.QuotasChangedSince(ctx, testCampaign, v0); err != nil || len(changed) != 0 || v != v0 {
			t.Fatalf("QuotasChangedSince(newest) = %v, %d, %v; want nothing, %d", changed, v, err, v0)
		}

		book(t, db, newBooking("p1", "c1", day1, 1, 1), newBooking("p2", "c1", day1, 1, 1))
		changed, v1, err := db.QuotasChangedSince(ctx, testCampaign, v0)
		if err != nil || len(changed) != 1 || changed[0].Booked != 2 || changed[0].Wave != 1 || v1 <= v0 {
			t.Fatalf("after booking: QuotasChangedSince = %+v, %d, %v", changed, v1, err)
		}

		// Capacity changes keep what is booked.
		q1.Capacity = 2
		mustSetQuotas(t, db, q1)
		if got := quotaOf(t, db, q1); got.Capacity != 2 || got.Booked != 2 {
			t.Fatalf("after capacity change: %+v", got)
		}
		changed, v2, _ := db.QuotasChangedSince(ctx, testCampaign, v1)
		if len(changed) != 1 || v2 <= v1 {
			t.Fatalf("capacity change not seen as a change: %+v, %d", changed, v2)
		}

		// Below booked: ECONFLICT, and the other rows of the call are not set.
		q2.Capacity = 10
		q1.Capacity = 1
		wantCode(t, db.SetQuotas(ctx, []booking.Quota{q2, q1}), booking.ECONFLICT)
		if got := quotaOf(t, db, q2); got.Capacity != 3 {
			t.Fatalf("failed SetQuotas changed another row: %+v", got)
		}
		if got := quotaOf(t, db, q1); got.Capacity != 2 {
			t.Fatalf("failed SetQuotas changed the row: %+v", got)
		}

		for _, bad := range []booking.Quota{
			{ClinicID: "c1", Date: day1, Product: "pfizer", Dose: 1},
			quota("c1", booking.Date{}, 1, 0, 1),
			quota("c1", day1, 0, 0, 1),
			quota("c1", day1, 1, -1, 1),
			quota("c1", day1, 1, 0, -1),
		} {
			wantCode(t, db.SetQuotas(ctx, []booking.Quota{bad}), booking.EINVALID)
		}
	})

	t.Run("Bulk", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := ctxT(t)
		const n = 2*bulkRows + 1 // three bulk statements
		var qs []booking.Quota
		var cs []booking.Clinic
		for i := range n {
			qs = append(qs, quota(fmt.Sprintf("c%04d", i), day1, 1, 0, 2))
			cs = append(cs, booking.Clinic{ID: fmt.Sprintf("c%04d", i), Name: "old"})
		}
		qs = append(qs, quota("c0000", day1, 1, 0, 5))                           // listed twice: the last entry wins
		cs = append(cs, booking.Clinic{ID: "c0000", Name: "last", Region: "11"}) // likewise
		mustSetQuotas(t, db, qs...)
		if err := db.PutClinics(ctx, cs); err != nil {
			t.Fatalf("PutClinics: %v", err)
		}
		all, err := db.Quotas(ctx, testCampaign)
		if err != nil || len(all) != n || all[0].Capacity != 5 || all[n-1].Capacity != 2 {
			t.Fatalf("Quotas: %d rows, %v; first %+v", len(all), err, all[0])
		}
		clinics, err := db.Clinics(ctx)
		if err != nil || len(clinics) != n || clinics[0].Name != "last" {
			t.Fatalf("Clinics: %d, %v; first %+v", len(clinics), err, clinics[0])
		}

		// A conflict in the last statement undoes the earlier ones.
		last := quota(fmt.Sprintf("c%04d", n-1), day1, 1, 0, 2)
		book(t, db, newBooking("p1", last.ClinicID, day1, 1, 0), newBooking("p2", last.ClinicID, day1, 1, 0))
		for i := range qs {
			qs[i].Capacity = 1
		}
		wantCode(t, db.SetQuotas(ctx, qs), booking.ECONFLICT)
		if got := quotaOf(t, db, qs[0]); got.Capacity != 5 {
			t.Fatalf("failed bulk SetQuotas changed the first row: %+v", got)
		}
	})

	t.Run("CreateAndRead", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := ctxT(t)
		q := quota("c1", day1, 1, 3, 10)
		mustSetQuotas(t, db, q)
		b1 := newBooking("p1", "c1", day1, 1, 3)
		b1.CreatedAt = time.Date(2021, 8, 10, 20, 0, 0, 123456000, time.UTC)
		b1.UpdatedAt = b1.CreatedAt
		evs := eventsFor(booking.EventBookingConfirmed, b1)
		if err := db.CreateBookings(ctx, []*booking.Booking{b1}, evs); err != nil {
			t.Fatalf("CreateBookings: %v", err)
		}
		wantBooked(t, db, q, 1)

		got, err := db.Booking(ctx, "p1", b1.ID)
		if err != nil || !reflect.DeepEqual(got, b1) {
			t.Fatalf("Booking = %+v, %v; want %+v", got, err, b1)
		}
		if _, err := db.Booking(ctx, "p2", b1.ID); booking.ErrorCode(err) != booking.ENOTFOUND {
			t.Fatalf("Booking by another person = %v, want ENOTFOUND", err)
		}
		if _, err := db.Booking(ctx, "p1", booking.NewID()); booking.ErrorCode(err) != booking.ENOTFOUND {
			t.Fatalf("Booking(unknown) = %v, want ENOTFOUND", err)
		}
		if got, err := db.BookingByID(ctx, b1.ID); err != nil || got.PersonID != "p1" {
			t.Fatalf("BookingByID = %+v, %v", got, err)
		}
		if _, err := db.BookingByID(ctx, "nope"); booking.ErrorCode(err) != booking.ENOTFOUND {
			t.Fatalf("BookingByID(unknown) = %v, want ENOTFOUND", err)
		}

		// The outbox row is the event as given.
		var row struct {
			ID, Key, Type, Payload, Headers string
			Published                       *string
		}
		err = db.DB().QueryRowxContext(ctx, "SELECT id, aggregate_key, event_type, payload, headers, published_at FROM outbox").
			Scan(&row.ID, &row.Key, &row.Type, &row.Payload, &row.Headers, &row.Published)
		if err != nil {
			t.Fatalf("read outbox: %v", err)
		}
		var headers map[string]string
		if err := json.Unmarshal([]byte(row.Headers), &headers); err != nil {
			t.Fatalf("outbox headers %q: %v", row.Headers, err)
		}
		if row.ID != evs[0].ID || row.Key != "p1" || row.Type != string(booking.EventBookingConfirmed) ||
			row.Payload != string(evs[0].Payload) || !reflect.DeepEqual(headers, evs[0].Headers) || row.Published != nil {
			t.Fatalf("outbox row = %+v, want event %+v", row, evs[0])
		}

		// Dose 2 with dose 1 in one call; newest first in the list.
		q2 := quota("c1", day2, 2, 0, 1)
		mustSetQuotas(t, db, quota("c1", day1, 1, 0, 1), q2)
		b2 := newBooking("p2", "c1", day1, 1, 0)
		b3 := newBooking("p2", "c1", day2, 2, 0)
		b3.CreatedAt = b2.CreatedAt.Add(time.Second)
		book(t, db, b2, b3)
		list, err := db.Bookings(ctx, "p2")
		if err != nil || len(list) != 2 || list[0].ID != b3.ID || list[1].ID != b2.ID {
			t.Fatalf("Bookings(p2) = %+v, %v; want dose 2 then dose 1", list, err)
		}
		if list, err := db.Bookings(ctx, "nobody"); err != nil || len(list) != 0 {
			t.Fatalf("Bookings(nobody) = %v, %v", list, err)
		}
		if n := outboxRows(t, db); n != 3 {
			t.Fatalf("outbox rows = %d, want 3", n)
		}
	})

	t.Run("CreateErrorsWriteNothing", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := ctxT(t)
		full, open1, dose2 := quota("c1", day1, 1, 1, 1), quota("c1", day1, 1, 0, 5), quota("c1", day2, 2, 0, 0)
		mustSetQuotas(t, db, full, open1, dose2)
		first := newBooking("p1", "c1", day1, 1, 1)
		book(t, db, first)
		before := outboxRows(t, db)

		check := func(t *testing.T, code booking.Code, bs ...*booking.Booking) {
			t.Helper()
			wantCode(t, db.CreateBookings(ctx, bs, eventsFor(booking.EventBookingConfirmed, bs...)), code)
			if n := bookingRows(t, db); n != 1 {
				t.Fatalf("bookings = %d after a failed create, want 1", n)
			}
			if n := outboxRows(t, db); n != before {
				t.Fatalf("outbox rows = %d after a failed create, want %d", n, before)
			}
			wantBooked(t, db, full, 1)
			wantBooked(t, db, open1, 0)
			wantBooked(t, db, dose2, 0)
		}
		t.Run("SoldOut", func(t *testing.T) { check(t, booking.ESOLDOUT, newBooking("p2", "c1", day1, 1, 1)) })
		t.Run("NoQuotaRow", func(t *testing.T) { check(t, booking.ESOLDOUT, newBooking("p2", "c9", day1, 1, 0)) })
		t.Run("SecondDoseSoldOut", func(t *testing.T) {
			t.Parallel()
			check(t, booking.ESOLDOUT, newBooking("p2", "c1", day1, 1, 0), newBooking("p2", "c1", day2, 2, 0))
		})
		t.Run("AlreadyBooked", func(t *testing.T) { check(t, booking.EALREADYBOOKED, newBooking("p1", "c1", day1, 1, 0)) })
		t.Run("DuplicateID", func(t *testing.T) {
			t.Parallel()
			b := newBooking("p3", "c1", day1, 1, 0)
			b.ID = first.ID
			check(t, booking.ECONFLICT, b)
		})
		t.Run("Invalid", func(t *testing.T) {
			t.Parallel()
			b := newBooking("p3", "c1", day1, 1, 0)
			b.Status = booking.StatusCancelled
			check(t, booking.EINVALID, b)
			check(t, booking.EINVALID)
		})
		t.Run("BadEvent", func(t *testing.T) {
			t.Parallel()
			b := newBooking("p3", "c1", day1, 1, 0)
			ev := eventsFor(booking.EventBookingConfirmed, b)
			ev[0].Payload = []byte("not json")
			wantCode(t, db.CreateBookings(ctx, []*booking.Booking{b}, ev), booking.EINVALID)
			check(t, booking.EALREADYBOOKED, newBooking("p1", "c1", day1, 1, 0)) // and state is unchanged
		})
		t.Run("DuplicateEventID", func(t *testing.T) {
			t.Parallel()
			b := newBooking("p3", "c1", day1, 1, 0)
			ev := eventsFor(booking.EventBookingConfirmed, b, b)
			ev[1].ID = ev[0].ID
			wantCode(t, db.CreateBookings(ctx, []*booking.Booking{b}, ev), booking.ECONFLICT)
			check(t, booking.EALREADYBOOKED, newBooking("p1", "c1", day1, 1, 0))
		})
		// One booking with one event is one statement on PostgreSQL
		// (bookOne): an event id already in the outbox undoes the dose
		// taken and the booking written in the same statement.
		t.Run("StoredEventID", func(t *testing.T) {
			t.Parallel()
			var stored string
			if err := db.x.GetContext(ctx, &stored, "SELECT id FROM outbox ORDER BY seq LIMIT 1"); err != nil {
				t.Fatal(err)
			}
			b := newBooking("p4", "c1", day1, 1, 0)
			ev := eventsFor(booking.EventBookingConfirmed, b)
			ev[0].ID = stored
			wantCode(t, db.CreateBookings(ctx, []*booking.Booking{b}, ev), booking.ECONFLICT)
			check(t, booking.EALREADYBOOKED, newBooking("p1", "c1", day1, 1, 0))
		})
	})

	// A first dose with its second on the first of its dates with one
	// left (Reserve's usual case; one statement on PostgreSQL): the dates'
	// order is the preference, and the refusals are the transaction's —
	// the first dose's before the second's, nothing written.
	t.Run("ReservePair", func(t *testing.T) {
		t.Parallel()
		d2a, d2b, d2c := day1.AddDays(21), day1.AddDays(20), day1.AddDays(22)
		reserve := func(db *DB, person, clinic string) (*booking.Booking, error) {
			first, second := newBooking(person, clinic, day1, 1, 0), newBooking(person, clinic, day1, 2, 0)
			first.LinkedID, second.LinkedID = second.ID, first.ID
			return second, db.Reserve(ctxT(t), booking.Reservation{Create: []*booking.Booking{first, second}, Flex: second,
				FlexDates: []booking.Date{d2a, d2b, d2c},
				Events:    func() []booking.Event { return eventsFor(booking.EventBookingConfirmed, first, second) }})
		}
		t.Run("Preference", func(t *testing.T) {
			t.Parallel()
			db := open(t)
			// d2a (preferred) is full; d2b and d2c have room: d2b, though
			// d2c's date is later and d2b's earlier than d2a's.
			mustSetQuotas(t, db, quota("c1", day1, 1, 0, 5), quota("c1", d2a, 2, 0, 0), quota("c1", d2b, 2, 0, 5), quota("c1", d2c, 2, 0, 5))
			second, err := reserve(db, "p1", "c1")
			if err != nil {
				t.Fatal(err)
			}
			if second.Date != d2b {
				t.Fatalf("second dose on %s, want %s", second.Date, d2b)
			}
			wantBooked(t, db, quota("c1", day1, 1, 0, 5), 1)
			wantBooked(t, db, quota("c1", d2b, 2, 0, 5), 1)
			wantBooked(t, db, quota("c1", d2c, 2, 0, 5), 0)
			if b, o := bookingRows(t, db), outboxRows(t, db); b != 2 || o != 2 {
				t.Fatalf("bookings %d, outbox rows %d; want 2 and 2", b, o)
			}
			if _, err := reserve(db, "p1", "c1"); booking.ErrorCode(err) != booking.EALREADYBOOKED {
				t.Fatalf("the same person again: %v, want already_booked", err)
			}
			wantBooked(t, db, quota("c1", day1, 1, 0, 5), 1)
		})
		for _, c := range []struct {
			name          string
			first, second int // capacity of the first dose's row, of each second's
			want          booking.Code
		}{
			{"FirstSoldOut", 0, 5, booking.ESOLDOUT},
			{"SecondSoldOut", 5, 0, booking.ESECONDDOSE},
			{"BothSoldOut", 0, 0, booking.ESOLDOUT},
		} {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				db := open(t)
				mustSetQuotas(t, db, quota("c1", day1, 1, 0, c.first), quota("c1", d2a, 2, 0, c.second), quota("c1", d2b, 2, 0, c.second))
				second, err := reserve(db, "p1", "c1")
				if booking.ErrorCode(err) != c.want {
					t.Fatalf("Reserve: %v, want %s", err, c.want)
				}
				if second.Date != day1 {
					t.Fatalf("a refused reservation set the second dose's date to %s", second.Date)
				}
				if _, err := reserve(db, "p2", "c9"); booking.ErrorCode(err) != booking.ESOLDOUT {
					t.Fatalf("Reserve at a clinic without rows: %v, want sold_out", err)
				}
				wantBooked(t, db, quota("c1", day1, 1, 0, c.first), 0)
				wantBooked(t, db, quota("c1", d2a, 2, 0, c.second), 0)
				if b, o := bookingRows(t, db), outboxRows(t, db); b != 0 || o != 0 {
					t.Fatalf("bookings %d, outbox rows %d after a refusal; want none", b, o)
				}
			})
		}
	})

	t.Run("Cancel", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := ctxT(t)
		w3, w0 := quota("c1", day1, 1, 3, 1), quota("c1", day1, 1, 0, 1)
		mustSetQuotas(t, db, w3, w0)
		b := newBooking("p1", "c1", day1, 1, 3)
		other := newBooking("p2", "c1", day1, 1, 0)
		book(t, db, b, other)

		// Another person's booking: not found, nothing changes.
		stranger := *b
		stranger.PersonID = "p2"
		wantCode(t, db.CancelBookings(ctx, []*booking.Booking{&stranger}, eventsFor(booking.EventBookingCancelled, &stranger)), booking.ENOTFOUND)
		unknown := newBooking("p1", "c1", day1, 1, 3)
		wantCode(t, db.CancelBookings(ctx, []*booking.Booking{unknown}, nil), booking.ENOTFOUND)
		if n := outboxRows(t, db); n != 2 {
			t.Fatalf("outbox rows = %d after failed cancels, want 2", n)
		}
		wantBooked(t, db, w3, 1)

		c := *b
		c.Status, c.CancelReason, c.UpdatedAt = booking.StatusCancelled, "person", b.UpdatedAt.Add(time.Minute)
		if err := db.CancelBookings(ctx, []*booking.Booking{&c}, eventsFor(booking.EventBookingCancelled, &c)); err != nil {
			t.Fatalf("CancelBookings: %v", err)
		}
		wantBooked(t, db, w3, 0) // back to its own wave
		wantBooked(t, db, w0, 1)
		got, err := db.Booking(ctx, "p1", b.ID)
		if err != nil || got.Status != booking.StatusCancelled || got.CancelReason != "person" || !got.UpdatedAt.Equal(c.UpdatedAt.Truncate(time.Microsecond)) {
			t.Fatalf("cancelled booking = %+v, %v", got, err)
		}
		if n := outboxRows(t, db); n != 3 {
			t.Fatalf("outbox rows = %d, want 3", n)
		}

		wantCode(t, db.CancelBookings(ctx, []*booking.Booking{&c}, eventsFor(booking.EventBookingCancelled, &c)), booking.EALREADYCANCELLED)
		if n := outboxRows(t, db); n != 3 {
			t.Fatalf("outbox rows = %d after a repeated cancel, want 3", n)
		}
		wantBooked(t, db, w3, 0)

		// The returned dose can be booked again, by the same person too.
		book(t, db, newBooking("p1", "c1", day1, 1, 3))
		wantBooked(t, db, w3, 1)
	})

	t.Run("Move", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := ctxT(t)
		from, to, full := quota("c1", day1, 1, 2, 1), quota("c2", day2, 1, 0, 1), quota("c3", day2, 1, 0, 1)
		mustSetQuotas(t, db, from, to, full)
		old := newBooking("p1", "c1", day1, 1, 2)
		book(t, db, old, newBooking("p9", "c3", day2, 1, 0))
		snapshot := func() (booking.Booking, [3]int, int) {
			got, err := db.Booking(ctx, "p1", old.ID)
			if err != nil {
				t.Fatalf("Booking: %v", err)
			}
			return *got, [3]int{quotaOf(t, db, from).Booked, quotaOf(t, db, to).Booked, quotaOf(t, db, full).Booked}, outboxRows(t, db)
		}
		move := func(nb *booking.Booking, old *booking.Booking) error {
			return db.MoveBookings(ctx, []booking.Move{{Old: old, New: nb}},
				eventsFor(booking.EventBookingRescheduled, nb))
		}
		moved := func(clinic string, d booking.Date, wave int) *booking.Booking {
			nb := *old
			nb.ClinicID, nb.Date, nb.Wave, nb.UpdatedAt = clinic, d, wave, old.UpdatedAt.Add(time.Hour)
			return &nb
		}

		// Failures change nothing.
		b0, q0, o0 := snapshot()
		wantCode(t, move(moved("c3", day2, 0), old), booking.ESOLDOUT)
		wantCode(t, move(moved("c4", day2, 0), old), booking.ESOLDOUT) // no such row
		stale := moved("c2", day2, 0)
		staleOld := *old
		staleOld.Wave = 7
		wantCode(t, move(stale, &staleOld), booking.ECONFLICT)
		strangerOld, strangerNew := *old, *moved("c2", day2, 0)
		strangerOld.PersonID, strangerNew.PersonID = "p2", "p2"
		wantCode(t, move(&strangerNew, &strangerOld), booking.ENOTFOUND)
		changedDose := moved("c2", day2, 0)
		changedDose.Dose = 2
		wantCode(t, move(changedDose, old), booking.EINVALID)
		if b1, q1, o1 := snapshot(); !reflect.DeepEqual(b0, b1) || q0 != q1 || o0 != o1 {
			t.Fatalf("failed moves changed state: %+v %v %d -> %+v %v %d", b0, q0, o0, b1, q1, o1)
		}

		// Within the same full row: release before take, so it succeeds.
		same := moved("c1", day1, 2)
		if err := move(same, old); err != nil {
			t.Fatalf("move within the same row: %v", err)
		}

		nb := moved("c2", day2, 0)
		if err := move(nb, same); err != nil {
			t.Fatalf("MoveBookings: %v", err)
		}
		got, q, o := snapshot()
		if q != [3]int{0, 1, 1} || o != o0+2 {
			t.Fatalf("after move: quotas %v outbox %d; want [0 1 1], %d", q, o, o0+2)
		}
		nb.UpdatedAt = nb.UpdatedAt.Truncate(time.Microsecond)
		if !reflect.DeepEqual(&got, nb) {
			t.Fatalf("moved booking = %+v, want %+v", got, nb)
		}

		// A cancelled booking cannot move.
		c := *nb
		c.Status = booking.StatusCancelled
		if err := db.CancelBookings(ctx, []*booking.Booking{&c}, nil); err != nil {
			t.Fatalf("CancelBookings: %v", err)
		}
		wantCode(t, move(moved("c1", day1, 2), nb), booking.EALREADYCANCELLED)
	})

	t.Run("SetStatus", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := ctxT(t)
		q := quota("c1", day1, 1, 0, 2)
		mustSetQuotas(t, db, q)
		b := newBooking("p1", "c1", day1, 1, 0)
		b.Status = booking.StatusProvisional
		b2 := newBooking("p2", "c1", day1, 1, 0)
		b2.Status = booking.StatusProvisional
		book(t, db, b, b2)
		at := time.Now()

		wantCode(t, db.SetStatus(ctx, "nope", booking.StatusProvisional, booking.StatusConfirmed, at, nil), booking.ENOTFOUND)
		wantCode(t, db.SetStatus(ctx, b.ID, booking.StatusConfirmed, booking.StatusProvisional, at, nil), booking.ECONFLICT)
		wantCode(t, db.SetStatus(ctx, b.ID, booking.StatusCancelled, booking.StatusConfirmed, at, nil), booking.EINVALID)
		if n := outboxRows(t, db); n != 2 {
			t.Fatalf("outbox rows after failed SetStatus = %d, want 2", n)
		}

		cb := *b
		cb.Status = booking.StatusConfirmed
		if err := db.SetStatus(ctx, b.ID, booking.StatusProvisional, booking.StatusConfirmed, at, eventsFor(booking.EventBookingConfirmed, &cb)); err != nil {
			t.Fatalf("SetStatus: %v", err)
		}
		if got, _ := db.BookingByID(ctx, b.ID); got.Status != booking.StatusConfirmed || !got.UpdatedAt.Equal(at.Truncate(time.Microsecond)) {
			t.Fatalf("after SetStatus: %+v", got)
		}
		if n := outboxRows(t, db); n != 3 {
			t.Fatalf("outbox rows = %d, want 3", n)
		}
		wantBooked(t, db, q, 2)

		// Cancelling through SetStatus returns the dose.
		if err := db.SetStatus(ctx, b2.ID, booking.StatusProvisional, booking.StatusCancelled, at, nil); err != nil {
			t.Fatalf("SetStatus cancel: %v", err)
		}
		wantBooked(t, db, q, 1)
		wantCode(t, db.SetStatus(ctx, b2.ID, booking.StatusProvisional, booking.StatusCancelled, at, nil), booking.EALREADYCANCELLED)
		wantBooked(t, db, q, 1)
	})

	t.Run("IdempotencyKeys", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := ctxT(t)
		rec, claimed, err := db.ClaimIdempotencyKey(ctx, "p1", "k1", "h1")
		if err != nil || !claimed || !rec.InProgress() {
			t.Fatalf("first claim = %+v, %v, %v", rec, claimed, err)
		}
		rec, claimed, err = db.ClaimIdempotencyKey(ctx, "p1", "k1", "h2")
		if err != nil || claimed || !rec.InProgress() || rec.RequestHash != "h1" {
			t.Fatalf("second claim = %+v, %v, %v; want the in-progress row", rec, claimed, err)
		}
		if _, claimed, _ := db.ClaimIdempotencyKey(ctx, "p2", "k1", "h1"); !claimed {
			t.Fatal("keys are per person: p2 could not claim k1")
		}
		if err := db.CompleteIdempotencyKey(ctx, "p1", "k1", 201, []byte(`{"id":"x"}`)); err != nil {
			t.Fatalf("Complete: %v", err)
		}
		rec, claimed, err = db.ClaimIdempotencyKey(ctx, "p1", "k1", "h1")
		if err != nil || claimed || rec.StatusCode != 201 || string(rec.ResponseBody) != `{"id":"x"}` {
			t.Fatalf("claim after complete = %+v, %v, %v", rec, claimed, err)
		}
		// Release keeps a completed key, drops an in-progress one.
		if err := db.ReleaseIdempotencyKey(ctx, "p1", "k1"); err != nil {
			t.Fatalf("Release: %v", err)
		}
		if _, claimed, _ := db.ClaimIdempotencyKey(ctx, "p1", "k1", "h1"); claimed {
			t.Fatal("release dropped a completed key")
		}
		if err := db.ReleaseIdempotencyKey(ctx, "p2", "k1"); err != nil {
			t.Fatalf("Release: %v", err)
		}
		if _, claimed, _ := db.ClaimIdempotencyKey(ctx, "p2", "k1", "h1"); !claimed {
			t.Fatal("released key could not be claimed again")
		}
		wantCode(t, db.CompleteIdempotencyKey(ctx, "p3", "k1", 200, nil), booking.ENOTFOUND)
		wantCode(t, db.CompleteIdempotencyKey(ctx, "p2", "k1", 0, nil), booking.EINVALID)
		if _, _, err := db.ClaimIdempotencyKey(ctx, "", "k1", "h"); booking.ErrorCode(err) != booking.EINVALID {
			t.Fatalf("claim without person = %v, want EINVALID", err)
		}

		if n, err := db.PurgeIdempotencyKeys(ctx, time.Hour); err != nil || n != 0 {
			t.Fatalf("Purge(1h) = %d, %v; want 0", n, err)
		}
		if n, err := db.PurgeIdempotencyKeys(ctx, -time.Second); err != nil || n != 2 {
			t.Fatalf("Purge(all) = %d, %v; want 2", n, err)
		}
	})
}
