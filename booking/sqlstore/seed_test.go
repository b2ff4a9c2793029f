package sqlstore

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
)

func TestSeedSQLite(t *testing.T) {
	t.Parallel()
	runSeedTests(t, openSQLite)
}

func TestSeedPostgres(t *testing.T) {
	t.Parallel()
	openPostgres(t)
	runSeedTests(t, openPostgres)
}

// seedInput is a seed of the test campaign: 3 clinics (c1, c2 with
// pfizer and janssen, c3 with moderna) and, for 5 days, dose-1 and dose-2
// supply of their two-dose product and janssen's single dose: 3×5×12 +
// 2×5×11 = 290 quota rows, more than one SQLite statement carries.
// Supply is listed out of key order (by dose first, as population.Supply
// lists it).
func seedInput() Seed { return seedInputFor(testCampaign) }

// seedInputFor is seedInput for a campaign with the given id.
func seedInputFor(id string) Seed {
	c := campaign2021()
	c.ID = id
	clinics := []booking.Clinic{
		{ID: "c3", Name: "Three", Region: "26-110", Lat: 35.1, Lon: 129.0, Products: []string{"moderna"}},
		{ID: "c1", Name: "One", Region: "11-110", Lat: 37.5, Lon: 127.0, Products: []string{"pfizer", "janssen"}},
		{ID: "c2", Name: "Two", Region: "11-140", Lat: 37.6, Lon: 127.1, Products: []string{"pfizer", "janssen"}},
	}
	var first, second []booking.Supply
	for i, cl := range clinics {
		for d := range 5 {
			day := day1.AddDays(d)
			for _, p := range cl.Products {
				n := 100 + 7*i + d // remainders differ by row
				first = append(first, booking.Supply{CampaignID: c.ID, ClinicID: cl.ID, Date: day, Product: p, Dose: 1, Doses: n})
				if p != "janssen" {
					second = append(second, booking.Supply{ClinicID: cl.ID, Date: day.AddDays(42), Product: p, Dose: 2, Doses: n})
				}
			}
		}
	}
	return Seed{Campaign: c, Clinics: clinics, Supply: append(first, second...)}
}

// wantSeedQuotas is what SplitSupply makes of s's supply, in key order.
func wantSeedQuotas(s Seed) []booking.Quota {
	var out []booking.Quota
	for _, r := range s.Supply {
		r.CampaignID = s.Campaign.ID
		out = append(out, booking.SplitSupply(s.Campaign, r)...)
	}
	slices.SortFunc(out, func(a, b booking.Quota) int { return quotaKeyOf(a).compare(quotaKeyOf(b)) })
	return out
}

