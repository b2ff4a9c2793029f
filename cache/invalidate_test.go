package cache_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/cache"
)

// snapshotRegistry reads the person's record when a call arrives and then
// holds the call until released: a registry read in flight whose answer
// predates a change made meanwhile.
type snapshotRegistry struct {
	nopWrites
	mu      sync.Mutex
	rec     adapter.Record
	hold    chan struct{} // nil: answer at once
	entered chan struct{}
	single  atomic.Int64
	bulk    atomic.Int64
}

func (r *snapshotRegistry) read() (adapter.Record, chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rec, r.hold
}

func (r *snapshotRegistry) wait(ctx context.Context, hold chan struct{}) error {
	if hold == nil {
		return nil
	}
	r.entered <- struct{}{}
	select {
	case <-hold:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *snapshotRegistry) Eligibility(ctx context.Context, id string) (adapter.Record, error) {
	r.single.Add(1)
	rec, hold := r.read()
	if err := r.wait(ctx, hold); err != nil {
		return adapter.Record{}, err
	}
	return rec, nil
}

func (r *snapshotRegistry) EligibilityBulk(ctx context.Context, ids []string) ([]adapter.Record, error) {
	r.bulk.Add(1)
	rec, hold := r.read()
	if err := r.wait(ctx, hold); err != nil {
		return nil, err
	}
	return []adapter.Record{rec}, nil
}

type nopWrites struct{}

func (nopWrites) RecordBooking(context.Context, adapter.BookingRecord) error { return nil }
func (nopWrites) CancelBooking(context.Context, string) error                { return nil }
func (nopWrites) Ping(context.Context) error                                 { return nil }

func bookedAlice() adapter.Record {
	r := alice()
	r.Bookings = []adapter.BookingRecord{{BookingID: "b1", PersonID: r.PersonID, CampaignID: "c1", Dose: 1}}
	return r
}

// TestInvalidateDuringReadIsNotOverwritten: a registry read that started
// before Invalidate (and so may carry the old view) must not store its
// answer as current: the next lookup asks the registry again.
func TestInvalidateDuringReadIsNotOverwritten(t *testing.T) {
	reg := &snapshotRegistry{rec: alice(), hold: make(chan struct{}), entered: make(chan struct{}, 1)}
	c := newCache(t, reg, cache.Config{})
	ctx := context.Background()
	got := make(chan cache.Entry, 1)
	go func() {
		e, err := c.Get(ctx, alice().PersonID)
		if err != nil {
			t.Errorf("Get: %v", err)
		}
		got <- e
	}()
	<-reg.entered // the read has the old record in hand
	reg.mu.Lock()
	hold := reg.hold
	reg.rec, reg.hold = bookedAlice(), nil
	reg.mu.Unlock()
	c.Invalidate(ctx, alice().PersonID) // the booking changed
	close(hold)
	<-got
	e, err := c.Get(ctx, alice().PersonID)
	if err != nil || len(e.Record.Bookings) != 1 || e.Source != cache.SourceRegistry {
		t.Fatalf("Get after an invalidation during the read = %+v, %v; want the new record from the registry", e, err)
	}
	if n := reg.single.Load(); n != 2 {
		t.Fatalf("registry reads = %d, want 2", n)
	}
}

// TestInvalidateDuringWarmChunkIsNotOverwritten: the same for a warmer
// chunk in flight.
func TestInvalidateDuringWarmChunkIsNotOverwritten(t *testing.T) {
	reg := &snapshotRegistry{rec: alice(), hold: make(chan struct{}), entered: make(chan struct{}, 1)}
	c := newCache(t, reg, cache.Config{})
	ctx := context.Background()
	roster := cache.NewSliceRoster([]string{alice().PersonID}, func(string) int { return 9 })
	w, err := cache.NewWarmer(c, cache.WarmerConfig{Roster: roster, ChunksPerSecond: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx, 9); err != nil {
		t.Fatal(err)
	}
	<-reg.entered
	reg.mu.Lock()
	hold := reg.hold
	reg.rec, reg.hold = bookedAlice(), nil
	reg.mu.Unlock()
	c.Invalidate(ctx, alice().PersonID)
	close(hold)
	eventually(t, "warmer done", func() bool { return w.Status().State == cache.WarmerDone })
	e, err := c.Get(ctx, alice().PersonID)
	if err != nil || len(e.Record.Bookings) != 1 || e.Source != cache.SourceRegistry {
		t.Fatalf("Get after an invalidation during the warm chunk = %+v, %v; want the new record from the registry", e, err)
	}
}

// stalledRedis is a TCP server that accepts connections and never answers.
func stalledRedis(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { <-stop; c.Close() })
		}
	}()
	t.Cleanup(func() { l.Close(); close(stop); conns.Wait() })
	return l.Addr().String()
}

