package booking

import "time"

// PhaseKind names the three kinds of booking phase.
type PhaseKind string

const (
	// PhaseRotation is the rotation window (10부제): day k of the phase serves
	// one birth-day digit; only people whose day of birth ends in that digit
	// may book in that day's window.
	PhaseRotation PhaseKind = "rotation"
	// PhaseCatchUp is a window restricted to a birth-date sub-range.
	PhaseCatchUp PhaseKind = "catchup"
	// PhaseOpen admits anyone in the cohort until the campaign's booking end.
	PhaseOpen PhaseKind = "open"
)

// RegistryPolicy says what the booking path does when the registry cannot
// answer and the eligibility cache has nothing for the person.
type RegistryPolicy string

const (
	// FailClosed refuses with registry_unavailable (503 + Retry-After),
	// writing nothing. It is the default.
	FailClosed RegistryPolicy = "fail_closed"
	// Provisional accepts a provisional booking (the dose is held) that the
	// registry sync consumer verifies later.
	Provisional RegistryPolicy = "provisional"
)

// Product is a vaccine a campaign offers.
type Product struct {
	// ID is the product code, e.g. "pfizer".
	ID string `json:"id"`
	// Doses is the number of doses in the schedule; 0 means 1.
	Doses int `json:"doses,omitempty"`
	// IntervalDays is the days from dose 1 to dose 2 (e.g. 42 for mRNA in the
	// 2021 schedule). Ignored when Doses < 2.
	IntervalDays int `json:"interval_days,omitempty"`
	// ToleranceDays is how far from the interval date dose 2 may land when
	// that date has no quota. 0 means the exact date only.
	ToleranceDays int `json:"tolerance_days,omitempty"`
}

// Phase is one booking phase. All times are data; nothing is hard-coded.
//
// For a rotation phase, day k (0-based) of the phase starts on Starts+k and
// its window runs from Starts+k at Opens to Starts+k at Closes (Closes may be
// more than 24h: 42h is 18:00 the next day, the 2021 rule), in the campaign's
// time zone. Day k serves digit Digits[k] if Digits is set, else
// (d0 + k) mod 10 where d0 is Starts.Day mod 10.
//
// For a catch-up phase, one window from Starts at Opens to Starts at Closes,
// open to people born in [BornFrom, BornTo].
//
// For an open phase, one window from Starts at Opens until the campaign's
// OpenUntil, open to the whole cohort.
type Phase struct {
	Kind   PhaseKind     `json:"kind"`
	Starts Date          `json:"starts"`
	Days   int           `json:"days,omitempty"`   // rotation: number of days; 0 means 10
	Opens  time.Duration `json:"opens"`            // offset from local midnight of the day
	Closes time.Duration `json:"closes,omitempty"` // offset from local midnight of the day
	Digits []int         `json:"digits,omitempty"` // rotation: optional override, len == Days

	BornFrom Date `json:"born_from,omitzero"` // catch-up: birth-date sub-range
	BornTo   Date `json:"born_to,omitzero"`

	// ChangeOutsideWindow allows cancelling and rescheduling outside one's
	// own window during this phase (2021 rotation: false).
	ChangeOutsideWindow bool `json:"change_outside_window,omitempty"`
}

// Campaign is a vaccination campaign: who (cohort), what (products), when
// (phases, vaccination dates) and where (time zone).
type Campaign struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Products []Product `json:"products"`

	// BornFrom and BornTo bound the cohort by date of birth, inclusive.
	// Age bands (만 나이, international age) are converted to this range when
	// the campaign is configured; see CohortForAges.
	BornFrom Date `json:"born_from"`
	BornTo   Date `json:"born_to"`

	// VaccinationFrom and VaccinationTo bound the vaccination dates, inclusive.
	VaccinationFrom Date `json:"vaccination_from"`
	VaccinationTo   Date `json:"vaccination_to"`

	// TimeZone is an IANA zone name; "" means Asia/Seoul.
	TimeZone string `json:"time_zone,omitempty"`

	// Phases in chronological order.
	Phases []Phase `json:"phases"`

	// OpenUntil is the end of booking (new bookings and changes).
	OpenUntil time.Time `json:"open_until"`

	// RegistryPolicy applies when the registry cannot answer; "" means FailClosed.
	RegistryPolicy RegistryPolicy `json:"registry_policy,omitempty"`
}

// Clinic is a place that administers vaccines.
type Clinic struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Region   string   `json:"region"` // 시도-시군구 style code, e.g. "11-110"
	Lat      float64  `json:"lat"`
	Lon      float64  `json:"lon"`
	Products []string `json:"products"`
}

// Supply is the number of doses a clinic has for one product on one date,
// before it is split into waves.
type Supply struct {
	CampaignID string
	ClinicID   string
	Date       Date
	Product    string
	Dose       int // 1 for first-dose supply (split into waves), 2 for second-dose supply (one pool)
	Doses      int
	// Line is where the row came from in a supply file (as
	// SupplyRowError.Line: the CSV line, or the JSON item index), so the
	// loader can name rows it refuses; 0 when not from a file.
	Line int
}

// OpenWave is the wave shared by the catch-up and open phases. Rotation day k
// (0-based, counted across all rotation phases in order) draws from wave k+1.
const OpenWave = 0

// Quota is one row of the quota table: the share of a clinic's supply for one
// date and product that one wave may book.
type Quota struct {
	CampaignID string
	ClinicID   string
	Date       Date
	Product    string
	Dose       int
	Wave       int
	Capacity   int
	Booked     int
}

// Remaining is what this quota row can still book.
func (q Quota) Remaining() int { return max(q.Capacity-q.Booked, 0) }