func runSeedTests(t *testing.T, open func(testing.TB) *DB) {
	t.Run("LoadsAnEmptyCampaign", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := ctxT(t)
		// Another campaign's rows first, so versions do not start at 1
		// and a snapshot has a version to ask from.
		if err := db.SetQuotas(ctx, []booking.Quota{{CampaignID: "other", ClinicID: "x", Date: day1, Product: "pfizer", Dose: 1, Capacity: 5}}); err != nil {
			t.Fatal(err)
		}
		_, otherVersion, err := db.QuotasChangedSince(ctx, "other", 0)
		if err != nil || otherVersion == 0 {
			t.Fatalf("QuotasChangedSince(other) = %d, %v", otherVersion, err)
		}
		// Where a snapshot of the (empty) campaign stands before the seed.
		_, before, err := db.QuotasChangedSince(ctx, testCampaign, 0)
		if err != nil {
			t.Fatal(err)
		}

		s := seedInput()
		res, err := db.SeedCampaign(ctx, s)
		if err != nil {
			t.Fatalf("SeedCampaign: %v", err)
		}
		want := wantSeedQuotas(s)
		var doses int64
		for _, r := range s.Supply {
			doses += int64(r.Doses)
		}
		if res.Clinics != 3 || res.SupplyRows != len(s.Supply) || res.QuotaRows != 290 || len(want) != 290 || res.Doses != doses || res.Version <= max(before, otherVersion) {
			t.Fatalf("result = %+v (want 3 clinics, %d supply rows, 290 quota rows, %d doses, version above %d)", res, len(s.Supply), doses, max(before, otherVersion))
		}
		got, err := db.Quotas(ctx, testCampaign)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("stored quotas differ from SplitSupply's:\n got %d rows, first %+v\nwant %d rows, first %+v", len(got), got[0], len(want), want[0])
		}

		// A snapshot following QuotasChangedSince sees every row, once.
		changed, next, err := db.QuotasChangedSince(ctx, testCampaign, before)
		if err != nil {
			t.Fatal(err)
		}
		if len(changed) != len(want) || next < res.Version {
			t.Fatalf("QuotasChangedSince(%d) = %d rows, next %d; want %d rows, next ≥ %d", before, len(changed), next, len(want), res.Version)
		}
		if again, _, err := db.QuotasChangedSince(ctx, testCampaign, next); err != nil || len(again) != 0 {
			t.Fatalf("QuotasChangedSince(%d) again = %d rows, %v; want none", next, len(again), err)
		}

		// Campaign and clinics are stored as PutCampaign and PutClinics would.
		c, err := db.Campaign(ctx, testCampaign)
		if err != nil || c.Waves() != 11 || len(c.Products) != 3 {
			t.Fatalf("Campaign = %+v, %v", c, err)
		}
		clinics, err := db.Clinics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantClinics := slices.Clone(s.Clinics)
		slices.SortFunc(wantClinics, func(a, b booking.Clinic) int { return strings.Compare(a.ID, b.ID) })
		if !reflect.DeepEqual(clinics, wantClinics) {
			t.Fatalf("Clinics = %+v, want %+v", clinics, wantClinics)
		}

		// Booking works on the seeded rows, and the snapshot sees it.
		row := quota("c1", day1.AddDays(2), 1, 3, 0)
		b := newBooking("p-seed", "c1", row.Date, 1, 3)
		book(t, db, b)
		wantBooked(t, db, row, 1)
		if n := outboxRows(t, db); n != 1 {
			t.Fatalf("outbox rows = %d, want 1", n)
		}
		changed, _, err = db.QuotasChangedSince(ctx, testCampaign, next)
		if err != nil || len(changed) != 1 || changed[0].Booked != 1 || changed[0].Wave != 3 {
			t.Fatalf("QuotasChangedSince after booking = %+v, %v", changed, err)
		}

		// ApplySupply of the same supply finds every row already right.
		ar, err := db.ApplySupply(ctx, booking.SupplyLoad{Campaign: s.Campaign, Digest: "same-supply", Rows: s.Supply})
		if err != nil || ar.QuotaRows != 0 {
			t.Fatalf("ApplySupply of the seeded supply = %+v, %v; want 0 quota rows changed", ar, err)
		}
	})

	t.Run("RefusesACampaignWithQuotaRows", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := ctxT(t)
		s := seedInput()
		if _, err := db.SeedCampaign(ctx, s); err != nil {
			t.Fatal(err)
		}
		row := quota("c2", day1, 1, 1, 0)
		book(t, db, newBooking("p-kept", "c2", day1, 1, 1))
		before, err := db.Quotas(ctx, testCampaign)
		if err != nil {
			t.Fatal(err)
		}

		again := seedInput()
		again.Clinics[0].Name = "Renamed"
		for i := range again.Supply {
			again.Supply[i].Doses = 1
		}
		_, err = db.SeedCampaign(ctx, again)
		wantCode(t, err, booking.ECONFLICT)
		after, err := db.Quotas(ctx, testCampaign)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(after, before) {
			t.Fatal("a refused seed changed quota rows")
		}
		wantBooked(t, db, row, 1)
		if c, err := db.Clinic(ctx, "c3"); err != nil || c.Name != "Three" {
			t.Fatalf("a refused seed changed clinic c3: %+v, %v", c, err)
		}

		// One row set by SetQuotas is enough to refuse.
		other := seedInputFor("one-row")
		mustSetQuotas(t, db, booking.Quota{CampaignID: "one-row", ClinicID: "c9", Date: day1, Product: "pfizer", Dose: 2, Capacity: 3})
		_, err = db.SeedCampaign(ctx, other)
		wantCode(t, err, booking.ECONFLICT)
		if qs, err := db.Quotas(ctx, "one-row"); err != nil || len(qs) != 1 {
			t.Fatalf("Quotas(one-row) = %d rows, %v; want the 1 row set before", len(qs), err)
		}
		if _, err := db.Campaign(ctx, "one-row"); booking.ErrorCode(err) != booking.ENOTFOUND {
			t.Fatalf("a refused seed stored its campaign: %v", err)
		}
	})

	t.Run("ConcurrentSeedsOneWins", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := ctxT(t)
		const n = 4
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				s := seedInput()
				for j := range s.Supply {
					s.Supply[j].Doses = 10 * (i + 1) // tell the winner apart
				}
				_, errs[i] = db.SeedCampaign(ctx, s)
			})
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch booking.ErrorCode(err) {
			case "":
				if winner >= 0 {
					t.Fatalf("seeds %d and %d both succeeded", winner, i)
				}
				winner = i
			case booking.ECONFLICT:
			default:
				t.Fatalf("seed %d: %v, want success or ECONFLICT", i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("no seed succeeded: %v", errs)
		}
		qs, err := db.Quotas(ctx, testCampaign)
		if err != nil || len(qs) != 290 {
			t.Fatalf("Quotas = %d rows, %v; want 290", len(qs), err)
		}
		for _, q := range qs {
			if q.Dose == 2 && q.Capacity != 10*(winner+1) {
				t.Fatalf("row %+v is not the winner's (seed %d)", q, winner)
			}
		}
	})

	t.Run("RecordsTheDigest", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := ctxT(t)
		s := seedInput()
		s.Digest = "sha256:seeded"
		res, err := db.SeedCampaign(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		ar, err := db.ApplySupply(ctx, booking.SupplyLoad{Campaign: s.Campaign, Digest: s.Digest, Rows: s.Supply[:1]})
		if err != nil || !ar.AlreadyApplied || ar.Rows != len(s.Supply) || ar.QuotaRows != res.QuotaRows || ar.Doses != res.Doses {
			t.Fatalf("ApplySupply of the seeded digest = %+v, %v; want AlreadyApplied with the seed's figures %+v", ar, err, res)
		}

		// A digest recorded for a campaign without rows refuses the seed.
		other := seedInputFor("recorded")
		other.Digest = "sha256:recorded"
		_, err = db.DB().ExecContext(ctx, db.Dialect().Rebind(sqlSeedSupplyLoad), "recorded", other.Digest, db.dialect.timeArg(time.Now()), 1, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		_, err = db.SeedCampaign(ctx, other)
		wantCode(t, err, booking.ECONFLICT)
		if qs, err := db.Quotas(ctx, "recorded"); err != nil || len(qs) != 0 {
			t.Fatalf("a refused seed left %d quota rows (%v)", len(qs), err)
		}
	})

	t.Run("RefusesInvalidSeeds", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := ctxT(t)
		for name, change := range map[string]func(*Seed){
			"no campaign":       func(s *Seed) { s.Campaign = nil },
			"no campaign id":    func(s *Seed) { s.Campaign.ID = "" },
			"no supply":         func(s *Seed) { s.Supply = nil },
			"clinic without id": func(s *Seed) { s.Clinics[1].ID = "" },
			"listed twice":      func(s *Seed) { s.Supply = append(s.Supply, s.Supply[7]) },
			"unknown product":   func(s *Seed) { s.Supply[3].Product = "sputnik" },
			"dose 2 of janssen": func(s *Seed) { s.Supply[6].Dose = 2 },
			"dose 3":            func(s *Seed) { s.Supply[0].Dose = 3 },
			"dose 0":            func(s *Seed) { s.Supply[0].Dose = 0 },
			"negative doses":    func(s *Seed) { s.Supply[2].Doses = -1 },
			"too many doses":    func(s *Seed) { s.Supply[2].Doses = booking.MaxSupplyDoses + 1 },
			"no clinic":         func(s *Seed) { s.Supply[4].ClinicID = "" },
			"no date":           func(s *Seed) { s.Supply[4].Date = booking.Date{} },
			"other campaign":    func(s *Seed) { s.Supply[5].CampaignID = "elsewhere" },
		} {
			s := seedInput()
			if s.Supply[6].Product != "janssen" {
				t.Fatalf("seedInput changed: row 6 is %+v", s.Supply[6])
			}
			change(&s)
			if _, err := db.SeedCampaign(ctx, s); booking.ErrorCode(err) != booking.EINVALID {
				t.Errorf("%s: err = %v, want EINVALID", name, err)
			}
		}
		if n := count(t, db, "SELECT COUNT(*) FROM quotas") + count(t, db, "SELECT COUNT(*) FROM clinics") + count(t, db, "SELECT COUNT(*) FROM campaigns"); n != 0 {
			t.Fatalf("invalid seeds wrote %d rows", n)
		}
	})
}

