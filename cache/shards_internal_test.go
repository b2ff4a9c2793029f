package cache

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/yeyak/yeyak/adapter"
)

// nopRegistry answers every person at once.
type nopRegistry struct{}

func (nopRegistry) Eligibility(_ context.Context, id string) (adapter.Record, error) {
	return adapter.Record{PersonID: id}, nil
}
func (nopRegistry) EligibilityBulk(context.Context, []string) ([]adapter.Record, error) {
	return nil, nil
}
func (nopRegistry) RecordBooking(context.Context, adapter.BookingRecord) error { return nil }
func (nopRegistry) CancelBooking(context.Context, string) error                { return nil }
func (nopRegistry) Ping(context.Context) error                                 { return nil }

// BenchmarkHitShards is the hit path (Cache.Get of a fresh entry) with the
// in-process tier split into 1, 4 or 64 shards, everything else equal, in
// parallel: the contention benchmark that decides whether sharding pays.
// Run it with -cpu 1,2 (and more goroutines than cores with -cpu 8).
func BenchmarkHitShards(b *testing.B) {
	const keys = 100_000
	ids := make([]string, keys)
	for i := range ids {
		ids[i] = fmt.Sprintf("P%010d", i)
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	for _, n := range []int{1, 4, 64} {
		b.Run(fmt.Sprintf("shards=%d", n), func(b *testing.B) {
			c, err := New(nopRegistry{}, Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			c.mem = newStoreShards(DefaultMaxEntries, DefaultMaxBytes, n)
			ctx := context.Background()
			for _, id := range ids {
				if _, err := c.Get(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
			var seq atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(seq.Add(1)) * 7919
				for pb.Next() {
					if e, err := c.Get(ctx, ids[i%keys]); err != nil || e.Source != SourceMemory {
						b.Error("miss")
						return
					}
					i++
				}
			})
		})
	}
}
