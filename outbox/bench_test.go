package outbox_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/yeyak/yeyak/outbox"
)

// benchDrain inserts n events (untimed), then times a relay draining them
// into kfake, and reports events/s.
func benchDrain(b *testing.B, dialect string, n int, rcfg outbox.RelayConfig, wcfg outbox.WriterConfig) {
	b.Helper()
	var total time.Duration
	for range b.N {
		b.StopTimer()
		db := openDB(b, dialect)
		brokers := startKafka(b, 6, topic)
		w := outbox.NewWriter(brokers, topic, wcfg)
		insertEvents(b, db, makeEvents(n, max(n/10, 1)))
		r, err := outbox.NewRelay(db, dialect, w, rcfg)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.StartTimer()
		start := time.Now()
		go func() { done <- r.Run(ctx) }()
		deadline := time.Now().Add(10 * time.Minute)
		for testutil.ToFloat64(r.Metrics().Published) < float64(n) {
			if time.Now().After(deadline) {
				b.Fatalf("drain of %d events did not finish", n)
			}
			time.Sleep(time.Millisecond)
		}
		total += time.Since(start)
		b.StopTimer()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		if p := pending(b, db); p != 0 {
			b.Fatalf("pending %d after drain", p)
		}
		w.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "events/s")
	b.ReportMetric(total.Seconds()/float64(b.N), "s/drain")
}

// BenchmarkRelayPostgres measures the relay's throughput PostgreSQL →
// kfake (acks=all) for a 20,000-event backlog, by relay batch size and
// writer batch timeout (the tuning behind the defaults).
func BenchmarkRelayPostgres(b *testing.B) {
	for _, bs := range []int{100, 500, 1000, 2000} {
		for _, bt := range []time.Duration{2 * time.Millisecond, 20 * time.Millisecond} {
			b.Run(fmt.Sprintf("batch=%d/timeout=%v", bs, bt), func(b *testing.B) {
				benchDrain(b, outbox.DialectPostgres, 20_000, outbox.RelayConfig{BatchSize: bs},
					outbox.WriterConfig{BatchSize: max(bs, 1000), BatchTimeout: bt})
			})
		}
	}
}

// BenchmarkDrain100k measures how long a 100,000-event backlog (Kafka was
// down, bookings kept coming) takes to drain with the default settings.
func BenchmarkDrain100k(b *testing.B) {
	for _, d := range dialects {
		b.Run(d, func(b *testing.B) {
			benchDrain(b, d, 100_000, outbox.RelayConfig{}, outbox.WriterConfig{})
		})
	}
}
