// Package registrytest is the contract suite every adapter.Registry must
// pass: the mock registry, the gateway client against the mock's HTTP face,
// the Oracle adapter on PostgreSQL, and the Facade around any of them. One
// suite, so the implementations cannot drift apart.
//
//	func TestContract(t *testing.T) {
//		registrytest.Run(t, func(t *testing.T) (adapter.Registry, registrytest.Seeder) {
//			reg := registry.NewEmpty()
//			return reg, registrytest.SeederFunc(func(ctx context.Context, people []adapter.Record) error { … })
//		})
//	}
package registrytest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yeyak/yeyak/adapter"
)

// Seeder loads people (PersonID, BirthDate, Doses, Contraindicated,
// Excluded; Bookings are ignored) into the registry under test, as the
// registry's own master data. The suite seeds before it reads.
type Seeder interface {
	Seed(ctx context.Context, people []adapter.Record) error
}

// SeederFunc adapts a function to Seeder.
type SeederFunc func(ctx context.Context, people []adapter.Record) error

// Seed calls f.
func (f SeederFunc) Seed(ctx context.Context, people []adapter.Record) error { return f(ctx, people) }

func day(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t
}

// People the suite seeds. Ids do not look like the synthetic population's
// ("P" + 10 digits), so a registry that also holds a population is fine.
var (
	alice = adapter.Record{PersonID: "RT-ALICE", BirthDate: day("1961-03-14")}
	bob   = adapter.Record{PersonID: "RT-BOB", BirthDate: day("1955-12-01"), Doses: []adapter.Dose{
		{Product: "az", Number: 1, Date: day("2021-05-27")},
	}}
	carol = adapter.Record{PersonID: "RT-CAROL", BirthDate: day("1970-02-28"), Doses: []adapter.Dose{
		{Product: "pfizer", Number: 1, Date: day("2021-07-26")},
		{Product: "pfizer", Number: 2, Date: day("2021-08-30")},
	}}
	dave   = adapter.Record{PersonID: "RT-DAVE", BirthDate: day("1964-02-29"), Contraindicated: true}
	erin   = adapter.Record{PersonID: "RT-ERIN", BirthDate: day("1980-10-10"), Excluded: true}
	nobody = "RT-NOBODY"
)

func basePeople() []adapter.Record { return []adapter.Record{alice, bob, carol, dave, erin} }

func booking(id, person string, dose int) adapter.BookingRecord {
	return adapter.BookingRecord{
		BookingID: id, PersonID: person, CampaignID: "c-2021-60s", ClinicID: "clinic-11-110-0001",
		Date: day("2021-07-27"), Product: "pfizer", Dose: dose,
	}
}