// TestInvalidateNeverWaitsForRedis: with Redis stalled, Invalidate still
// returns at once (the Redis deletion is queued for a worker); what the
// queue cannot hold is dropped and counted, never waited for.
func TestInvalidateNeverWaitsForRedis(t *testing.T) {
	reg, _ := populated(100)
	c := newCache(t, reg, cache.Config{RedisAddr: stalledRedis(t), RedisTimeout: 200 * time.Millisecond})
	ctx := context.Background()
	if _, err := c.Get(ctx, "P0000000001"); err != nil {
		t.Fatal(err)
	}
	const n = 20_000 // more than the queue holds
	start := time.Now()
	for i := range n {
		c.Invalidate(ctx, "P0000000001")
		if i == 0 {
			// Invalidated in memory at once, whatever Redis does.
			if e, err := c.Get(ctx, "P0000000001"); err != nil || e.Source != cache.SourceRegistry {
				t.Fatalf("Get after Invalidate = %+v, %v; want a registry read", e, err)
			}
		}
	}
	// Generous bound: one synchronous Redis attempt per call would take
	// 20,000 × 1s.
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("%d invalidations took %v with Redis stalled", n, took)
	}
	if st := c.Stats(); st.InvalidationsDropped == 0 {
		t.Fatalf("stats %+v: a full queue must drop (and count) deletions", st)
	}
}

// BenchmarkInvalidate is the cost of Invalidate for a cached person, in
// parallel: memory only, and with the machine's Redis as the second tier
// (the deletion is queued for the worker, so the caller pays for the
// queueing only; when this loop outruns Redis the overflow is dropped and
// counted, as it would be in production).
func BenchmarkInvalidate(b *testing.B) {
	reg := newFakeRegistry()
	ids := benchIDs()
	for _, id := range ids {
		reg.put(adapter.Record{PersonID: id})
	}
	for _, tier := range []string{"memory", "memory+redis"} {
		b.Run(tier, func(b *testing.B) {
			cfg := cache.Config{}
			if tier == "memory+redis" {
				cl, prefix := sharedRedis(b) // its keys are deleted at the end
				cfg.Redis, cfg.KeyPrefix = cl, prefix
			}
			c := newCache(b, reg, cfg)
			ctx := context.Background()
			for _, id := range ids[:10_000] {
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
					c.Invalidate(ctx, ids[i%10_000])
					i++
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(c.Stats().InvalidationsDropped)/float64(b.N), "dropped/op")
		})
	}
}

// TestInvalidateConcurrent: invalidations, lookups and warm chunks of the
// same people from many goroutines at once, with the Redis tier: no error,
// no race (run with -race), and afterwards every person is answered.
func TestInvalidateConcurrent(t *testing.T) {
	cl, prefix := sharedRedis(t)
	reg, pcfg := populated(200)
	c := newCache(t, reg, cache.Config{Redis: cl, KeyPrefix: prefix, RedisTimeout: time.Second})
	ids := knownPeople(pcfg, 50)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				id := ids[(g*31+i)%len(ids)]
				if i%3 == 0 {
					c.Invalidate(ctx, id)
					continue
				}
				if _, err := c.Get(ctx, id); err != nil {
					t.Errorf("Get: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		if e, err := c.Get(ctx, id); err != nil || e.Record.PersonID != id {
			t.Fatalf("Get after the storm = %+v, %v", e, err)
		}
	}
	if st := c.Stats(); st.InvalidationsDropped != 0 {
		t.Fatalf("%d invalidations dropped with Redis healthy", st.InvalidationsDropped)
	}
}