// benchSeed seeds a fresh campaign per iteration: YEYAK_BENCH_CLINICS
// clinics (default 200; the 2021 campaign had about 14,000) × 30 dates of
// pfizer dose 1 (11 waves each) and the matching dose-2 rows, 72,000
// quota rows at the default, and reports quota rows/s.
func benchSeed(b *testing.B, db *DB) {
	ctx := context.Background()
	n := benchClinics(b)
	clinics := make([]booking.Clinic, n)
	var supply []booking.Supply
	for i := range clinics {
		clinics[i] = booking.Clinic{ID: fmt.Sprintf("S%05d", i), Name: "Clinic", Region: "11-110", Products: []string{"pfizer"}}
		for d := range 30 {
			supply = append(supply,
				booking.Supply{ClinicID: clinics[i].ID, Date: day1.AddDays(d), Product: "pfizer", Dose: 1, Doses: 110 + i%11},
				booking.Supply{ClinicID: clinics[i].ID, Date: day1.AddDays(d + 42), Product: "pfizer", Dose: 2, Doses: 110 + i%11})
		}
	}
	quotaRows := 0
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		c := campaign2021()
		c.ID = fmt.Sprintf("seed-bench-%d", i)
		res, err := db.SeedCampaign(ctx, Seed{Campaign: c, Clinics: clinics, Supply: supply})
		if err != nil {
			b.Fatal(err)
		}
		quotaRows += res.QuotaRows
	}
	b.ReportMetric(float64(quotaRows)/time.Since(start).Seconds(), "quota-rows/s")
}

// BenchmarkSeedCampaignPostgres: go test -run ^$ -bench SeedCampaignPostgres -benchtime 3x ./booking/sqlstore/
func BenchmarkSeedCampaignPostgres(b *testing.B) { benchSeed(b, openPostgres(b)) }

// BenchmarkSeedCampaignSQLite: go test -run ^$ -bench SeedCampaignSQLite -benchtime 3x ./booking/sqlstore/
func BenchmarkSeedCampaignSQLite(b *testing.B) { benchSeed(b, openSQLite(b)) }
