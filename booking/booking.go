package booking

import "time"

// Status is a booking's state.
type Status string

const (
	StatusConfirmed   Status = "confirmed"
	StatusProvisional Status = "provisional"
	StatusCancelled   Status = "cancelled"
)

// Booking is one person's appointment for one dose.
type Booking struct {
	ID         string // UUIDv7, see NewID
	PersonID   string // registry person id; never logged raw
	CampaignID string
	ClinicID   string
	Date       Date
	Product    string
	Dose       int
	Wave       int // the quota wave the dose was drawn from; cancel returns it there
	Status     Status
	// CancelReason is set when Status is cancelled: "person" (the person
	// cancelled), "ineligible" (registry verification failed), "dose1_cancelled".
	CancelReason string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Active reports whether the booking holds a dose.
func (b *Booking) Active() bool { return b.Status != StatusCancelled }

// Person is what the booking path knows of a person, from the registry (via
// the eligibility cache) or the identity token.
type Person struct {
	ID        string
	BirthDate Date
	// DosesReceived counts doses already given for the campaign's disease.
	DosesReceived int
	// Excluded is true for contraindications and other exclusions.
	Excluded bool
	// Stale is true when the answer came from an expired cache entry because
	// the registry could not be asked (stale-if-error).
	Stale bool
}
