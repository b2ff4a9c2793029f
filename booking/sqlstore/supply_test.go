package sqlstore

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
)

// campaign2021 is the reference campaign under the test campaign id: 11
// waves (10 rotation days + the open wave), pfizer and moderna in two
// doses 42 days apart with 3 days' tolerance, and janssen in one dose.
func campaign2021() *booking.Campaign {
	c := booking.Campaign2021()
	c.ID = testCampaign
	c.Products = append(c.Products, booking.Product{ID: "janssen"})
	return c
}

// seedCampaign stores campaign2021 and clinics c1, c2 (pfizer, janssen)
// and c3 (moderna).
func seedCampaign(tb testing.TB, db *DB) *booking.Campaign {
	tb.Helper()
	c := campaign2021()
	ctx := ctxT(tb)
	if err := db.PutCampaign(ctx, c); err != nil {
		tb.Fatalf("PutCampaign: %v", err)
	}
	err := db.PutClinics(ctx, []booking.Clinic{
		{ID: "c1", Name: "One", Region: "11-110", Products: []string{"pfizer", "janssen"}},
		{ID: "c2", Name: "Two", Region: "11-140", Products: []string{"pfizer", "janssen"}},
		{ID: "c3", Name: "Three", Region: "26-110", Products: []string{"moderna"}},
	})
	if err != nil {
		tb.Fatalf("PutClinics: %v", err)
	}
	return c
}

