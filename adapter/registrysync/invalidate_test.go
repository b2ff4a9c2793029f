package registrysync_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/yeyak/yeyak/adapter/registrysync"
	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/cache"
	"github.com/yeyak/yeyak/mocks/registry"
	"github.com/yeyak/yeyak/outbox"
)

// invalidations records Config.Invalidate calls.
type invalidations struct {
	mu  sync.Mutex
	ids []string
}

func (v *invalidations) invalidate(_ context.Context, id string) {
	v.mu.Lock()
	v.ids = append(v.ids, id)
	v.mu.Unlock()
}

func (v *invalidations) take() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	ids := v.ids
	v.ids = nil
	return ids
}

// TestInvalidateAfterRegistryWrites: the hook is called with the person's
// id after each event the registry applied, and never after a rejection,
// a failure or a provisional verification (which writes nothing).
func TestInvalidateAfterRegistryWrites(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry()
	inv := &invalidations{}
	h, err := registrysync.New(registrysync.Config{Registry: reg, Verifier: &fakeVerifier{}, Invalidate: inv.invalidate})
	if err != nil {
		t.Fatal(err)
	}
	b := bookingFor(healthy.ID, booking.StatusConfirmed)
	moved := *b
	moved.ClinicID = "K002"
	cancelled := *b
	cancelled.Status = booking.StatusCancelled
	bad := bookingFor(contraindicated.ID, booking.StatusConfirmed)
	prov := bookingFor(healthy.ID, booking.StatusProvisional)
	down := bookingFor(vaccinated.ID, booking.StatusConfirmed)
	down.Dose = 2
	steps := []struct {
		name    string
		ev      booking.Event
		faults  registry.Faults
		wantErr error
		want    []string
	}{
		{"confirmed", event(booking.EventBookingConfirmed, b, nil), registry.Faults{}, nil, []string{healthy.ID}},
		{"redelivered", event(booking.EventBookingConfirmed, b, nil), registry.Faults{}, nil, []string{healthy.ID}},
		{"rescheduled", event(booking.EventBookingRescheduled, &moved, nil), registry.Faults{}, nil, []string{healthy.ID}},
		{"cancelled", event(booking.EventBookingCancelled, &cancelled, nil), registry.Faults{}, nil, []string{healthy.ID}},
		{"rejected", event(booking.EventBookingConfirmed, bad, nil), registry.Faults{}, outbox.ErrPermanent, nil},
		{"provisional verified", event(booking.EventBookingProvisional, prov, nil), registry.Faults{}, nil, nil},
		{"registry down", event(booking.EventBookingConfirmed, down, nil), registry.Faults{Outage: true}, outbox.ErrPause, nil},
	}
	for _, s := range steps {
		if err := reg.SetFaults(s.faults); err != nil {
			t.Fatal(err)
		}
		err := h.Handle(ctx, msg(s.ev))
		if (s.wantErr == nil && err != nil) || (s.wantErr != nil && !errors.Is(err, s.wantErr)) {
			t.Fatalf("%s: err = %v, want %v", s.name, err, s.wantErr)
		}
		if got := inv.take(); !slices.Equal(got, s.want) {
			t.Fatalf("%s: invalidated %v, want %v", s.name, got, s.want)
		}
	}
}

// TestInvalidateRefreshesTheRealCache: with the cache's own Invalidate as
// the hook, a person cached before their booking reached the registry is
// read again afterwards and the cache shows the registry's new view.
func TestInvalidateRefreshesTheRealCache(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry()
	c, err := cache.New(reg, cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if e, err := c.Get(ctx, healthy.ID); err != nil || len(e.Record.Bookings) != 0 {
		t.Fatalf("before: %+v, %v", e, err)
	}
	h, err := registrysync.New(registrysync.Config{Registry: reg, Invalidate: c.Invalidate})
	if err != nil {
		t.Fatal(err)
	}
	b := bookingFor(healthy.ID, booking.StatusConfirmed)
	if err := h.Handle(ctx, msg(event(booking.EventBookingConfirmed, b, nil))); err != nil {
		t.Fatal(err)
	}
	e, err := c.Get(ctx, healthy.ID)
	if err != nil || e.Source != cache.SourceRegistry || len(e.Record.Bookings) != 1 || e.Record.Bookings[0].BookingID != b.ID {
		t.Fatalf("after the registry recorded the booking: %+v, %v; want the registry's new view", e, err)
	}
}
