package cache_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/mocks/population"
)

// fakeRegistry is a counting in-memory adapter.Registry with the faults the
// cache must survive: an outage (fails at once), a stall (never answers
// until the caller's context ends) and a gate that holds reads until
// released (to line up a stampede).
type fakeRegistry struct {
	mu     sync.Mutex
	people map[string]adapter.Record
	gate   chan struct{} // when non-nil, reads wait for it to close

	single    atomic.Int64 // Eligibility calls
	bulk      atomic.Int64 // EligibilityBulk calls
	bulkIDs   atomic.Int64 // ids asked for in bulk
	perID     sync.Map     // id -> *atomic.Int64 bulk lookups
	down      atomic.Bool
	stall     atomic.Bool
	bulkFails atomic.Int64 // the next n bulk calls fail
}

func newFakeRegistry() *fakeRegistry {
	return &fakeRegistry{people: map[string]adapter.Record{}}
}

func (f *fakeRegistry) put(r adapter.Record) {
	f.mu.Lock()
	f.people[r.PersonID] = r
	f.mu.Unlock()
}

func (f *fakeRegistry) setGate(ch chan struct{}) {
	f.mu.Lock()
	f.gate = ch
	f.mu.Unlock()
}

func (f *fakeRegistry) wait(ctx context.Context) error {
	f.mu.Lock()
	g := f.gate
	f.mu.Unlock()
	if f.stall.Load() {
		<-ctx.Done()
		return fmt.Errorf("stalled: %w: %w", adapter.ErrUnavailable, ctx.Err())
	}
	if f.down.Load() {
		return fmt.Errorf("fake outage: %w", adapter.ErrUnavailable)
	}
	if g != nil {
		select {
		case <-g:
		case <-ctx.Done():
			return fmt.Errorf("gated: %w: %w", adapter.ErrUnavailable, ctx.Err())
		}
	}
	return nil
}

func (f *fakeRegistry) Eligibility(ctx context.Context, id string) (adapter.Record, error) {
	f.single.Add(1)
	if err := f.wait(ctx); err != nil {
		return adapter.Record{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.people[id]
	if !ok {
		return adapter.Record{}, fmt.Errorf("fake: %w", adapter.ErrNotFound)
	}
	return r, nil
}

func (f *fakeRegistry) EligibilityBulk(ctx context.Context, ids []string) ([]adapter.Record, error) {
	f.bulk.Add(1)
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	if f.bulkFails.Add(-1) >= 0 {
		return nil, fmt.Errorf("fake bulk failure: %w", adapter.ErrUnavailable)
	}
	f.bulkIDs.Add(int64(len(ids)))
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []adapter.Record
	for _, id := range ids {
		n, _ := f.perID.LoadOrStore(id, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		if r, ok := f.people[id]; ok {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeRegistry) RecordBooking(context.Context, adapter.BookingRecord) error { return nil }
func (f *fakeRegistry) CancelBooking(context.Context, string) error                { return nil }
func (f *fakeRegistry) Ping(ctx context.Context) error                             { return f.wait(ctx) }

// recordOf converts a synthetic person to the registry's record.
func recordOf(p population.Person) adapter.Record {
	r := adapter.Record{
		PersonID:        p.ID,
		BirthDate:       p.BirthDate.In(time.UTC),
		Contraindicated: p.Contraindicated,
		Excluded:        p.Excluded,
	}
	for _, d := range p.Doses {
		r.Doses = append(r.Doses, adapter.Dose{Product: d.Product, Number: d.Number, Date: d.Date.In(time.UTC)})
	}
	return r
}

// populated returns a fake registry holding the known people of a
// synthetic population of n, and the population config.
func populated(n int) (*fakeRegistry, population.Config) {
	cfg := population.Config{Seed: 7, People: n}
	f := newFakeRegistry()
	for p := range population.People(cfg) {
		if !p.Unknown {
			f.people[p.ID] = recordOf(p)
		}
	}
	return f, cfg
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2021, 7, 19, 20, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
