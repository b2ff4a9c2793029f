package registrysync_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/adapter/registrysync"
	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/mocks/population"
	"github.com/yeyak/yeyak/mocks/registry"
	"github.com/yeyak/yeyak/outbox"
)

// fakeVerifier records the calls and answers with a configured error.
type fakeVerifier struct {
	mu       sync.Mutex
	confirms []string
	cancels  []string
	reasons  []string
	err      error
}

func (v *fakeVerifier) ConfirmProvisional(_ context.Context, id string) (*booking.Booking, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.confirms = append(v.confirms, id)
	return &booking.Booking{ID: id, Status: booking.StatusConfirmed}, v.err
}

func (v *fakeVerifier) CancelProvisional(_ context.Context, id, reason string) (*booking.Booking, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.cancels = append(v.cancels, id)
	v.reasons = append(v.reasons, reason)
	return &booking.Booking{ID: id, Status: booking.StatusCancelled}, v.err
}

var (
	healthy         = population.Person{ID: "P0000000001", BirthDate: booking.MustDate("1960-03-11")}
	contraindicated = population.Person{ID: "P0000000002", BirthDate: booking.MustDate("1961-04-02"), Contraindicated: true}
	vaccinated      = population.Person{ID: "P0000000003", BirthDate: booking.MustDate("1962-05-03"),
		Doses: []population.Dose{{Number: 1, Product: "pfizer", Date: booking.MustDate("2021-06-01")}}}
	unknown = "P0000009999"
)

func newRegistry() *registry.Registry {
	r := registry.NewEmpty()
	for _, p := range []population.Person{healthy, contraindicated, vaccinated} {
		r.Add(p)
	}
	return r
}

func bookingFor(person string, status booking.Status) *booking.Booking {
	return &booking.Booking{ID: booking.NewID(), PersonID: person, CampaignID: "c2021", ClinicID: "K001",
		Date: booking.MustDate("2021-07-26"), Product: "pfizer", Dose: 1, Wave: 3, Status: status}
}

// msg turns an event into the consumer's Message.
func msg(ev booking.Event) outbox.Message {
	return outbox.Message{EventID: ev.ID, Type: string(ev.Type), Key: ev.Key, Payload: ev.Payload, Headers: ev.Headers}
}

func event(typ booking.EventType, b *booking.Booking, prev *booking.EventPrevious) booking.Event {
	return booking.NewEvent(typ, b, prev, "", time.Now())
}

