package booking

import "time"

// Status is a booking's state.
type Status string

const (
	StatusConfirmed   Status = "confirmed"
	StatusProvisional Status = "provisional"
	StatusCancelled   Status = "cancelled"
)

// Cancel reasons recorded in Booking.CancelReason and event payloads.
const (
	// ReasonPerson: the person cancelled.
	ReasonPerson = "person"
	// ReasonIneligible: registry verification of a provisional booking failed.
	ReasonIneligible = "ineligible"
	// ReasonDose1Cancelled: a dose 2 cancelled because its dose 1 was.
	ReasonDose1Cancelled = "dose1_cancelled"
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
	// cancelled), "ineligible" (registry verification failed),
	// "dose1_cancelled" (a dose 2 cancelled with its dose 1).
	CancelReason string
	// LinkedID joins the two doses booked together: on a dose 1 it is the id
	// of the dose 2 reserved with it, on that dose 2 the id of its dose 1;
	// "" for a booking made alone. Cancelling or rescheduling dose 1 carries
	// its linked dose 2 along (see Service.Cancel and Service.Reschedule).
	LinkedID  string
	CreatedAt time.Time
	UpdatedAt time.Time
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
