package adapter_test

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/yeyak/yeyak/adapter"
)

// fakeRegistry is a programmable Registry for the facade's tests: it can
// fail, be slow, or stall ignoring its context (like a hung TCP peer).
type fakeRegistry struct {
	calls atomic.Int64

	mu      sync.Mutex
	err     error
	delay   time.Duration
	stall   chan struct{} // non-nil: every call blocks until it is closed, ignoring ctx
	entered chan struct{} // receives once per call entering, if non-nil
}

func (f *fakeRegistry) set(err error, delay time.Duration) {
	f.mu.Lock()
	f.err, f.delay = err, delay
	f.mu.Unlock()
}

// stallCalls makes calls hang until the returned func is called.
func (f *fakeRegistry) stallCalls() (release func()) {
	ch := make(chan struct{})
	f.mu.Lock()
	f.stall = ch
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			f.stall = nil
			f.mu.Unlock()
			close(ch)
		})
	}
}

func (f *fakeRegistry) do(ctx context.Context) error {
	f.calls.Add(1)
	f.mu.Lock()
	err, delay, stall, entered := f.err, f.delay, f.stall, f.entered
	f.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if stall != nil {
		<-stall // deliberately ignores ctx
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

func (f *fakeRegistry) Eligibility(ctx context.Context, id string) (adapter.Record, error) {
	if err := f.do(ctx); err != nil {
		return adapter.Record{}, err
	}
	return adapter.Record{PersonID: id}, nil
}

func (f *fakeRegistry) EligibilityBulk(ctx context.Context, ids []string) ([]adapter.Record, error) {
	if err := f.do(ctx); err != nil {
		return nil, err
	}
	out := make([]adapter.Record, len(ids))
	for i, id := range ids {
		out[i] = adapter.Record{PersonID: id}
	}
	return out, nil
}

func (f *fakeRegistry) RecordBooking(ctx context.Context, b adapter.BookingRecord) error {
	return f.do(ctx)
}

func (f *fakeRegistry) CancelBooking(ctx context.Context, id string) error { return f.do(ctx) }

func (f *fakeRegistry) Ping(ctx context.Context) error { return f.do(ctx) }

// nopRegistry answers at once; for the overhead benchmark.
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
