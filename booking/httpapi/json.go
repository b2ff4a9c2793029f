package httpapi

import (
	"encoding/json"
	"time"

	"github.com/yeyak/yeyak/booking"
)

// Response shapes. Field names are the published contract (openapi.yaml):
// add fields, never rename.

type campaignsResponse struct {
	Campaigns []campaignJSON `json:"campaigns"`
}

type campaignJSON struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Products    []booking.Product `json:"products"`
	Cohort      dateRange         `json:"cohort"`
	Rotation    *rotationJSON     `json:"rotation,omitempty"`
	OpenUntil   time.Time         `json:"open_until"`
	Vaccination vaccinationJSON   `json:"vaccination"`
	TimeZone    string            `json:"time_zone"`
}

type dateRange struct {
	BornFrom booking.Date `json:"born_from"`
	BornTo   booking.Date `json:"born_to"`
}

type vaccinationJSON struct {
	From booking.Date `json:"from"`
	To   booking.Date `json:"to"`
}

type rotationJSON struct {
	Starts booking.Date `json:"starts"`
	Days   int          `json:"days"`
	Digits []int        `json:"digits"`
}

func toCampaignJSON(c *booking.Campaign) campaignJSON {
	out := campaignJSON{
		ID: c.ID, Name: c.Name, Products: c.Products,
		Cohort:      dateRange{c.BornFrom, c.BornTo},
		OpenUntil:   c.OpenUntil.UTC(),
		Vaccination: vaccinationJSON{c.VaccinationFrom, c.VaccinationTo},
		TimeZone:    c.Location().String(),
	}
	if out.Products == nil {
		out.Products = []booking.Product{}
	}
	for i := range c.Phases {
		p := &c.Phases[i]
		if p.Kind != booking.PhaseRotation {
			continue
		}
		days := p.Days
		if days == 0 {
			days = booking.DefaultRotationDays
		}
		rot := &rotationJSON{Starts: p.Starts, Days: days, Digits: make([]int, days)}
		for k := range days {
			rot.Digits[k] = p.RotationDigit(k)
		}
		out.Rotation = rot
		break
	}
	return out
}

type eligibilityResponse struct {
	Eligible    bool       `json:"eligible"`
	Reason      string     `json:"reason"`
	CanBookFrom *time.Time `json:"can_book_from"`
	ClosesAt    *time.Time `json:"closes_at,omitempty"`
	Wave        *int       `json:"wave,omitempty"`
	Provisional bool       `json:"provisional,omitempty"`
}

type clinicsResponse struct {
	Wave    int          `json:"wave"`
	AsOf    time.Time    `json:"as_of"`
	Clinics []clinicJSON `json:"clinics"`
	// NextCursor continues a near search; absent on its last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

type clinicJSON struct {
	ID     string  `json:"id"`
	Name   string  `json:"name"`
	Region string  `json:"region"`
	Lat    float64 `json:"lat"`
	Lon    float64 `json:"lon"`
	// DistanceKm is set by near searches.
	DistanceKm   *float64           `json:"distance_km,omitempty"`
	Availability []availabilityJSON `json:"availability"`
}

type availabilityJSON struct {
	Date      booking.Date `json:"date"`
	Product   string       `json:"product"`
	Remaining int          `json:"remaining"`
}

type bookingResponse struct {
	Booking bookingJSON `json:"booking"`
}

type bookingsResponse struct {
	Bookings []bookingJSON `json:"bookings"`
}

type bookingJSON struct {
	ID           string         `json:"id"`
	CampaignID   string         `json:"campaign_id"`
	ClinicID     string         `json:"clinic_id"`
	Date         booking.Date   `json:"date"`
	Product      string         `json:"product"`
	Dose         int            `json:"dose"`
	Status       booking.Status `json:"status"`
	CancelReason string         `json:"cancel_reason,omitempty"`
	// LinkedBookingID joins the two doses booked together (dose 1 ↔ its
	// dose 2); absent for a booking made alone.
	LinkedBookingID string    `json:"linked_booking_id,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

func toBookingJSON(b *booking.Booking) bookingJSON {
	return bookingJSON{
		ID: b.ID, CampaignID: b.CampaignID, ClinicID: b.ClinicID, Date: b.Date, Product: b.Product,
		Dose: b.Dose, Status: b.Status, CancelReason: b.CancelReason, LinkedBookingID: b.LinkedID,
		CreatedAt: b.CreatedAt.UTC(), UpdatedAt: b.UpdatedAt.UTC(),
	}
}

func marshalLine(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
