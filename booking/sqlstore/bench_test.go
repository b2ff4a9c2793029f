package sqlstore

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/mocks/testenv"
)

// benchBook books one dose per iteration for distinct people, in parallel,
// spread over clinics with plenty of capacity, and reports bookings/s. Each
// booking is the whole write: quota decrement, booking insert, outbox
// insert (one statement on PostgreSQL unless db.bookInTx).
//
// With pairs, each iteration books a first dose and its second (a
// two-dose product, Reserve with the second on the first of three dates
// with room), as the 2021 campaign's mRNA bookings were; bookings/s
// counts both bookings of a pair.
func benchBook(b *testing.B, db *DB, clinics int, pairs bool) {
	ctx := context.Background()
	qs := make([]booking.Quota, 0, 4*clinics)
	second := []booking.Date{day1.AddDays(21), day1.AddDays(20), day1.AddDays(22)}
	for i := range clinics {
		qs = append(qs, quota(fmt.Sprintf("bc%03d", i), day1, 1, 0, 1<<30))
		if pairs {
			for _, d := range second {
				qs = append(qs, quota(fmt.Sprintf("bc%03d", i), d, 2, 0, 1<<30))
			}
		}
	}
	if err := db.SetQuotas(ctx, qs); err != nil {
		b.Fatal(err)
	}
	// Enough goroutines to keep the whole pool busy (PostgreSQL's default
	// pool is 4 × GOMAXPROCS): commits then share WAL flushes.
	b.SetParallelism(4)
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1)
			bk := newBooking(fmt.Sprintf("bench-%d", n), fmt.Sprintf("bc%03d", n%int64(clinics)), day1, 1, 0)
			var err error
			if pairs {
				two := newBooking(bk.PersonID, bk.ClinicID, second[0], 2, 0)
				bk.LinkedID, two.LinkedID = two.ID, bk.ID
				err = db.Reserve(ctx, booking.Reservation{Create: []*booking.Booking{bk, two}, Flex: two, FlexDates: second,
					Events: func() []booking.Event { return eventsFor(booking.EventBookingConfirmed, bk, two) }})
			} else {
				err = db.CreateBookings(ctx, []*booking.Booking{bk}, eventsFor(booking.EventBookingConfirmed, bk))
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	per := 1.0
	if pairs {
		per = 2
	}
	b.ReportMetric(per*float64(next.Load())/time.Since(start).Seconds(), "bookings/s")
}

