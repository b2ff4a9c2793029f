package registrysync_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/yeyak/yeyak/adapter/registrysync"
	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/mocks/population"
	"github.com/yeyak/yeyak/mocks/registry"
	"github.com/yeyak/yeyak/mocks/testenv"
	"github.com/yeyak/yeyak/outbox"
)

// popPeople answers from the synthetic population, like a warm
// eligibility cache: the booking path never waits for the registry.
type popPeople struct{ cfg population.Config }

func (p popPeople) Person(_ context.Context, id string) (booking.Person, error) {
	i, ok := population.IndexOf(id)
	if !ok {
		return booking.Person{}, booking.Errorf(booking.EUNKNOWNPERSON, "unknown person")
	}
	x := population.PersonAt(p.cfg, i)
	return booking.Person{ID: x.ID, BirthDate: x.BirthDate, DosesReceived: len(x.Doses), Excluded: x.Excluded || x.Contraindicated}, nil
}

// BenchmarkBookingWithSync compares booking throughput on PostgreSQL alone
// with booking throughput while the outbox relay and the registry sync
// consumer (unthrottled: the worst case) run beside it in the same
// process. Compare the bookings/s of the two sub-benchmarks.
func BenchmarkBookingWithSync(b *testing.B) {
	pop := population.Config{People: 10_000_000, BornFrom: booking.MustDate("1975-01-01"), BornTo: booking.MustDate("2000-12-31"),
		VaccinatedShare: -1, ContraindicatedShare: -1, ExcludedShare: -1, UnknownShare: -1}
	var next atomic.Int64
	for _, mode := range []string{"alone", "with-relay-and-consumer", "with-relay-and-unthrottled-consumer"} {
		b.Run(mode, func(b *testing.B) {
			reg := registry.New(registry.Config{Population: pop})
			s := newSystemOn(b, testenv.Postgres(b), popPeople{pop}, reg, 1_000_000, 50)
			var applied func() int64
			if mode != "alone" {
				// Production settings: default relay, default consumer
				// rate limit (200/s) unless unthrottled.
				w := outbox.NewWriter(s.brokers, outbox.DefaultTopic, outbox.WriterConfig{})
				b.Cleanup(func() { w.Close() })
				r, err := outbox.NewRelay(s.store.DB(), string(s.store.Dialect()), w, outbox.RelayConfig{})
				if err != nil {
					b.Fatal(err)
				}
				run(b, r.Run)
				h, err := registrysync.New(registrysync.Config{Registry: s.reg, Verifier: s.svc})
				if err != nil {
					b.Fatal(err)
				}
				lim := rate.Limit(0)
				if mode == "with-relay-and-unthrottled-consumer" {
					lim = rate.Inf
				}
				cons, err := outbox.NewConsumer(outbox.ConsumerConfig{Brokers: s.brokers, GroupID: "registry-sync",
					Handler: h.Handle, DB: s.store.DB(), Dialect: string(s.store.Dialect()), Rate: lim})
				if err != nil {
					b.Fatal(err)
				}
				run(b, cons.Run)
				applied = func() int64 { return cons.Stats().Applied }
			}
			ctx := context.Background()
			b.SetParallelism(4)
			b.ResetTimer()
			start := time.Now()
			var failed atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(next.Add(1))
					if _, err := s.bookAt(ctx, fmt.Sprintf("K%03d", i%50+1), population.ID(i), booking.Date{}); err != nil {
						failed.Add(1)
					}
				}
			})
			el := time.Since(start)
			b.StopTimer()
			if f := failed.Load(); f > 0 {
				b.Fatalf("%d bookings failed", f)
			}
			b.ReportMetric(float64(b.N)/el.Seconds(), "bookings/s")
			if applied != nil {
				// How far the registry sync kept up during the run.
				b.ReportMetric(float64(applied())/float64(b.N), "synced/booked")
			}
		})
	}
}