func newLoader(tb testing.TB, db *DB) *booking.SupplyLoader {
	tb.Helper()
	l, err := booking.NewSupplyLoader(booking.SupplyLoaderConfig{Store: db, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// capacities returns the capacities of the stored rows of one clinic ×
// date × product × dose, by wave (missing rows are -1).
func capacities(tb testing.TB, db *DB, clinic string, d booking.Date, product string, dose int) []int {
	tb.Helper()
	qs, err := db.Quotas(ctxT(tb), testCampaign)
	if err != nil {
		tb.Fatalf("Quotas: %v", err)
	}
	var out []int
	for _, q := range qs {
		if q.ClinicID == clinic && q.Date == d && q.Product == product && q.Dose == dose {
			for len(out) <= q.Wave {
				out = append(out, -1)
			}
			out[q.Wave] = q.Capacity
		}
	}
	return out
}

// split is what SplitSupply gives, as capacities by wave.
func split(c *booking.Campaign, clinic string, d booking.Date, product string, dose, doses int) []int {
	var out []int
	for _, q := range booking.SplitSupply(c, booking.Supply{CampaignID: c.ID, ClinicID: clinic, Date: d, Product: product, Dose: dose, Doses: doses}) {
		out = append(out, q.Capacity)
	}
	return out
}

func supplyLoads(tb testing.TB, db *DB) int {
	tb.Helper()
	return count(tb, db, "SELECT COUNT(*) FROM supply_loads")
}

func TestSupplySQLite(t *testing.T) {
	t.Parallel()
	runSupplyTests(t, openSQLite)
}

func TestSupplyPostgres(t *testing.T) {
	t.Parallel()
	openPostgres(t)
	runSupplyTests(t, openPostgres)
}

var (
	dose2Day = day1.AddDays(42)
	goodCSV  = "clinic_id,date,product,dose,doses\n" +
		"c1,2021-08-26,pfizer,1,110\n" +
		"c1,2021-10-07,pfizer,2,40\n" +
		"c2,2021-08-26,pfizer,1,55\n" +
		"c2,2021-08-27,janssen,,7\n"
)

func runSupplyTests(t *testing.T, open func(testing.TB) *DB) {
	t.Run("GoodFile", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		c := seedCampaign(t, db)
		l := newLoader(t, db)
		ctx := ctxT(t)
		res, err := l.Load(ctx, c.ID, booking.SupplyCSV, []byte(goodCSV))
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if res.AlreadyApplied || res.Rows != 4 || res.QuotaRows != 11+1+11+11 || res.Doses != 212 ||
			res.Digest != booking.SupplyDigest([]byte(goodCSV)) || res.CampaignID != c.ID || res.AppliedAt.IsZero() {
			t.Fatalf("result = %+v", res)
		}
		for _, tc := range []struct {
			clinic  string
			d       booking.Date
			product string
			dose    int
			want    []int
		}{
			{"c1", day1, "pfizer", 1, split(c, "c1", day1, "pfizer", 1, 110)},
			{"c1", dose2Day, "pfizer", 2, []int{40}},
			{"c2", day1, "pfizer", 1, split(c, "c2", day1, "pfizer", 1, 55)},
			{"c2", day2, "janssen", 1, split(c, "c2", day2, "janssen", 1, 7)},
		} {
			if got := capacities(t, db, tc.clinic, tc.d, tc.product, tc.dose); !slices.Equal(got, tc.want) {
				t.Errorf("%s %s %s dose %d: capacities %v, want %v", tc.clinic, tc.d, tc.product, tc.dose, got, tc.want)
			}
		}
		if n := supplyLoads(t, db); n != 1 {
			t.Errorf("supply_loads rows = %d, want 1", n)
		}

		// A JSON file sets the rows it names and leaves the others alone.
		_, v0, _ := db.QuotasChangedSince(ctx, c.ID, 0)
		res, err = l.Load(ctx, c.ID, booking.SupplyJSON, []byte(`[{"clinic_id":"c2","date":"2021-08-26","product":"pfizer","doses":66}]`))
		if err != nil || res.QuotaRows != 11 || res.Rows != 1 {
			t.Fatalf("JSON Load = %+v, %v", res, err)
		}
		if got, want := capacities(t, db, "c2", day1, "pfizer", 1), split(c, "c2", day1, "pfizer", 1, 66); !slices.Equal(got, want) {
			t.Errorf("after JSON: %v, want %v", got, want)
		}
		changed, _, _ := db.QuotasChangedSince(ctx, c.ID, v0)
		for _, q := range changed {
			if q.ClinicID != "c2" || q.Date != day1 || q.Product != "pfizer" {
				t.Errorf("a row the file does not name changed: %+v", q)
			}
		}
	})

	t.Run("BadRowsApplyNothing", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		c := seedCampaign(t, db)
		l := newLoader(t, db)
		ctx := ctxT(t)
		for _, tc := range []struct {
			name  string
			file  string
			lines []int
		}{
			{"parser", "clinic_id,date,product,doses\nc1,2021-08-26,pfizer,110\nc1,2021-13-01,pfizer,5\nc2,2021-08-26,astra,5\n", []int{3, 4}},
			{"clinics", "clinic_id,date,product,doses\nc1,2021-08-26,pfizer,110\nc9,2021-08-26,pfizer,10\nc3,2021-08-26,pfizer,10\nc2,2021-08-26,pfizer,10\n", []int{3, 4}},
		} {
			_, err := l.Load(ctx, c.ID, booking.SupplyCSV, []byte(tc.file))
			var se *booking.SupplyError
			if !errors.As(err, &se) || booking.ErrorCode(err) != booking.EINVALID {
				t.Fatalf("%s: Load = %v, want a SupplyError", tc.name, err)
			}
			var lines []int
			for _, r := range se.Rows {
				lines = append(lines, r.Line)
			}
			if !slices.Equal(lines, tc.lines) {
				t.Errorf("%s: bad lines %v, want %v (%v)", tc.name, lines, tc.lines, err)
			}
		}
		if qs, _ := db.Quotas(ctx, c.ID); len(qs) != 0 {
			t.Errorf("a refused file wrote %d quota rows", len(qs))
		}
		if n := supplyLoads(t, db); n != 0 {
			t.Errorf("a refused file was recorded: %d", n)
		}
		if _, err := l.Load(ctx, c.ID, "xml", []byte(goodCSV)); booking.ErrorCode(err) != booking.EINVALID {
			t.Errorf("unknown format: %v", err)
		}
		if _, err := l.Load(ctx, "nope", booking.SupplyCSV, []byte(goodCSV)); booking.ErrorCode(err) != booking.ENOTFOUND {
			t.Errorf("unknown campaign: %v", err)
		}
	})

	t.Run("ReplayIsANoOp", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		c := seedCampaign(t, db)
		l := newLoader(t, db)
		ctx := ctxT(t)
		first, err := l.Load(ctx, c.ID, booking.SupplyCSV, []byte(goodCSV))
		if err != nil {
			t.Fatal(err)
		}
		book(t, db, newBooking("p1", "c1", day1, 1, 0))
		before, err := db.Quotas(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, v0, _ := db.QuotasChangedSince(ctx, c.ID, 0)
		again, err := l.Load(ctx, c.ID, booking.SupplyCSV, []byte(goodCSV))
		if err != nil {
			t.Fatal(err)
		}
		if !again.AlreadyApplied || !again.AppliedAt.Equal(first.AppliedAt) || again.QuotaRows != first.QuotaRows || again.Rows != first.Rows || again.Doses != first.Doses {
			t.Fatalf("replay = %+v, first %+v", again, first)
		}
		after, _ := db.Quotas(ctx, c.ID)
		if !slices.Equal(before, after) {
			t.Error("replay changed quotas")
		}
		if changed, _, _ := db.QuotasChangedSince(ctx, c.ID, v0); len(changed) != 0 {
			t.Errorf("replay touched %d rows' versions", len(changed))
		}
		if n := supplyLoads(t, db); n != 1 {
			t.Errorf("supply_loads rows = %d, want 1", n)
		}
		// The same bytes for another campaign are another load.
		c2 := campaign2021()
		c2.ID = "other"
		if err := db.PutCampaign(ctx, c2); err != nil {
			t.Fatal(err)
		}
		if res, err := l.Load(ctx, c2.ID, booking.SupplyCSV, []byte(goodCSV)); err != nil || res.AlreadyApplied {
			t.Errorf("same file, other campaign = %+v, %v", res, err)
		}
	})

	t.Run("ReductionBelowBooked", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		c := seedCampaign(t, db)
		l := newLoader(t, db)
		ctx := ctxT(t)
		if _, err := l.Load(ctx, c.ID, booking.SupplyCSV, []byte(goodCSV)); err != nil {
			t.Fatal(err)
		}
		// c1 pfizer dose 1: 10 a wave; 3 booked in wave 1 and 2 in the open
		// wave; c2 pfizer dose 1: 1 booked in wave 3; one cancelled.
		var bs []*booking.Booking
		for i, w := range []int{1, 1, 1, 0, 0} {
			bs = append(bs, newBooking("p"+string(rune('a'+i)), "c1", day1, 1, w))
		}
		bs = append(bs, newBooking("q1", "c2", day1, 1, 3), newBooking("q2", "c2", day1, 1, 3))
		book(t, db, bs...)
		gone := *bs[len(bs)-1]
		gone.Status, gone.CancelReason = booking.StatusCancelled, "person"
		if err := db.CancelBookings(ctx, []*booking.Booking{&gone}, nil); err != nil {
			t.Fatal(err)
		}
		before, _ := db.Quotas(ctx, c.ID)
		file := "clinic_id,date,product,dose,doses\n" +
			"c1,2021-10-07,pfizer,2,50\n" + // fine, but the file is refused whole
			"c1,2021-08-26,pfizer,1,4\n" + // 5 booked
			"c2,2021-08-26,pfizer,1,0\n" // 1 booked
		_, err := l.Load(ctx, c.ID, booking.SupplyCSV, []byte(file))
		var ce *booking.SupplyConflictError
		if !errors.As(err, &ce) || booking.ErrorCode(err) != booking.ECONFLICT {
			t.Fatalf("Load = %v, want a SupplyConflictError", err)
		}
		active := count(t, db, "SELECT COUNT(*) FROM bookings WHERE status <> 'cancelled' AND vdate = ? AND dose = 1 AND product = 'pfizer'", db.dialect.dateArg(day1))
		if len(ce.Conflicts) != 2 || ce.AffectedBookings != active || active != 6 || ce.Excess != 2 {
			t.Fatalf("conflict = %+v, want 2 rows, %d affected bookings, excess 2", ce, active)
		}
		want := []booking.SupplyConflict{
			{Line: 3, ClinicID: "c1", Date: day1, Product: "pfizer", Dose: 1, Doses: 4, Booked: 5},
			{Line: 4, ClinicID: "c2", Date: day1, Product: "pfizer", Dose: 1, Doses: 0, Booked: 1},
		}
		if !slices.Equal(ce.Conflicts, want) {
			t.Errorf("conflicts = %+v, want %+v", ce.Conflicts, want)
		}
		if !strings.Contains(booking.ErrorMessage(err), "6 active booking(s) affected") {
			t.Errorf("message %q does not count the affected bookings", booking.ErrorMessage(err))
		}
		if after, _ := db.Quotas(ctx, c.ID); !slices.Equal(before, after) {
			t.Error("a refused reduction changed quotas")
		}
		if n := supplyLoads(t, db); n != 1 {
			t.Errorf("a refused file was recorded: %d loads", n)
		}

		// Down to 20 (shares of 1–2) is above the 5 booked: the waves keep
		// their equal shares, except that none falls below what it booked
		// (wave 1 keeps its 3); the doses for that come from other waves.
		res, err := l.Load(ctx, c.ID, booking.SupplyCSV, []byte("clinic_id,date,product,doses\nc1,2021-08-26,pfizer,20\n"))
		if err != nil {
			t.Fatalf("reduction above booked: %v", err)
		}
		got, shares := capacities(t, db, "c1", day1, "pfizer", 1), split(c, "c1", day1, "pfizer", 1, 20)
		booked := []int{2, 3}
		deficit, moved := 0, 0
		for w := range got {
			b := 0
			if w < len(booked) {
				b = booked[w]
			}
			deficit += max(b-shares[w], 0)
			moved += max(got[w]-shares[w], shares[w]-got[w])
			if got[w] < b {
				t.Errorf("wave %d: capacity %d below its %d booked", w, got[w], b)
			}
		}
		if sum(got) != 20 || moved != 2*deficit || res.QuotaRows == 0 {
			t.Fatalf("after reduction: %v, shares %v (%+v)", got, shares, res)
		}
		consistent(t, db)
	})

	t.Run("ReloadAfterRollOver", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		c := seedCampaign(t, db)
		l := newLoader(t, db)
		ctx := ctxT(t)
		if _, err := l.Load(ctx, c.ID, booking.SupplyCSV, []byte("clinic_id,date,product,doses\nc1,2021-08-26,pfizer,110\n")); err != nil {
			t.Fatal(err)
		}
		book(t, db, newBooking("p1", "c1", day1, 1, 1), newBooking("p2", "c1", day1, 1, 1), newBooking("p3", "c1", day1, 1, 1))
		if _, err := db.RollOverWave(ctx, c.ID, 1, time.Now()); err != nil {
			t.Fatal(err)
		}
		if got := capacities(t, db, "c1", day1, "pfizer", 1); got[1] != 3 || got[0] != 17 || sum(got) != 110 {
			t.Fatalf("after roll-over: %v", got)
		}
		// 121 doses, 11 a wave: wave 1 keeps its 3 booked, its other 8 go to
		// the open wave as the roll-over would have moved them.
		if _, err := l.Load(ctx, c.ID, booking.SupplyCSV, []byte("clinic_id,date,product,doses\nc1,2021-08-26,pfizer,121\n")); err != nil {
			t.Fatal(err)
		}
		want := []int{19, 3, 11, 11, 11, 11, 11, 11, 11, 11, 11}
		if got := capacities(t, db, "c1", day1, "pfizer", 1); !slices.Equal(got, want) {
			t.Fatalf("reload after roll-over: %v, want %v", got, want)
		}
		consistent(t, db)
	})
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// consistent checks that every quota row counts exactly the active
// bookings drawn from it and holds no more than its capacity.
func consistent(tb testing.TB, db *DB) {
	tb.Helper()
	ctx := ctxT(tb)
	qs, err := db.Quotas(ctx, testCampaign)
	if err != nil {
		tb.Fatal(err)
	}
	rows, err := db.DB().QueryxContext(ctx, "SELECT "+sqlBookingColumns+" FROM bookings WHERE status <> 'cancelled'")
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	active := map[quotaKey]int{}
	for rows.Next() {
		b, err := scanBooking(rows)
		if err != nil {
			tb.Fatal(err)
		}
		active[keyOf(b)]++
	}
	for _, q := range qs {
		k := quotaKeyOf(q)
		if q.Booked != active[k] || q.Booked > q.Capacity {
			tb.Errorf("quota %s %s %s dose %d wave %d: booked %d, capacity %d, active bookings %d",
				q.ClinicID, q.Date, q.Product, q.Dose, q.Wave, q.Booked, q.Capacity, active[k])
		}
		delete(active, k)
	}
	for k, n := range active {
		tb.Errorf("%d active bookings on %+v, which has no quota row", n, k)
	}
}