// BenchmarkBookPostgres: go test -run ^$ -bench BookPostgres ./booking/sqlstore/
// It runs in both NotifyModes (the default, NotifyInTx, first), then
// ("transaction") in the default mode with each booking as the
// five-statement transaction (begin, take, insert, insert, commit) instead
// of bookOne's single statement; "hot" and "hot-transaction" book them
// all at one clinic, day and dose (one quota row, every booking waiting
// for the one before to let go of it), as a launch's first minutes do;
// "hot-pair" and "hot-pair-transaction" book first and second doses
// there (Reserve: reservePair's one statement, or the transaction's eight or
// more statements).
func BenchmarkBookPostgres(b *testing.B) {
	for _, run := range []struct {
		name string
		mode NotifyMode
		inTx bool
		hot  bool
		pair bool
	}{
		{"notify=" + string(NotifyInTx), NotifyInTx, false, false, false},
		{"notify=" + string(NotifyAfterCommit), NotifyAfterCommit, false, false, false},
		{"transaction", NotifyInTx, true, false, false},
		{"hot", NotifyInTx, false, true, false},
		{"hot-transaction", NotifyInTx, true, true, false},
		{"hot-pair", NotifyInTx, false, true, true},
		{"hot-pair-transaction", NotifyInTx, true, true, true},
	} {
		b.Run(run.name, func(b *testing.B) {
			ctx := context.Background()
			db, err := Open(ctx, testenv.Postgres(b), Options{OutboxNotify: run.mode, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			db.bookInTx = run.inTx
			clinics := 64
			if run.hot {
				clinics = 1
			}
			benchBook(b, db, clinics, run.pair)
		})
	}
}

// BenchmarkBookSQLite: go test -run ^$ -bench BookSQLite ./booking/sqlstore/
func BenchmarkBookSQLite(b *testing.B) { benchBook(b, openSQLite(b), 64, false) }

// benchApplySupply applies a national-style supply file per iteration:
// YEYAK_BENCH_CLINICS clinics (default 200, to keep make bench short; the
// 2021 campaign had about 14,000) × 30 dates of pfizer dose 1 (11 waves each) plus the matching
// dose-2 rows, every row changing from the load before. The first load
// (all inserts) is outside the timer.
func benchApplySupply(b *testing.B, db *DB) {
	ctx := context.Background()
	c := seedCampaign(b, db)
	n := benchClinics(b)
	clinics := make([]booking.Clinic, n)
	for i := range clinics {
		clinics[i] = booking.Clinic{ID: fmt.Sprintf("S%05d", i), Name: "Clinic", Region: "11-110", Products: []string{"pfizer"}}
	}
	if err := db.PutClinics(ctx, clinics); err != nil {
		b.Fatal(err)
	}
	rows := func(doses int) []booking.Supply {
		out := make([]booking.Supply, 0, 60*n)
		for _, cl := range clinics {
			for d := range 30 {
				out = append(out,
					booking.Supply{ClinicID: cl.ID, Date: day1.AddDays(d), Product: "pfizer", Dose: 1, Doses: doses},
					booking.Supply{ClinicID: cl.ID, Date: day1.AddDays(d + 42), Product: "pfizer", Dose: 2, Doses: doses})
			}
		}
		return out
	}
	if _, err := db.ApplySupply(ctx, booking.SupplyLoad{Campaign: c, Digest: "bench-first", Rows: rows(110)}); err != nil {
		b.Fatal(err)
	}
	var supplyRows, quotaRows int
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		res, err := db.ApplySupply(ctx, booking.SupplyLoad{Campaign: c, Digest: fmt.Sprintf("bench-%d", i), Rows: rows(121 + 11*(i%2))})
		if err != nil {
			b.Fatal(err)
		}
		supplyRows += res.Rows
		quotaRows += res.QuotaRows
	}
	secs := time.Since(start).Seconds()
	b.ReportMetric(float64(supplyRows)/secs, "supply-rows/s")
	b.ReportMetric(float64(quotaRows)/secs, "quota-rows/s")
}

// BenchmarkApplySupplyPostgres: go test -run ^$ -bench ApplySupplyPostgres -benchtime 1x ./booking/sqlstore/
func BenchmarkApplySupplyPostgres(b *testing.B) { benchApplySupply(b, openPostgres(b)) }

// BenchmarkApplySupplySQLite: go test -run ^$ -bench ApplySupplySQLite -benchtime 1x ./booking/sqlstore/
func BenchmarkApplySupplySQLite(b *testing.B) { benchApplySupply(b, openSQLite(b)) }

// benchRollOver rolls one rotation wave over per iteration, on
// YEYAK_BENCH_CLINICS clinics (default 200) × 30 dates of pfizer dose 1
// (11 waves each, 10 doses a wave, all of a wave's doses moving). After
// the tenth wave it starts again on a fresh campaign (outside the timer).
func benchRollOver(b *testing.B, db *DB) {
	ctx := context.Background()
	base := seedCampaign(b, db)
	n := benchClinics(b)
	clinics := make([]booking.Clinic, n)
	var rows []booking.Supply
	for i := range clinics {
		clinics[i] = booking.Clinic{ID: fmt.Sprintf("R%05d", i), Name: "Clinic", Region: "11-110", Products: []string{"pfizer"}}
		for d := range 30 {
			rows = append(rows, booking.Supply{ClinicID: clinics[i].ID, Date: day1.AddDays(d), Product: "pfizer", Dose: 1, Doses: 110})
		}
	}
	if err := db.PutClinics(ctx, clinics); err != nil {
		b.Fatal(err)
	}
	campaign := func(k int) *booking.Campaign {
		c := *base
		c.ID = fmt.Sprintf("%s-%d", base.ID, k)
		if err := db.PutCampaign(ctx, &c); err != nil {
			b.Fatal(err)
		}
		if _, err := db.ApplySupply(ctx, booking.SupplyLoad{Campaign: &c, Digest: "bench", Rows: rows}); err != nil {
			b.Fatal(err)
		}
		return &c
	}
	rotation := base.Waves() - 1
	c := campaign(0)
	var moved int64
	b.ResetTimer()
	start, paused := time.Now(), time.Duration(0)
	for i := range b.N {
		if i > 0 && i%rotation == 0 {
			b.StopTimer()
			t := time.Now()
			c = campaign(i / rotation)
			paused += time.Since(t)
			b.StartTimer()
		}
		res, err := db.RollOverWave(ctx, c.ID, i%rotation+1, time.Now())
		if err != nil || res.Already {
			b.Fatal(res, err)
		}
		moved += int64(res.QuotaRows)
	}
	b.ReportMetric(float64(moved)/(time.Since(start)-paused).Seconds(), "rows/s")
}

// BenchmarkRollOverPostgres: go test -run ^$ -bench RollOverPostgres -benchtime 1x ./booking/sqlstore/
func BenchmarkRollOverPostgres(b *testing.B) { benchRollOver(b, openPostgres(b)) }

// BenchmarkRollOverSQLite: go test -run ^$ -bench RollOverSQLite -benchtime 1x ./booking/sqlstore/
func BenchmarkRollOverSQLite(b *testing.B) { benchRollOver(b, openSQLite(b)) }

// benchClinics is YEYAK_BENCH_CLINICS, the clinics a seeding or roll-over
// benchmark makes (default 200).
func benchClinics(b *testing.B) int {
	v := os.Getenv("YEYAK_BENCH_CLINICS")
	if v == "" {
		return 200
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("YEYAK_BENCH_CLINICS=%q", v)
	}
	return n
}