// Run runs the contract suite. newRegistry is called once per subtest and
// must return an empty registry (people other than the suite's are
// allowed) and its Seeder; cleanup belongs to t.
func Run(t *testing.T, newRegistry func(t *testing.T) (adapter.Registry, Seeder)) {
	t.Helper()
	setup := func(t *testing.T, people ...adapter.Record) (adapter.Registry, context.Context) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		r, seed := newRegistry(t)
		if len(people) == 0 {
			people = basePeople()
		}
		if err := seed.Seed(ctx, people); err != nil {
			t.Fatalf("seed: %v", err)
		}
		return r, ctx
	}

	t.Run("Ping", func(t *testing.T) {
		r, ctx := setup(t)
		if err := r.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})

	t.Run("Eligibility returns the person's record", func(t *testing.T) {
		r, ctx := setup(t)
		for _, want := range basePeople() {
			got, err := r.Eligibility(ctx, want.PersonID)
			if err != nil {
				t.Fatalf("Eligibility(%s): %v", want.PersonID, err)
			}
			sameRecord(t, got, want)
		}
	})

	t.Run("Eligibility of an unknown person is ErrNotFound", func(t *testing.T) {
		r, ctx := setup(t)
		_, err := r.Eligibility(ctx, nobody)
		if !errors.Is(err, adapter.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
		if errors.Is(err, adapter.ErrUnavailable) || errors.Is(err, adapter.ErrRejected) {
			t.Fatalf("not found must not also be %v", err)
		}
	})

	t.Run("EligibilityBulk returns the known people only", func(t *testing.T) {
		r, ctx := setup(t)
		got, err := r.EligibilityBulk(ctx, []string{carol.PersonID, nobody, alice.PersonID, dave.PersonID})
		if err != nil {
			t.Fatal(err)
		}
		byID := map[string]adapter.Record{}
		for _, g := range got {
			byID[g.PersonID] = g
		}
		if len(got) != 3 || len(byID) != 3 {
			t.Fatalf("got %d records (%v), want carol, alice, dave once each", len(got), ids(got))
		}
		for _, want := range []adapter.Record{carol, alice, dave} {
			sameRecord(t, byID[want.PersonID], want)
		}
		empty, err := r.EligibilityBulk(ctx, nil)
		if err != nil || len(empty) != 0 {
			t.Fatalf("empty bulk: %v, %v", empty, err)
		}
	})

	t.Run("EligibilityBulk chunks lists over 1000 ids", func(t *testing.T) {
		var people []adapter.Record
		var all []string
		for i := range 2500 {
			id := fmt.Sprintf("RT-BULK-%05d", i)
			all = append(all, id)
			if i%2 == 0 {
				people = append(people, adapter.Record{PersonID: id, BirthDate: day("1960-01-01").AddDate(0, 0, i)})
			}
		}
		r, ctx := setup(t, people...)
		got, err := r.EligibilityBulk(ctx, all)
		if err != nil {
			t.Fatal(err)
		}
		gotIDs := ids(got)
		slices.Sort(gotIDs)
		wantIDs := ids(people)
		if !slices.Equal(gotIDs, wantIDs) {
			t.Fatalf("got %d records, want the %d known people once each", len(gotIDs), len(wantIDs))
		}
		for _, g := range got {
			if g.PersonID == "RT-BULK-01000" && !g.BirthDate.Equal(day("1960-01-01").AddDate(0, 0, 1000)) {
				t.Fatalf("record %s has birth date %v", g.PersonID, g.BirthDate)
			}
		}
	})

	t.Run("RecordBooking then Eligibility shows it", func(t *testing.T) {
		r, ctx := setup(t)
		b := booking("bk-0001", alice.PersonID, 1)
		if err := r.RecordBooking(ctx, b); err != nil {
			t.Fatalf("RecordBooking: %v", err)
		}
		got, err := r.Eligibility(ctx, alice.PersonID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Bookings) != 1 || !sameBooking(got.Bookings[0], b) {
			t.Fatalf("bookings %+v, want [%+v]", got.Bookings, b)
		}
		bulk, err := r.EligibilityBulk(ctx, []string{alice.PersonID})
		if err != nil || len(bulk) != 1 || len(bulk[0].Bookings) != 1 || !sameBooking(bulk[0].Bookings[0], b) {
			t.Fatalf("bulk view of the booking: %+v, %v", bulk, err)
		}
	})

	t.Run("RecordBooking is idempotent by booking id", func(t *testing.T) {
		r, ctx := setup(t)
		b := booking("bk-0002", bob.PersonID, 2)
		for range 3 {
			if err := r.RecordBooking(ctx, b); err != nil {
				t.Fatalf("RecordBooking: %v", err)
			}
		}
		changed := b
		changed.ClinicID, changed.Date = "clinic-elsewhere", day("2021-08-01")
		if err := r.RecordBooking(ctx, changed); err != nil {
			t.Fatalf("same id, other data: %v, want success changing nothing", err)
		}
		got, err := r.Eligibility(ctx, bob.PersonID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Bookings) != 1 || !sameBooking(got.Bookings[0], b) {
			t.Fatalf("bookings %+v, want exactly the first write", got.Bookings)
		}
	})

	t.Run("concurrent duplicate RecordBooking", func(t *testing.T) {
		r, ctx := setup(t)
		b := booking("bk-race", alice.PersonID, 1)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() { errs <- r.RecordBooking(ctx, b) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("concurrent duplicate: %v", err)
			}
		}
		got, err := r.Eligibility(ctx, alice.PersonID)
		if err != nil || len(got.Bookings) != 1 {
			t.Fatalf("bookings %+v, %v; want one", got.Bookings, err)
		}
	})

	t.Run("RecordBooking rejections", func(t *testing.T) {
		tests := []struct {
			name   string
			b      adapter.BookingRecord
			reject bool
		}{
			{"unknown person", booking("bk-r1", nobody, 1), true},
			{"contraindicated", booking("bk-r2", dave.PersonID, 1), true},
			{"excluded", booking("bk-r3", erin.PersonID, 1), true},
			{"dose already given", booking("bk-r4", bob.PersonID, 1), true},
			{"lower dose than given", booking("bk-r5", carol.PersonID, 1), true},
			{"same dose as the last given", booking("bk-r6", carol.PersonID, 2), true},
			{"next dose", booking("bk-r7", carol.PersonID, 3), false},
			{"first dose", booking("bk-r8", alice.PersonID, 1), false},
		}
		r, ctx := setup(t)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				err := r.RecordBooking(ctx, tc.b)
				if tc.reject {
					if !errors.Is(err, adapter.ErrRejected) || errors.Is(err, adapter.ErrUnavailable) {
						t.Fatalf("got %v, want ErrRejected only", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
			})
		}
		got, err := r.Eligibility(ctx, dave.PersonID)
		if err != nil || len(got.Bookings) != 0 {
			t.Fatalf("a rejected booking was stored: %+v, %v", got.Bookings, err)
		}
	})

	t.Run("CancelBooking", func(t *testing.T) {
		r, ctx := setup(t)
		b1 := booking("bk-c1", alice.PersonID, 1)
		b2 := booking("bk-c2", alice.PersonID, 2)
		for _, b := range []adapter.BookingRecord{b1, b2} {
			if err := r.RecordBooking(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.CancelBooking(ctx, b1.BookingID); err != nil {
			t.Fatalf("cancel: %v", err)
		}
		got, err := r.Eligibility(ctx, alice.PersonID)
		if err != nil || len(got.Bookings) != 1 || got.Bookings[0].BookingID != b2.BookingID {
			t.Fatalf("after cancel: %+v, %v; want only %s", got.Bookings, err, b2.BookingID)
		}
		if err := r.CancelBooking(ctx, b1.BookingID); err != nil {
			t.Fatalf("cancel twice: %v", err)
		}
		if err := r.CancelBooking(ctx, "bk-never-seen"); err != nil {
			t.Fatalf("cancel unknown: %v", err)
		}
		// Recording a cancelled booking again succeeds and changes nothing.
		if err := r.RecordBooking(ctx, b1); err != nil {
			t.Fatalf("re-record cancelled: %v", err)
		}
		got, err = r.Eligibility(ctx, alice.PersonID)
		if err != nil || len(got.Bookings) != 1 {
			t.Fatalf("a cancelled booking came back: %+v, %v", got.Bookings, err)
		}
	})
}

func ids(rs []adapter.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.PersonID
	}
	return out
}

