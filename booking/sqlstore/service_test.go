package sqlstore

import (
	"context"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
)

// The booking.Service over the real stores: dose 1 with dose 2, cancel,
// reschedule and assign, and their races.

// persons is a booking.PersonSource: everyone asked about exists, born on
// 1990-05-01 (in the cohort), with no doses, unless listed.
type persons struct {
	mu   sync.Mutex
	some map[string]booking.Person
}

func (p *persons) Person(_ context.Context, id string) (booking.Person, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if v, ok := p.some[id]; ok {
		return v, nil
	}
	return booking.Person{ID: id, BirthDate: booking.MustDate("1990-05-01")}, nil
}

// openPhase is inside the 2021 campaign's open phase: anyone books from the
// open wave.
var openPhase = kst("2021-08-25 12:00")

func newService(tb testing.TB, db *DB, people booking.PersonSource) *booking.Service {
	tb.Helper()
	svc, err := booking.NewService(booking.ServiceConfig{Store: db, People: people,
		Now: func() time.Time { return openPhase }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	return svc
}

func TestSecondDoseSQLite(t *testing.T) {
	t.Parallel()
	runSecondDoseTests(t, openSQLite)
}

func TestSecondDosePostgres(t *testing.T) {
	t.Parallel()
	openPostgres(t)
	runSecondDoseTests(t, openPostgres)
}

func runSecondDoseTests(t *testing.T, open func(testing.TB) *DB) {
	t.Run("BookCancelRescheduleKeepQuotas", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		seedCampaign(t, db)
		// c1: dose 1 on day1 and day2, dose 2 on their interval dates;
		// c2: dose 1 on day2 and dose 2 42 days later.
		d1c1, d1c1b := quota("c1", day1, 1, 0, 5), quota("c1", day2, 1, 0, 5)
		d2c1, d2c1b := quota("c1", day1.AddDays(42), 2, 0, 5), quota("c1", day2.AddDays(42), 2, 0, 5)
		d1c2, d2c2 := quota("c2", day2, 1, 0, 5), quota("c2", day2.AddDays(42), 2, 0, 5)
		mustSetQuotas(t, db, d1c1, d1c1b, d2c1, d2c1b, d1c2, d2c2)
		svc := newService(t, db, &persons{})
		ctx := ctxT(t)

		bs, err := svc.BookDoses(ctx, booking.BookRequest{PersonID: "p1", CampaignID: testCampaign, ClinicID: "c1", Date: day1, Product: "pfizer"})
		if err != nil {
			t.Fatal(err)
		}
		if len(bs) != 2 || bs[0].Dose != 1 || bs[1].Dose != 2 || bs[1].Date != day1.AddDays(42) || bs[1].ClinicID != "c1" ||
			bs[0].LinkedID != bs[1].ID || bs[1].LinkedID != bs[0].ID || bs[1].Wave != booking.OpenWave {
			t.Fatalf("BookDoses = %+v %+v", bs[0], bs[1])
		}
		for _, b := range bs {
			got, err := db.Booking(ctx, "p1", b.ID)
			if err != nil || got.LinkedID != b.LinkedID || got.Date != b.Date {
				t.Fatalf("stored %+v, %v; want %+v", got, err, b)
			}
		}
		wantBooked(t, db, d1c1, 1)
		wantBooked(t, db, d2c1, 1)
		if n := outboxRows(t, db); n != 2 {
			t.Fatalf("outbox rows = %d, want 2 (both doses)", n)
		}
		consistent(t, db)

		// Reschedule dose 1 to c2 on day2: dose 2 follows to c2, 42 days on.
		moved, err := svc.Reschedule(ctx, "p1", bs[0].ID, "c2", day2, "")
		if err != nil {
			t.Fatal(err)
		}
		d2, _ := db.Booking(ctx, "p1", bs[1].ID)
		if moved.ClinicID != "c2" || d2.ClinicID != "c2" || d2.Date != day2.AddDays(42) || d2.LinkedID != moved.ID {
			t.Fatalf("after reschedule: dose 1 %+v, dose 2 %+v", moved, d2)
		}
		wantBooked(t, db, d1c1, 0)
		wantBooked(t, db, d2c1, 0)
		wantBooked(t, db, d1c2, 1)
		wantBooked(t, db, d2c2, 1)
		if n := outboxRows(t, db); n != 4 {
			t.Fatalf("outbox rows = %d, want 4", n)
		}
		consistent(t, db)

		// Back to c1 on day2 where dose 2 is full (its interval date and the
		// day before, within the tolerance): nothing changes.
		mustSetQuotas(t, db, quota("c1", day2.AddDays(42), 2, 0, 0), quota("c1", day1.AddDays(42), 2, 0, 0))
		_, err = svc.Reschedule(ctx, "p1", bs[0].ID, "c1", day2, "")
		wantCode(t, err, booking.ESECONDDOSE)
		if got, _ := db.Booking(ctx, "p1", bs[0].ID); got.ClinicID != "c2" || got.Date != day2 {
			t.Fatalf("failed reschedule moved dose 1: %+v", got)
		}
		wantBooked(t, db, d1c1b, 0)
		wantBooked(t, db, d1c2, 1)
		wantBooked(t, db, d2c2, 1)
		if n := outboxRows(t, db); n != 4 {
			t.Fatalf("failed reschedule wrote events: %d", n)
		}

		// Dose 2 alone: within the tolerance of its interval date only.
		_, err = svc.Reschedule(ctx, "p1", bs[1].ID, "c2", day2.AddDays(42+4), "")
		wantCode(t, err, booking.EINVALID)
		mustSetQuotas(t, db, quota("c2", day2.AddDays(41), 2, 0, 1))
		if got, err := svc.Reschedule(ctx, "p1", bs[1].ID, "c2", day2.AddDays(41), ""); err != nil || got.Date != day2.AddDays(41) {
			t.Fatalf("dose 2 within tolerance = %+v, %v", got, err)
		}
		wantBooked(t, db, d2c2, 0)
		consistent(t, db)

		// Cancel dose 1: both go, both quotas get their dose back.
		if _, err := svc.Cancel(ctx, "p1", bs[0].ID, ""); err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			got, _ := db.Booking(ctx, "p1", b.ID)
			if got.Active() {
				t.Fatalf("after cancelling dose 1, %+v is active", got)
			}
		}
		if got, _ := db.Booking(ctx, "p1", bs[1].ID); got.CancelReason != booking.ReasonDose1Cancelled {
			t.Fatalf("dose 2 cancel reason %q", got.CancelReason)
		}
		if n := outboxRows(t, db); n != 7 {
			t.Fatalf("outbox rows = %d, want 7 (two cancel events)", n)
		}
		consistent(t, db)

		// Cancel dose 2 alone: dose 1 stays, only dose 2's dose returns.
		mustSetQuotas(t, db, d2c1)
		bs, err = svc.BookDoses(ctx, booking.BookRequest{PersonID: "p2", CampaignID: testCampaign, ClinicID: "c1", Date: day1, Product: "pfizer"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Cancel(ctx, "p2", bs[1].ID, ""); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.Booking(ctx, "p2", bs[0].ID); !got.Active() {
			t.Fatal("cancelling dose 2 cancelled dose 1")
		}
		wantBooked(t, db, d1c1, 1)
		wantBooked(t, db, d2c1, 0)
		// …and dose 1 then moves alone.
		if _, err := svc.Reschedule(ctx, "p2", bs[0].ID, "c1", day2, ""); err != nil {
			t.Fatalf("dose 1 without its dose 2 moves alone: %v", err)
		}
		consistent(t, db)
	})

	t.Run("ToleranceNearestFirst", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		seedCampaign(t, db)
		target := day1.AddDays(42)
		// Nothing on the interval date; one each 1 day either side, one 3
		// days after: the earlier of the two nearest first.
		mustSetQuotas(t, db, quota("c1", day1, 1, 0, 10),
			quota("c1", target.AddDays(-1), 2, 0, 1), quota("c1", target.AddDays(1), 2, 0, 1),
			quota("c1", target.AddDays(3), 2, 0, 1), quota("c1", target.AddDays(4), 2, 0, 5))
		svc := newService(t, db, &persons{})
		ctx := ctxT(t)
		var got []booking.Date
		for i := range 3 {
			bs, err := svc.BookDoses(ctx, booking.BookRequest{PersonID: fmt.Sprintf("t%d", i), CampaignID: testCampaign, ClinicID: "c1", Date: day1, Product: "pfizer"})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, bs[1].Date)
		}
		want := []booking.Date{target.AddDays(-1), target.AddDays(1), target.AddDays(3)}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("dose 2 dates %v, want %v", got, want)
			}
		}
		// Beyond the tolerance (4 days) is not used: the booking fails
		// whole, holding nothing.
		before, events := quotaOf(t, db, quota("c1", day1, 1, 0, 0)).Booked, outboxRows(t, db)
		_, err := svc.Book(ctx, booking.BookRequest{PersonID: "t9", CampaignID: testCampaign, ClinicID: "c1", Date: day1, Product: "pfizer"})
		wantCode(t, err, booking.ESECONDDOSE)
		if quotaOf(t, db, quota("c1", day1, 1, 0, 0)).Booked != before || outboxRows(t, db) != events ||
			count(t, db, "SELECT COUNT(*) FROM bookings WHERE person_id = 't9'") != 0 {
			t.Fatal("second_dose_unavailable held something")
		}
		consistent(t, db)
	})

	t.Run("SingleDoseProductBooksOne", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		seedCampaign(t, db)
		q := booking.Quota{CampaignID: testCampaign, ClinicID: "c1", Date: day1, Product: "janssen", Dose: 1, Wave: 0, Capacity: 1}
		mustSetQuotas(t, db, q)
		bs, err := newService(t, db, &persons{}).BookDoses(ctxT(t), booking.BookRequest{PersonID: "j", CampaignID: testCampaign, ClinicID: "c1", Date: day1, Product: "janssen"})
		if err != nil || len(bs) != 1 || bs[0].LinkedID != "" {
			t.Fatalf("janssen = %+v, %v", bs, err)
		}
		wantBooked(t, db, q, 1)
	})
}

