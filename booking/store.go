package booking

import (
	"context"
	"time"
)

// Store persists campaigns, clinics, quotas, bookings and outbox events.
// booking/sqlstore implements it on PostgreSQL and SQLite.
//
// Every method that changes a booking also writes the given outbox events in
// the same transaction: either all of it commits or none of it does.
type Store interface {
	// PutCampaign inserts or replaces a campaign (its phases and products).
	PutCampaign(ctx context.Context, c *Campaign) error
	// Campaign returns ENOTFOUND if the campaign does not exist.
	Campaign(ctx context.Context, id string) (*Campaign, error)
	// Campaigns lists all campaigns ordered by id.
	Campaigns(ctx context.Context) ([]*Campaign, error)

	// PutClinics inserts or replaces clinics.
	PutClinics(ctx context.Context, clinics []Clinic) error
	// Clinic returns ENOTFOUND if the clinic does not exist.
	Clinic(ctx context.Context, id string) (*Clinic, error)
	// Clinics lists all clinics ordered by id.
	Clinics(ctx context.Context) ([]Clinic, error)

	// SetQuotas inserts or updates quota rows (capacity only; booked is kept).
	// Returns ECONFLICT, changing nothing, if a capacity would fall below
	// what is already booked in that row.
	SetQuotas(ctx context.Context, quotas []Quota) error
	// Quotas lists a campaign's quota rows ordered by clinic, date, product, dose, wave.
	Quotas(ctx context.Context, campaignID string) ([]Quota, error)
	// QuotasChangedSince returns quota rows of the campaign updated after
	// the given version, with the newest version; for in-memory snapshots.
	QuotasChangedSince(ctx context.Context, campaignID string, version int64) ([]Quota, int64, error)

	// CreateBookings takes one dose from each booking's (clinic, date,
	// product, dose, wave) quota row, inserts the bookings and the events,
	// in one transaction. Several bookings are for dose 1 + dose 2 together.
	// Returns ESOLDOUT if any quota row has no dose left (or does not exist),
	// EALREADYBOOKED if the person already has an active booking for that
	// campaign and dose. Nothing is written on error.
	CreateBookings(ctx context.Context, bookings []*Booking, events []Event) error

	// CancelBookings marks the bookings cancelled (with reason) and returns
	// each dose to the wave it came from, with the events, in one
	// transaction. Returns EALREADYCANCELLED if one is already cancelled.
	CancelBookings(ctx context.Context, bookings []*Booking, events []Event) error

	// MoveBookings reschedules: for each pair, releases old's dose and takes
	// new's (new has the same ID, new clinic/date/wave), in one transaction.
	// Returns ESOLDOUT if a target row has no dose left; nothing changes.
	MoveBookings(ctx context.Context, moves []Move, events []Event) error

	// Reserve writes a Reservation (new and moved bookings, one of which
	// may take the first of several dates) with its events in one
	// transaction. Fixed quota rows are taken first: ESOLDOUT if one has no
	// dose left; then the flexible booking takes the first of its dates
	// whose row has a dose left: ESECONDDOSE if none has. EALREADYBOOKED,
	// ENOTFOUND, ECONFLICT and EALREADYCANCELLED as CreateBookings and
	// MoveBookings. Nothing is written on error.
	Reserve(ctx context.Context, r Reservation) error

	// SetStatus changes a booking's status (provisional -> confirmed) with the events.
	SetStatus(ctx context.Context, id string, from, to Status, at time.Time, events []Event) error

	// Booking returns the booking with id if it belongs to personID.
	// Returns ENOTFOUND if it does not exist or belongs to someone else.
	Booking(ctx context.Context, personID, id string) (*Booking, error)
	// BookingByID returns a booking regardless of owner; for the registry
	// sync consumer and ops, never for the public API.
	BookingByID(ctx context.Context, id string) (*Booking, error)
	// Bookings lists a person's bookings, newest first.
	Bookings(ctx context.Context, personID string) ([]*Booking, error)

	// Ping checks that the database answers and migrations are applied.
	Ping(ctx context.Context) error
}

// Move is one booking's change of clinic/date/wave in a reschedule.
type Move struct {
	Old *Booking
	New *Booking
}

// Reservation is what Store.Reserve writes in one transaction: booking dose
// 1 with dose 2, or moving them together. Its Flex booking's date is
// chosen by the store, inside the transaction, so that "the nearest date
// with a dose left" is decided atomically with taking it.
type Reservation struct {
	// Create are new bookings, as in CreateBookings.
	Create []*Booking
	// Moves are rescheduled bookings, as in MoveBookings.
	Moves []Move
	// Flex, when set, is one of the bookings above (a pointer in Create or
	// the New of a move) whose Date the store chooses: the first of
	// FlexDates whose quota row (Flex's clinic, product, dose and wave) has
	// a dose left. The store sets Flex.Date to it.
	Flex      *Booking
	FlexDates []Date
	// Events returns the events to write once every date is fixed. It is
	// called inside the transaction, possibly more than once when the
	// transaction is retried, and must only build events. (The PostgreSQL
	// store may call it once for each of FlexDates, with Flex.Date set,
	// before the one statement that writes the chosen date's.)
	Events func() []Event
}