func sameDate(a, b time.Time) bool {
	return a.Equal(b) && a.Location() == time.UTC
}

func sameBooking(got, want adapter.BookingRecord) bool {
	return got.BookingID == want.BookingID && got.PersonID == want.PersonID &&
		got.CampaignID == want.CampaignID && got.ClinicID == want.ClinicID &&
		sameDate(got.Date, want.Date) && got.Product == want.Product && got.Dose == want.Dose
}

func sameRecord(t *testing.T, got, want adapter.Record) {
	t.Helper()
	var problems []string
	if got.PersonID != want.PersonID {
		problems = append(problems, fmt.Sprintf("id %q", got.PersonID))
	}
	if !sameDate(got.BirthDate, want.BirthDate) {
		problems = append(problems, fmt.Sprintf("birth date %v (want %v, UTC midnight)", got.BirthDate, want.BirthDate))
	}
	if got.Contraindicated != want.Contraindicated || got.Excluded != want.Excluded {
		problems = append(problems, fmt.Sprintf("flags contraindicated=%v excluded=%v", got.Contraindicated, got.Excluded))
	}
	doses := slices.Clone(got.Doses)
	slices.SortFunc(doses, func(a, b adapter.Dose) int { return a.Number - b.Number })
	if len(doses) != len(want.Doses) {
		problems = append(problems, fmt.Sprintf("doses %+v", got.Doses))
	} else {
		for i := range doses {
			d, w := doses[i], want.Doses[i]
			if d.Number != w.Number || d.Product != w.Product || !sameDate(d.Date, w.Date) {
				problems = append(problems, fmt.Sprintf("dose %+v (want %+v)", d, w))
			}
		}
	}
	if len(got.Bookings) != 0 {
		problems = append(problems, fmt.Sprintf("bookings %+v (want none)", got.Bookings))
	}
	if len(problems) > 0 {
		t.Fatalf("record %s: %s", want.PersonID, strings.Join(problems, "; "))
	}
}
