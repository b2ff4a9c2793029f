package sqlstore

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/mocks/testenv"
)

// benchBook books one dose per iteration for distinct people, in parallel,
// spread over clinics with plenty of capacity, and reports bookings/s. Each
// booking is the full transaction: quota decrement, booking insert, outbox
// insert.
func benchBook(b *testing.B, db *DB) {
	const clinics = 64
	ctx := context.Background()
	qs := make([]booking.Quota, clinics)
	for i := range qs {
		qs[i] = quota(fmt.Sprintf("bc%03d", i), day1, 1, 0, 1<<30)
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
			bk := newBooking(fmt.Sprintf("bench-%d", n), fmt.Sprintf("bc%03d", n%clinics), day1, 1, 0)
			if err := db.CreateBookings(ctx, []*booking.Booking{bk}, eventsFor(booking.EventBookingConfirmed, bk)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(next.Load())/time.Since(start).Seconds(), "bookings/s")
}

// BenchmarkBookPostgres: go test -run ^$ -bench BookPostgres ./booking/sqlstore/
// It runs in both NotifyModes (the default, NotifyInTx, first).
func BenchmarkBookPostgres(b *testing.B) {
	for _, mode := range []NotifyMode{NotifyInTx, NotifyAfterCommit} {
		b.Run("notify="+string(mode), func(b *testing.B) {
			ctx := context.Background()
			db, err := Open(ctx, testenv.Postgres(b), Options{OutboxNotify: mode, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			benchBook(b, db)
		})
	}
}

// BenchmarkBookSQLite: go test -run ^$ -bench BookSQLite ./booking/sqlstore/
func BenchmarkBookSQLite(b *testing.B) { benchBook(b, openSQLite(b)) }