// raceTwoDoses has people book dose 1 of pfizer at once: 50 doses 1, and
// dose 2 room for d2 on the interval date plus d2b a day earlier. Exactly
// min(50, d2+d2b) people get both doses, everyone else is sold out or
// second_dose_unavailable, and no quota row is oversold.
func raceTwoDoses(t *testing.T, db *DB, people, d2, d2b int) {
	seedCampaign(t, db)
	target := day1.AddDays(42)
	q1, q2, q2b := quota("c1", day1, 1, 0, 50), quota("c1", target, 2, 0, d2), quota("c1", target.AddDays(-1), 2, 0, d2b)
	mustSetQuotas(t, db, q1, q2, q2b)
	svc := newService(t, db, &persons{})
	errs := make([]error, people)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range people {
		wg.Go(func() {
			<-start
			_, errs[i] = svc.Book(context.Background(), booking.BookRequest{PersonID: fmt.Sprintf("r%04d", i),
				CampaignID: testCampaign, ClinicID: "c1", Date: day1, Product: "pfizer"})
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch booking.ErrorCode(err) {
		case "":
			ok++
		case booking.ESOLDOUT, booking.ESECONDDOSE:
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	want := min(50, d2+d2b)
	if ok != want {
		t.Fatalf("%d booked, want %d", ok, want)
	}
	wantBooked(t, db, q1, want)
	if got := quotaOf(t, db, q2).Booked + quotaOf(t, db, q2b).Booked; got != want {
		t.Fatalf("dose 2 rows booked %d, want %d", got, want)
	}
	if got := quotaOf(t, db, q2).Booked; got != min(want, d2) {
		t.Fatalf("interval date booked %d, want %d (it is preferred)", got, min(want, d2))
	}
	if n := bookingRows(t, db); n != 2*want {
		t.Fatalf("bookings = %d, want %d", n, 2*want)
	}
	if n := outboxRows(t, db); n != 2*want {
		t.Fatalf("outbox rows = %d, want %d", n, 2*want)
	}
	consistent(t, db)
}

// Both quotas run out together: 50 doses 1, 30 + 20 doses 2; the losers
// see sold_out or second_dose_unavailable depending on which went first.
func TestRaceTwoDosesPostgres(t *testing.T) {
	t.Parallel()
	raceTwoDoses(t, openPostgres(t), 400, 30, 20)
}

// Dose 2 runs out first: 40 people get both doses, the rest
// second_dose_unavailable.
func TestRaceTwoDosesSQLite(t *testing.T) {
	t.Parallel()
	raceTwoDoses(t, openSQLite(t), 80, 30, 10)
}

// slots yields one candidate per clinic, in the order given (nearest first).
func slots(clinics []string, d booking.Date, product string) iter.Seq[booking.Slot] {
	return func(yield func(booking.Slot) bool) {
		for _, c := range clinics {
			if !yield(booking.Slot{ClinicID: c, Date: d, Product: product}) {
				return
			}
		}
	}
}

// 200 people assign near one point with 50 doses over 8 clinics: exactly
// 50 bookings, no quota oversold, and nearest first: every clinic used
// has every nearer clinic sold out.
func TestAssignUnderContentionPostgres(t *testing.T) {
	t.Parallel()
	db := openPostgres(t)
	seedCampaign(t, db)
	ctx := ctxT(t)
	doses := []int{3, 9, 5, 7, 2, 11, 6, 7} // 50, by distance
	var clinics []string
	var cs []booking.Clinic
	var qs []booking.Quota
	for i, n := range doses {
		id := fmt.Sprintf("near%d", i)
		clinics = append(clinics, id)
		cs = append(cs, booking.Clinic{ID: id, Name: id, Region: "11-110", Lat: 37.5 + float64(i)/100, Lon: 127, Products: []string{"janssen", "pfizer"}})
		qs = append(qs, booking.Quota{CampaignID: testCampaign, ClinicID: id, Date: day1, Product: "janssen", Dose: 1, Wave: 0, Capacity: n})
	}
	if err := db.PutClinics(ctx, cs); err != nil {
		t.Fatal(err)
	}
	mustSetQuotas(t, db, qs...)
	svc := newService(t, db, &persons{})
	const people = 200
	got := make([]*booking.Booking, people)
	errs := make([]error, people)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range people {
		wg.Go(func() {
			<-start
			got[i], errs[i] = svc.Assign(context.Background(), booking.AssignRequest{PersonID: fmt.Sprintf("a%03d", i),
				CampaignID: testCampaign, Product: "janssen", Candidates: slots(clinics, day1, "janssen")})
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch booking.ErrorCode(err) {
		case "":
			ok++
		case booking.ESOLDOUT:
		default:
			t.Errorf("person %d: %v", i, err)
		}
	}
	if ok != 50 {
		t.Fatalf("%d assigned, want 50", ok)
	}
	rank := map[string]int{}
	for i, c := range clinics {
		rank[c] = i
	}
	for i, q := range qs {
		if b := quotaOf(t, db, q).Booked; b != doses[i] {
			t.Fatalf("clinic %s booked %d of %d", q.ClinicID, b, doses[i])
		}
	}
	for _, b := range got {
		if b == nil {
			continue
		}
		for _, q := range qs[:rank[b.ClinicID]] {
			if r := quotaOf(t, db, q).Remaining(); r != 0 {
				t.Fatalf("booked at %s while nearer %s has %d left", b.ClinicID, q.ClinicID, r)
			}
		}
	}
	if n := outboxRows(t, db); n != 50 {
		t.Fatalf("outbox rows = %d, want 50", n)
	}
	consistent(t, db)
}

// Assign passes over a clinic whose dose 2 is gone and books the next.
func TestAssignSkipsSecondDoseUnavailableSQLite(t *testing.T) {
	t.Parallel()
	db := openSQLite(t)
	seedCampaign(t, db)
	target := day1.AddDays(42)
	mustSetQuotas(t, db, quota("c1", day1, 1, 0, 5), quota("c2", day1, 1, 0, 5), quota("c2", target, 2, 0, 5))
	svc := newService(t, db, &persons{})
	b, err := svc.Assign(ctxT(t), booking.AssignRequest{PersonID: "a", CampaignID: testCampaign, Candidates: slots([]string{"c1", "c2"}, day1, "pfizer")})
	if err != nil || b.ClinicID != "c2" || b.LinkedID == "" {
		t.Fatalf("Assign = %+v, %v; want c2 with dose 2", b, err)
	}
	wantBooked(t, db, quota("c1", day1, 1, 0, 5), 0)
	consistent(t, db)
}
