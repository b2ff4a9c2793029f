// Package registrysync is the registry sync consumer's handler: it applies
// booking events (docs/events.md) to the legacy registry through any
// adapter.Registry (in production the adapter.Facade, whose breaker and
// bulkhead protect the registry), and verifies provisional bookings.
//
// Wire it into an outbox.Consumer:
//
//	h, err := registrysync.New(registrysync.Config{Registry: facade, Verifier: service, Invalidate: eligCache.Invalidate})
//	c, err := outbox.NewConsumer(outbox.ConsumerConfig{
//		Brokers: brokers, GroupID: "registry-sync", Handler: h.Handle,
//		DB: store.DB(), Dialect: string(store.Dialect()),
//	})
//	go c.Run(ctx)
//
// What each event does:
//
//   - BookingConfirmed: RecordBooking with the booking id. The registry is
//     idempotent by booking id, so redelivery changes nothing.
//   - BookingCancelled: CancelBooking of the booking id and of every
//     reservation a reschedule recorded for it (see below).
//   - BookingRescheduled (booking confirmed): the registry's write is
//     idempotent by id and a cancelled reservation stays cancelled — it
//     cannot be re-activated or moved. So a reschedule records a NEW
//     registry reservation whose id is derived from the booking id and the
//     event id (UUIDv5, deterministic: redelivery records the same id
//     again, a no-op), with the new clinic and date, and then cancels the
//     booking's other active reservations (the original id and earlier
//     reschedules: the registry's active reservations for the same
//     person, campaign and dose, of which yeyak allows one). Recording
//     first means the person is never without a registry reservation. The
//     registry thus knows a rescheduled booking under a derived id; ops
//     can compute it with RegistryID.
//   - BookingRescheduled of a provisional booking: nothing (it is not in
//     the registry; its BookingConfirmed carries the new clinic and date).
//   - BookingProvisional: asks Registry.Eligibility for the person. Eligible
//     → Verifier.ConfirmProvisional, which writes BookingConfirmed through
//     the normal booking transaction and outbox (and that event records the
//     booking). Unknown, contraindicated, excluded or already given the
//     dose → Verifier.CancelProvisional(id, "ineligible"), which frees the
//     dose back to its wave the same way.
//
// After each event that wrote to the registry (every type but
// BookingProvisional, which only reads), Config.Invalidate is called with
// the person's id, so the eligibility cache forgets the registry's previous
// view of them.
//
// Errors: a registry ErrRejected, an undecodable payload or an unknown
// event type wrap outbox.ErrPermanent (dead letter); registry
// ErrUnavailable (open breaker, full bulkhead, timeouts) wraps
// outbox.ErrPause, so the consumer pauses instead of hammering the
// registry; anything else is retried.
package registrysync
