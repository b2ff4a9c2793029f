// Package adapter is yeyak's port to the legacy immunization registry: the
// Registry interface, its types and typed errors, and the Facade that wraps
// any implementation with circuit breakers, a bulkhead, deadlines, metrics
// and ops controls. The implementations live in adapter/oracle (sqlx +
// godror, the registry's Oracle schema) and adapter/gateway (the registry's
// HTTP gateway, through go-retryablehttp).
//
// The main call wraps an implementation in the Facade, which is what the
// rest of yeyak holds:
//
//	gw, _ := gateway.New(gateway.Config{BaseURL: "http://registry-gw:7070"})
//	reg, err := adapter.NewFacade(gw, adapter.FacadeConfig{Registerer: prometheus.DefaultRegisterer})
//	if err != nil { … }
//	defer reg.Close()
//	rec, err := reg.Eligibility(ctx, personID) // ErrNotFound, ErrUnavailable, …
//	opsMux.Handle("/ops/breakers", reg.OpsHandler(opsToken))  // and "/ops/breakers/"
//
// The contract every implementation passes is adapter/registrytest; the
// runbook for the breakers is docs/runbook.md.
package adapter

import (
	"context"
	"errors"
	"time"
)

// Registry is what yeyak needs from the legacy registry. Implementations are
// safe for concurrent use. Writes are idempotent by booking id: recording or
// cancelling the same booking twice changes nothing the second time.
type Registry interface {
	// Eligibility returns one person's record. Returns ErrNotFound if the
	// registry does not know the person, ErrUnavailable (wrapped) if it
	// cannot answer.
	Eligibility(ctx context.Context, personID string) (Record, error)
	// EligibilityBulk returns the records of the people it knows among ids
	// (unknown ids are absent from the result, not an error); for cache
	// pre-warming. Implementations chunk large lists.
	EligibilityBulk(ctx context.Context, ids []string) ([]Record, error)
	// RecordBooking records a booking. Returns ErrRejected (wrapped) for a
	// business refusal (unknown person, contraindicated, already vaccinated).
	RecordBooking(ctx context.Context, b BookingRecord) error
	// CancelBooking cancels a booking the registry holds; cancelling an
	// unknown or already cancelled booking succeeds.
	CancelBooking(ctx context.Context, bookingID string) error
	// Ping checks that the registry answers.
	Ping(ctx context.Context) error
}

// Record is the registry's view of one person.
type Record struct {
	PersonID  string
	BirthDate time.Time // date only, UTC midnight
	// Doses lists the doses already given.
	Doses []Dose
	// Contraindicated and Excluded are the registry's flags; either makes
	// the person ineligible.
	Contraindicated bool
	Excluded        bool
	// Bookings the registry already holds for the person (active only).
	Bookings []BookingRecord
}

// Dose is one dose given.
type Dose struct {
	Product string
	Number  int
	Date    time.Time // date only, UTC midnight
}

// BookingRecord is a booking as the registry stores it.
type BookingRecord struct {
	BookingID  string
	PersonID   string
	CampaignID string
	ClinicID   string
	Date       time.Time // date only, UTC midnight
	Product    string
	Dose       int
}

// Typed errors. Callers branch on errors.Is, never on strings.
var (
	// ErrNotFound: the registry does not know the person (or booking).
	ErrNotFound = errors.New("registry: not found")
	// ErrRejected: a business "no" — permanent, never retried.
	ErrRejected = errors.New("registry: rejected")
	// ErrUnavailable: timeouts, 5xx, connection errors, open breaker, full
	// bulkhead — retryable.
	ErrUnavailable = errors.New("registry: unavailable")
)