func newHandler(t *testing.T, reg adapter.Registry, v registrysync.Verifier) *registrysync.Handler {
	t.Helper()
	h, err := registrysync.New(registrysync.Config{Registry: reg, Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestConfirmedRecordsOnceInEffect(t *testing.T) {
	reg := newRegistry()
	h := newHandler(t, reg, nil)
	b := bookingFor(healthy.ID, booking.StatusConfirmed)
	m := msg(event(booking.EventBookingConfirmed, b, nil))
	for range 2 { // redelivery
		if err := h.Handle(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	res, ok := reg.Reservation(b.ID)
	if !ok || !res.Active() || res.ClinicID != "K001" || res.PersonID != healthy.ID {
		t.Fatalf("reservation %+v (found %v)", res, ok)
	}
	if total, active := reg.Reservations(); total != 1 || active != 1 {
		t.Fatalf("registry holds %d reservations (%d active), want 1", total, active)
	}
}

func TestCancelledCancels(t *testing.T) {
	reg := newRegistry()
	h := newHandler(t, reg, nil)
	b := bookingFor(healthy.ID, booking.StatusConfirmed)
	ctx := context.Background()
	if err := h.Handle(ctx, msg(event(booking.EventBookingConfirmed, b, nil))); err != nil {
		t.Fatal(err)
	}
	c := *b
	c.Status, c.CancelReason = booking.StatusCancelled, "person"
	if err := h.Handle(ctx, msg(event(booking.EventBookingCancelled, &c, nil))); err != nil {
		t.Fatal(err)
	}
	if res, _ := reg.Reservation(b.ID); res.Active() {
		t.Fatal("reservation still active after BookingCancelled")
	}
}

// TestRescheduleMovesRegistryReservation: the registry cannot move a
// reservation, so a reschedule records a derived id at the new place and
// cancels the old one; redelivery and a later cancel behave.
func TestRescheduleMovesRegistryReservation(t *testing.T) {
	reg := newRegistry()
	h := newHandler(t, reg, nil)
	ctx := context.Background()
	b := bookingFor(healthy.ID, booking.StatusConfirmed)
	if err := h.Handle(ctx, msg(event(booking.EventBookingConfirmed, b, nil))); err != nil {
		t.Fatal(err)
	}
	moved := *b
	moved.ClinicID, moved.Date = "K002", booking.MustDate("2021-07-28")
	ev := event(booking.EventBookingRescheduled, &moved, &booking.EventPrevious{ClinicID: "K001", Date: b.Date})
	for range 2 {
		if err := h.Handle(ctx, msg(ev)); err != nil {
			t.Fatal(err)
		}
	}
	newID := registrysync.RegistryID(b.ID, ev.ID)
	res, ok := reg.Reservation(newID)
	if !ok || !res.Active() || res.ClinicID != "K002" || !res.Date.Equal(time.Date(2021, 7, 28, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("new reservation %+v (found %v)", res, ok)
	}
	if old, _ := reg.Reservation(b.ID); old.Active() {
		t.Fatal("old reservation still active")
	}
	// A second reschedule cancels the first derived reservation.
	again := moved
	again.ClinicID = "K003"
	ev2 := event(booking.EventBookingRescheduled, &again, &booking.EventPrevious{ClinicID: "K002", Date: moved.Date})
	if err := h.Handle(ctx, msg(ev2)); err != nil {
		t.Fatal(err)
	}
	if r1, _ := reg.Reservation(newID); r1.Active() {
		t.Fatal("first reschedule's reservation still active")
	}
	if _, active := reg.Reservations(); active != 1 {
		t.Fatalf("%d active reservations after two reschedules, want 1", active)
	}
	// Cancelling the booking cancels whatever id the registry holds it under.
	c := again
	c.Status = booking.StatusCancelled
	if err := h.Handle(ctx, msg(event(booking.EventBookingCancelled, &c, nil))); err != nil {
		t.Fatal(err)
	}
	if _, active := reg.Reservations(); active != 0 {
		t.Fatalf("%d active reservations after cancel, want 0", active)
	}
}

func TestRescheduleOfProvisionalBookingWritesNothing(t *testing.T) {
	reg := newRegistry()
	h := newHandler(t, reg, nil)
	b := bookingFor(healthy.ID, booking.StatusProvisional)
	if err := h.Handle(context.Background(), msg(event(booking.EventBookingRescheduled, b, &booking.EventPrevious{ClinicID: "K009", Date: b.Date}))); err != nil {
		t.Fatal(err)
	}
	if total, _ := reg.Reservations(); total != 0 {
		t.Fatalf("registry holds %d reservations, want 0", total)
	}
}

func TestProvisionalVerification(t *testing.T) {
	for _, tc := range []struct {
		name        string
		person      string
		wantConfirm bool
	}{
		{"eligible", healthy.ID, true},
		{"contraindicated", contraindicated.ID, false},
		{"dose already given", vaccinated.ID, false},
		{"unknown to the registry", unknown, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newRegistry()
			v := &fakeVerifier{}
			h := newHandler(t, reg, v)
			b := bookingFor(tc.person, booking.StatusProvisional)
			if err := h.Handle(context.Background(), msg(event(booking.EventBookingProvisional, b, nil))); err != nil {
				t.Fatal(err)
			}
			if tc.wantConfirm {
				if len(v.confirms) != 1 || v.confirms[0] != b.ID || len(v.cancels) != 0 {
					t.Fatalf("confirms %v cancels %v", v.confirms, v.cancels)
				}
			} else if len(v.cancels) != 1 || v.cancels[0] != b.ID || v.reasons[0] != registrysync.ReasonIneligible || len(v.confirms) != 0 {
				t.Fatalf("confirms %v cancels %v reasons %v", v.confirms, v.cancels, v.reasons)
			}
			if total, _ := reg.Reservations(); total != 0 {
				t.Fatal("verification wrote to the registry directly (must go through the booking transaction)")
			}
		})
	}
}

func TestErrorClassification(t *testing.T) {
	ctx := context.Background()
	outage := func() *registry.Registry {
		r := newRegistry()
		if err := r.SetFaults(registry.Faults{Outage: true}); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tc := range []struct {
		name   string
		reg    *registry.Registry
		ver    registrysync.Verifier
		m      outbox.Message
		is     []error
		isNot  []error
		wantOK bool
	}{
		{name: "rejected by the registry is permanent", reg: newRegistry(),
			m:  msg(event(booking.EventBookingConfirmed, bookingFor(contraindicated.ID, booking.StatusConfirmed), nil)),
			is: []error{outbox.ErrPermanent, adapter.ErrRejected}},
		{name: "registry down pauses", reg: outage(),
			m:  msg(event(booking.EventBookingConfirmed, bookingFor(healthy.ID, booking.StatusConfirmed), nil)),
			is: []error{outbox.ErrPause, adapter.ErrUnavailable}, isNot: []error{outbox.ErrPermanent}},
		{name: "registry down during verification pauses", reg: outage(), ver: &fakeVerifier{},
			m:  msg(event(booking.EventBookingProvisional, bookingFor(healthy.ID, booking.StatusProvisional), nil)),
			is: []error{outbox.ErrPause}},
		{name: "undecodable payload is permanent", reg: newRegistry(),
			m:  outbox.Message{EventID: "e1", Payload: []byte(`{"schema_version":`)},
			is: []error{outbox.ErrPermanent}},
		{name: "unknown event type is permanent", reg: newRegistry(),
			m:  outbox.Message{EventID: "e1", Payload: []byte(`{"schema_version":1,"type":"BookingTeleported","booking":{"id":"b","person_id":"p"}}`)},
			is: []error{outbox.ErrPermanent}},
		{name: "provisional without verifier is permanent", reg: newRegistry(),
			m:  msg(event(booking.EventBookingProvisional, bookingFor(healthy.ID, booking.StatusProvisional), nil)),
			is: []error{outbox.ErrPermanent}},
		{name: "confirm of a booking cancelled meanwhile is done", reg: newRegistry(),
			ver:    &fakeVerifier{err: booking.Errorf(booking.EALREADYCANCELLED, "cancelled")},
			m:      msg(event(booking.EventBookingProvisional, bookingFor(healthy.ID, booking.StatusProvisional), nil)),
			wantOK: true},
		{name: "verifier database error is retried", reg: newRegistry(),
			ver:   &fakeVerifier{err: fmt.Errorf("db: %w", errors.New("connection reset"))},
			m:     msg(event(booking.EventBookingProvisional, bookingFor(healthy.ID, booking.StatusProvisional), nil)),
			isNot: []error{outbox.ErrPermanent, outbox.ErrPause}},
		{name: "verifier: unknown booking is permanent", reg: newRegistry(),
			ver: &fakeVerifier{err: booking.Errorf(booking.ENOTFOUND, "no such booking")},
			m:   msg(event(booking.EventBookingProvisional, bookingFor(healthy.ID, booking.StatusProvisional), nil)),
			is:  []error{outbox.ErrPermanent}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v registrysync.Verifier
			if tc.ver != nil {
				v = tc.ver
			}
			err := newHandler(t, tc.reg, v).Handle(ctx, tc.m)
			if tc.wantOK {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("err = nil")
			}
			for _, want := range tc.is {
				if !errors.Is(err, want) {
					t.Errorf("err %v is not %v", err, want)
				}
			}
			for _, not := range tc.isNot {
				if errors.Is(err, not) {
					t.Errorf("err %v is %v", err, not)
				}
			}
		})
	}
}
