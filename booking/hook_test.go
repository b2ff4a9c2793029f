package booking_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
)

// changes records OnPersonChanged calls and what the store held at each.
type changes struct {
	mu      sync.Mutex
	store   *memStore
	calls   []string
	held    []int // the person's bookings in the store when called
	ctxErrs []error
}

func (c *changes) hook(ctx context.Context, personID string) {
	bs, _ := c.store.Bookings(ctx, personID)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, personID)
	c.held = append(c.held, len(bs))
	c.ctxErrs = append(c.ctxErrs, ctx.Err())
}

func (c *changes) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// withHook rebuilds f's Service with hook as OnPersonChanged.
func withHook(t *testing.T, f *fixture, hook func(context.Context, string)) {
	t.Helper()
	svc, err := booking.NewService(booking.ServiceConfig{Store: f.store, People: f.people, Now: f.clock.Now,
		Logger: slog.New(slog.NewJSONHandler(f.logs, nil)), OnPersonChanged: hook})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
}

func TestOnPersonChangedAfterEveryCommittedChange(t *testing.T) {
	f := newFixture(t, booking.Provisional)
	rec := &changes{store: f.store}
	withHook(t, f, rec.hook)
	ctx := context.Background()

	b, err := f.svc.Book(ctx, f.req("p9"))
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.list(); !slices.Equal(got, []string{"p9"}) || rec.held[0] != 2 {
		t.Fatalf("after Book: calls %v, bookings held at the call %v; want p9 once, after the commit (2 held)", got, rec.held)
	}
	if _, err := f.svc.Reschedule(ctx, "p9", b.ID, "c2", vaxDate, ""); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(kst("2021-08-10 17:00"))
	if _, err := f.svc.Cancel(ctx, "p9", b.ID, ""); err != nil {
		t.Fatal(err)
	}
	if got := rec.list(); !slices.Equal(got, []string{"p9", "p9", "p9"}) {
		t.Fatalf("after reschedule and cancel: %v", got)
	}

	// Provisional bookings settled by the sync consumer.
	f.clock.Set(kst("2021-08-09 21:00"))
	f.people.setDown(true)
	r1, r2 := f.req("p9b"), f.req("onedose")
	r1.BirthDate, r2.BirthDate = younger9, d("1980-03-19")
	p1, err := f.svc.Book(ctx, r1)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := f.svc.Book(ctx, r2)
	if err != nil {
		t.Fatal(err)
	}
	f.people.setDown(false)
	if _, err := f.svc.ConfirmProvisional(ctx, p1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CancelProvisional(ctx, p2.ID, ""); err != nil {
		t.Fatal(err)
	}
	want := []string{"p9", "p9", "p9", "p9b", "onedose", "p9b", "onedose"}
	if got := rec.list(); !slices.Equal(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	// Idempotent repeats change nothing and say nothing.
	if _, err := f.svc.ConfirmProvisional(ctx, p1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CancelProvisional(ctx, p2.ID, ""); err != nil {
		t.Fatal(err)
	}
	if got := rec.list(); len(got) != len(want) {
		t.Fatalf("repeats called the hook: %v", got)
	}
	for i, err := range rec.ctxErrs {
		if err != nil {
			t.Errorf("call %d got a dead context: %v", i, err)
		}
	}
}

func TestOnPersonChangedNotOnFailure(t *testing.T) {
	f := newFixture(t, booking.FailClosed)
	rec := &changes{store: f.store}
	withHook(t, f, rec.hook)
	ctx := context.Background()
	if _, err := f.svc.Book(ctx, f.req("p0")); err == nil { // not their day
		t.Fatal("booked")
	}
	r := f.req("p9")
	r.ClinicID, r.Product = "c2", "moderna" // no quota: sold out
	if _, err := f.svc.Book(ctx, r); booking.ErrorCode(err) != booking.ESOLDOUT {
		t.Fatalf("Book = %v", err)
	}
	b, err := f.svc.Book(ctx, f.req("p9"))
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Set(kst("2021-08-10 21:00")) // another digit's window: no changes
	if _, err := f.svc.Cancel(ctx, "p9", b.ID, ""); booking.ErrorCode(err) != booking.ECHANGENOTALLOWED {
		t.Fatalf("Cancel = %v", err)
	}
	if got := rec.list(); !slices.Equal(got, []string{"p9"}) {
		t.Fatalf("calls %v, want only the successful booking's", got)
	}
}

// A request whose client went away after the commit still invalidates.
func TestOnPersonChangedOutlivesTheRequest(t *testing.T) {
	f := newFixture(t, booking.FailClosed)
	var got error
	var deadline time.Time
	withHook(t, f, func(ctx context.Context, _ string) {
		got = ctx.Err()
		deadline, _ = ctx.Deadline()
	})
	ctx, cancel := context.WithCancel(context.Background())
	b, err := f.svc.Book(ctx, f.req("p9"))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	f.clock.Set(kst("2021-08-10 17:00"))
	// The in-memory store ignores ctx, so the cancel commits; the hook's
	// context must not be the dead request's.
	if _, err := f.svc.Cancel(ctx, "p9", b.ID, ""); err != nil {
		t.Fatalf("Cancel = %v", err)
	}
	if got != nil {
		t.Fatalf("hook context: %v", got)
	}
	if deadline.IsZero() || time.Until(deadline) > booking.DefaultPersonChangedTimeout {
		t.Fatalf("hook deadline %v is not bounded by %v", deadline, booking.DefaultPersonChangedTimeout)
	}
}

func TestOnPersonChangedPanicDoesNotFailTheBooking(t *testing.T) {
	f := newFixture(t, booking.FailClosed)
	withHook(t, f, func(context.Context, string) { panic("cache exploded") })
	b, err := f.svc.Book(context.Background(), f.req("p9"))
	if err != nil || b == nil {
		t.Fatalf("Book with a panicking hook = %v, %v", b, err)
	}
	if !strings.Contains(f.logs.String(), "person change hook panicked") {
		t.Errorf("panic not logged:\n%s", f.logs)
	}
}

// invalidating is a PersonSource with a cache to invalidate.
type invalidating struct {
	*people
	mu  sync.Mutex
	ids []string
}

func (p *invalidating) Invalidate(_ context.Context, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ids = append(p.ids, id)
}

// With no hook, a PersonSource that can invalidate (the eligibility
// cache) is told; an explicit hook replaces it.
func TestPeopleInvalidatedByDefault(t *testing.T) {
	f := newFixture(t, booking.FailClosed)
	src := &invalidating{people: f.people}
	quiet := slog.New(slog.DiscardHandler)
	svc, err := booking.NewService(booking.ServiceConfig{Store: f.store, People: src, Now: f.clock.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Book(context.Background(), f.req("p9")); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(src.ids, []string{"p9"}) {
		t.Fatalf("invalidated %v, want p9", src.ids)
	}
	var hooked []string
	svc, _ = booking.NewService(booking.ServiceConfig{Store: f.store, People: src, Now: f.clock.Now, Logger: quiet,
		OnPersonChanged: func(_ context.Context, id string) { hooked = append(hooked, id) }})
	if _, err := svc.Book(context.Background(), f.req("p9b")); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(src.ids, []string{"p9"}) || !slices.Equal(hooked, []string{"p9b"}) {
		t.Fatalf("with a hook: invalidated %v, hooked %v", src.ids, hooked)
	}
}
