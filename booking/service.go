package booking

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// PersonSource answers who a person is for the booking path: in production
// the eligibility cache in front of the registry facade.
type PersonSource interface {
	// Person returns what the registry knows of personID. Returns ENOTFOUND
	// or EUNKNOWNPERSON if the registry does not know the person, and
	// EREGISTRYDOWN when the registry cannot answer and nothing is cached.
	Person(ctx context.Context, personID string) (Person, error)
}

// ServiceConfig configures a Service. Store and People are required.
type ServiceConfig struct {
	// Store persists campaigns, clinics, quotas, bookings and events.
	Store Store
	// People looks persons up (eligibility cache + registry).
	People PersonSource
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives one structured line per booking change; nil means
	// slog.Default(). Person ids are never logged.
	Logger *slog.Logger
}

// Service is the booking use cases: it applies the campaign rules, asks the
// registry (through People) who the person is, and writes bookings with
// their outbox events through the Store. It is safe for concurrent use.
//
// Every method that takes a personID acts for that person only: bookings of
// others are ENOTFOUND, exactly as if they did not exist (no proxy booking).
type Service struct {
	store  Store
	people PersonSource
	now    func() time.Time
	log    *slog.Logger
}

// NewService returns a Service, or an error if Store or People is missing.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("booking: NewService: Store is required")
	}
	if cfg.People == nil {
		return nil, errors.New("booking: NewService: People is required")
	}
	s := &Service{store: cfg.Store, people: cfg.People, now: cfg.Now, log: cfg.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s, nil
}

// BookRequest is a person's request to book a first dose.
type BookRequest struct {
	// PersonID is the authenticated person; they book for themselves only.
	PersonID   string
	CampaignID string
	ClinicID   string
	// Date is the vaccination date, within the campaign's vaccination range.
	Date    Date
	Product string
	// BirthDate comes from the identity token and is optional. It is used
	// only when the registry cannot answer (provisional policy).
	BirthDate Date
	// Traceparent is the request's W3C trace context, copied to the event.
	Traceparent string
}

// Campaigns lists all campaigns ordered by id.
func (s *Service) Campaigns(ctx context.Context) ([]*Campaign, error) {
	cs, err := s.store.Campaigns(ctx)
	if err != nil {
		return nil, fmt.Errorf("list campaigns: %w", err)
	}
	return cs, nil
}

// Campaign returns a campaign. Returns ENOTFOUND if it does not exist.
func (s *Service) Campaign(ctx context.Context, id string) (*Campaign, error) {
	if strings.TrimSpace(id) == "" {
		return nil, Errorf(EINVALID, "campaign id is empty")
	}
	c, err := s.store.Campaign(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("get campaign %s: %w", id, err)
	}
	return c, nil
}

// subject is the outcome of looking a person up for a campaign.
type subject struct {
	person      Person
	birth       Date // the birth date the rules are applied to
	provisional bool // the registry could not answer; birth is the token's
}

// lookup asks People about personID. When the registry cannot answer it
// applies the campaign's RegistryPolicy: FailClosed (the default) returns
// EREGISTRYDOWN; Provisional continues on tokenBirth if there is one, else
// EREGISTRYDOWN. An unknown person is EUNKNOWNPERSON.
func (s *Service) lookup(ctx context.Context, c *Campaign, personID string, tokenBirth Date) (subject, error) {
	p, err := s.people.Person(ctx, personID)
	switch ErrorCode(err) {
	case "":
		return subject{person: p, birth: p.BirthDate}, nil
	case ENOTFOUND, EUNKNOWNPERSON:
		return subject{}, &Error{Code: EUNKNOWNPERSON, Message: "The registry does not know this person.", Err: err}
	case EREGISTRYDOWN:
		if c.RegistryPolicy == Provisional && !tokenBirth.IsZero() {
			return subject{person: Person{ID: personID, BirthDate: tokenBirth}, birth: tokenBirth, provisional: true}, nil
		}
		return subject{}, &Error{Code: EREGISTRYDOWN, Message: "The registry is unavailable; try again later.", Err: err}
	default:
		return subject{}, fmt.Errorf("look up person: %w", err)
	}
}

// eligible checks what the registry says beyond the birth date.
func eligible(p Person, product Product) error {
	if p.Excluded {
		return Errorf(ENOTELIGIBLE, "The person is excluded from this campaign.")
	}
	if p.DosesReceived >= product.DosesOf() {
		return Errorf(ENOTELIGIBLE, "The person has already received every dose of this product.")
	}
	return nil
}

// Eligibility tells a person whether they may book in the campaign now and,
// if not, why and when they may next (Decision.OpensAt). tokenBirth is the
// identity token's birth date (optional), used only when the registry cannot
// answer and the campaign's policy is Provisional; then Decision.Provisional
// is set. Excluded persons and those who have all doses get Reason
// ENOTELIGIBLE. Returns ENOTFOUND for an unknown campaign, EUNKNOWNPERSON for
// a person the registry does not know, EREGISTRYDOWN when the registry cannot
// answer and the policy does not allow going on.
func (s *Service) Eligibility(ctx context.Context, personID, campaignID string, tokenBirth Date) (Decision, error) {
	if strings.TrimSpace(personID) == "" || strings.TrimSpace(campaignID) == "" {
		return Decision{}, Errorf(EINVALID, "person id and campaign id are required")
	}
	c, err := s.Campaign(ctx, campaignID)
	if err != nil {
		return Decision{}, err
	}
	sub, err := s.lookup(ctx, c, personID, tokenBirth)
	if err != nil {
		return Decision{}, err
	}
	if sub.person.Excluded {
		return Decision{Reason: ENOTELIGIBLE, Phase: -1, Provisional: sub.provisional}, nil
	}
	if !anyProductNeeds(c, sub.person.DosesReceived) {
		return Decision{Reason: ENOTELIGIBLE, Phase: -1, Provisional: sub.provisional}, nil
	}
	d := CanBook(c, sub.birth, s.now())
	d.Provisional = sub.provisional
	return d, nil
}

// anyProductNeeds reports whether some product of c has more doses than received.
func anyProductNeeds(c *Campaign, received int) bool {
	for _, p := range c.Products {
		if p.DosesOf() > received {
			return true
		}
	}
	return false
}

// refusal turns a negative Decision into the error Book and the change
// methods return.
func refusal(d Decision) error {
	msg := map[Code]string{
		ENOTINCOHORT:      "The person is not in this campaign's cohort.",
		ENOTYOURDAY:       "Today's rotation window is for another birth-date digit.",
		ENOTYOURWINDOW:    "The current window is for another birth-date range.",
		ECLOSED:           "Booking is closed at this hour.",
		EOUTSIDECAMPAIGN:  "Booking for this campaign is not open.",
		ECHANGENOTALLOWED: "Bookings cannot be changed now.",
		EALREADYCANCELLED: "The booking is already cancelled.",
	}[d.Reason]
	if msg == "" {
		msg = "Not allowed now."
	}
	if !d.OpensAt.IsZero() {
		msg += " Next window opens at " + d.OpensAt.Format(time.RFC3339) + "."
	}
	return Errorf(d.Reason, "%s", msg)
}

// Book books a first dose for req.PersonID. It returns the new booking,
// confirmed, or provisional when the registry could not answer and the
// campaign's policy is Provisional and the request carries a birth date.
//
// Returns EINVALID for a malformed request (empty ids, a product the campaign
// does not offer, a date outside the vaccination range, an unknown clinic or
// one that does not administer the product); ENOTFOUND for an unknown
// campaign; EUNKNOWNPERSON, ENOTELIGIBLE, EREGISTRYDOWN from the person
// lookup; the CanBook refusal code (ENOTINCOHORT, ENOTYOURDAY, …); ESOLDOUT
// and EALREADYBOOKED from the store. Nothing is written on error.
func (s *Service) Book(ctx context.Context, req BookRequest) (*Booking, error) {
	if strings.TrimSpace(req.PersonID) == "" || strings.TrimSpace(req.CampaignID) == "" ||
		strings.TrimSpace(req.ClinicID) == "" || strings.TrimSpace(req.Product) == "" || req.Date.IsZero() {
		return nil, Errorf(EINVALID, "person, campaign, clinic, product and date are required")
	}
	c, err := s.Campaign(ctx, req.CampaignID)
	if err != nil {
		return nil, err
	}
	product, err := s.checkSlot(ctx, c, req.ClinicID, req.Product, req.Date)
	if err != nil {
		return nil, err
	}
	sub, err := s.lookup(ctx, c, req.PersonID, req.BirthDate)
	if err != nil {
		return nil, err
	}
	if err := eligible(sub.person, product); err != nil {
		return nil, err
	}
	now := s.now()
	d := CanBook(c, sub.birth, now)
	if !d.OK {
		return nil, refusal(d)
	}

	dose, wave := sub.person.DosesReceived+1, d.Wave
	if dose >= 2 {
		wave = OpenWave // later doses draw from the single dose-2 pool (see SplitSupply)
	}
	status, typ := StatusConfirmed, EventBookingConfirmed
	if sub.provisional {
		status, typ = StatusProvisional, EventBookingProvisional
	}
	first := &Booking{
		ID: NewID(), PersonID: req.PersonID, CampaignID: c.ID, ClinicID: req.ClinicID,
		Date: req.Date, Product: product.ID, Dose: dose,
		Wave: wave, Status: status, CreatedAt: now.UTC(), UpdatedAt: now.UTC(),
	}
	bookings := planDoses(c, product, first)
	events := make([]Event, len(bookings))
	for i, b := range bookings {
		events[i] = NewEvent(typ, b, nil, req.Traceparent, now)
	}
	if err := s.store.CreateBookings(ctx, bookings, events); err != nil {
		return nil, fmt.Errorf("create booking: %w", err)
	}
	s.log.InfoContext(ctx, "booking created", "booking_id", first.ID, "campaign_id", c.ID,
		"clinic_id", first.ClinicID, "dose", first.Dose, "wave", first.Wave, "status", string(first.Status))
	return first, nil
}

// planDoses lists the bookings one Book call creates, first among them.
//
// Extension point: reserving dose 2 together with dose 1 (interval and
// tolerance from the Product, quota of the dose-2 pool, ESECONDDOSE when no
// date in the tolerance has a dose) belongs here; Store.CreateBookings
// already takes several bookings in one transaction. Today only the first
// dose is booked.
func planDoses(_ *Campaign, _ Product, first *Booking) []*Booking {
	return []*Booking{first}
}

// checkSlot validates a product, clinic and vaccination date for campaign c.
func (s *Service) checkSlot(ctx context.Context, c *Campaign, clinicID, productID string, date Date) (Product, error) {
	product, ok := c.Product(productID)
	if !ok {
		return Product{}, Errorf(EINVALID, "product %q is not offered by this campaign", productID)
	}
	if date.Before(c.VaccinationFrom) || date.After(c.VaccinationTo) {
		return Product{}, Errorf(EINVALID, "date %s is outside the vaccination dates %s..%s", date, c.VaccinationFrom, c.VaccinationTo)
	}
	clinic, err := s.store.Clinic(ctx, clinicID)
	if ErrorCode(err) == ENOTFOUND {
		return Product{}, &Error{Code: EINVALID, Message: fmt.Sprintf("clinic %q does not exist", clinicID), Err: err}
	} else if err != nil {
		return Product{}, fmt.Errorf("get clinic %s: %w", clinicID, err)
	}
	for _, p := range clinic.Products {
		if p == productID {
			return product, nil
		}
	}
	return Product{}, Errorf(EINVALID, "clinic %q does not administer %q", clinicID, productID)
}

// owned checks that personID may change their active booking id now and
// returns it with its campaign and the birth date the change rules apply to. When the registry cannot answer, the
// person's birth date is unknown: changes then pass only where they do not
// depend on it (ChangeOutsideWindow phases, the open phase), and otherwise
// EREGISTRYDOWN.
func (s *Service) owned(ctx context.Context, personID, id string) (*Booking, *Campaign, Date, error) {
	if strings.TrimSpace(personID) == "" || strings.TrimSpace(id) == "" {
		return nil, nil, Date{}, Errorf(EINVALID, "person id and booking id are required")
	}
	b, err := s.store.Booking(ctx, personID, id)
	if err != nil {
		return nil, nil, Date{}, fmt.Errorf("get booking %s: %w", id, err)
	}
	if !b.Active() {
		return nil, nil, Date{}, Errorf(EALREADYCANCELLED, "The booking is already cancelled.")
	}
	c, err := s.Campaign(ctx, b.CampaignID)
	if err != nil {
		return nil, nil, Date{}, err
	}
	now := s.now()
	p, err := s.people.Person(ctx, personID)
	switch ErrorCode(err) {
	case "":
		d := CanChange(c, b, p.BirthDate, now)
		if !d.OK {
			return nil, nil, Date{}, refusal(d)
		}
		return b, c, p.BirthDate, nil
	case EREGISTRYDOWN:
		d := CanChange(c, b, Date{}, now)
		if !d.OK {
			return nil, nil, Date{}, &Error{Code: EREGISTRYDOWN, Message: "The registry is unavailable; try again later.", Err: err}
		}
		return b, c, Date{}, nil
	case ENOTFOUND, EUNKNOWNPERSON:
		return nil, nil, Date{}, &Error{Code: EUNKNOWNPERSON, Message: "The registry does not know this person.", Err: err}
	default:
		return nil, nil, Date{}, fmt.Errorf("look up person: %w", err)
	}
}

// Cancel cancels personID's booking id and returns the dose to the wave it
// came from. Returns ENOTFOUND if the booking does not exist or belongs to
// someone else, EALREADYCANCELLED, ECHANGENOTALLOWED (see CanChange), or
// EREGISTRYDOWN when the rule needs the person's birth date and the
// registry cannot answer.
//
// Extension point: once dose 2 is reserved with dose 1, cancelling dose 1
// also cancels dose 2 with reason "dose1_cancelled", in the same call to
// Store.CancelBookings.
func (s *Service) Cancel(ctx context.Context, personID, bookingID, traceparent string) (*Booking, error) {
	b, c, _, err := s.owned(ctx, personID, bookingID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := *b
	out.Status, out.CancelReason, out.UpdatedAt = StatusCancelled, "person", now.UTC()
	ev := NewEvent(EventBookingCancelled, &out, nil, traceparent, now)
	if err := s.store.CancelBookings(ctx, []*Booking{&out}, []Event{ev}); err != nil {
		return nil, fmt.Errorf("cancel booking %s: %w", b.ID, err)
	}
	s.log.InfoContext(ctx, "booking cancelled", "booking_id", b.ID, "campaign_id", c.ID, "wave", b.Wave, "reason", out.CancelReason)
	return &out, nil
}

// Reschedule moves personID's booking id to another clinic and/or date,
// releasing the old dose and taking the new one in one transaction. The new
// dose comes from the wave CanBook gives now (the open wave in catch-up and
// open phases); when the person may change but not book now (a
// ChangeOutsideWindow phase outside their window) it stays in the booking's
// wave. Later doses stay in the dose-2 pool (OpenWave). Moving to the clinic and date it already has returns the booking
// unchanged.
//
// Returns ENOTFOUND if the booking does not exist or belongs to someone
// else, EINVALID for a bad clinic or date (as Book), EALREADYCANCELLED,
// ECHANGENOTALLOWED, EREGISTRYDOWN (as Cancel), ESOLDOUT when the target has
// no dose left, in which case nothing changes.
func (s *Service) Reschedule(ctx context.Context, personID, bookingID, clinicID string, date Date, traceparent string) (*Booking, error) {
	if strings.TrimSpace(clinicID) == "" || date.IsZero() {
		return nil, Errorf(EINVALID, "clinic and date are required")
	}
	b, c, birth, err := s.owned(ctx, personID, bookingID)
	if err != nil {
		return nil, err
	}
	if _, err := s.checkSlot(ctx, c, clinicID, b.Product, date); err != nil {
		return nil, err
	}
	if b.ClinicID == clinicID && b.Date == date {
		return b, nil
	}
	now := s.now()
	moved := *b
	moved.ClinicID, moved.Date, moved.UpdatedAt = clinicID, date, now.UTC()
	if d := CanBook(c, birth, now); d.OK && b.Dose < 2 {
		moved.Wave = d.Wave
	}
	prev := &EventPrevious{ClinicID: b.ClinicID, Date: b.Date}
	ev := NewEvent(EventBookingRescheduled, &moved, prev, traceparent, now)
	if err := s.store.MoveBookings(ctx, []Move{{Old: b, New: &moved}}, []Event{ev}); err != nil {
		return nil, fmt.Errorf("reschedule booking %s: %w", b.ID, err)
	}
	s.log.InfoContext(ctx, "booking rescheduled", "booking_id", b.ID, "campaign_id", c.ID,
		"clinic_id", moved.ClinicID, "from_wave", b.Wave, "wave", moved.Wave)
	return &moved, nil
}

// Booking returns personID's booking id. Returns ENOTFOUND if it does not
// exist or belongs to someone else.
func (s *Service) Booking(ctx context.Context, personID, id string) (*Booking, error) {
	if strings.TrimSpace(personID) == "" || strings.TrimSpace(id) == "" {
		return nil, Errorf(EINVALID, "person id and booking id are required")
	}
	b, err := s.store.Booking(ctx, personID, id)
	if err != nil {
		return nil, fmt.Errorf("get booking %s: %w", id, err)
	}
	return b, nil
}

// Bookings lists personID's bookings, newest first.
func (s *Service) Bookings(ctx context.Context, personID string) ([]*Booking, error) {
	if strings.TrimSpace(personID) == "" {
		return nil, Errorf(EINVALID, "person id is required")
	}
	bs, err := s.store.Bookings(ctx, personID)
	if err != nil {
		return nil, fmt.Errorf("list bookings: %w", err)
	}
	return bs, nil
}

// ConfirmProvisional marks a provisional booking confirmed after the registry
// verified the person, writing a BookingConfirmed event. It is for the
// registry sync consumer, not the public API, and is idempotent: a booking
// already confirmed is returned unchanged. Returns ENOTFOUND for an unknown
// id, EALREADYCANCELLED for a cancelled booking.
func (s *Service) ConfirmProvisional(ctx context.Context, bookingID string) (*Booking, error) {
	b, err := s.store.BookingByID(ctx, bookingID)
	if err != nil {
		return nil, fmt.Errorf("get booking %s: %w", bookingID, err)
	}
	switch b.Status {
	case StatusConfirmed:
		return b, nil
	case StatusCancelled:
		return nil, Errorf(EALREADYCANCELLED, "The booking is already cancelled.")
	}
	now := s.now()
	out := *b
	out.Status, out.UpdatedAt = StatusConfirmed, now.UTC()
	ev := NewEvent(EventBookingConfirmed, &out, nil, "", now)
	if err := s.store.SetStatus(ctx, b.ID, StatusProvisional, StatusConfirmed, now.UTC(), []Event{ev}); err != nil {
		return nil, fmt.Errorf("confirm booking %s: %w", b.ID, err)
	}
	s.log.InfoContext(ctx, "provisional booking confirmed", "booking_id", b.ID, "campaign_id", b.CampaignID)
	return &out, nil
}

// CancelProvisional cancels a provisional booking the registry refused,
// freeing the dose through the store with a BookingCancelled event. reason
// is recorded as the booking's CancelReason ("" means "ineligible"). It is
// for the registry sync consumer and is idempotent: a booking already
// cancelled is returned unchanged. Returns ENOTFOUND for an unknown id and
// ECONFLICT for a booking that is confirmed, not provisional.
func (s *Service) CancelProvisional(ctx context.Context, bookingID, reason string) (*Booking, error) {
	b, err := s.store.BookingByID(ctx, bookingID)
	if err != nil {
		return nil, fmt.Errorf("get booking %s: %w", bookingID, err)
	}
	switch b.Status {
	case StatusCancelled:
		return b, nil
	case StatusConfirmed:
		return nil, Errorf(ECONFLICT, "The booking is confirmed, not provisional.")
	}
	if reason == "" {
		reason = "ineligible"
	}
	now := s.now()
	out := *b
	out.Status, out.CancelReason, out.UpdatedAt = StatusCancelled, reason, now.UTC()
	ev := NewEvent(EventBookingCancelled, &out, nil, "", now)
	if err := s.store.CancelBookings(ctx, []*Booking{&out}, []Event{ev}); err != nil {
		return nil, fmt.Errorf("cancel provisional booking %s: %w", b.ID, err)
	}
	s.log.InfoContext(ctx, "provisional booking cancelled", "booking_id", b.ID, "campaign_id", b.CampaignID, "reason", reason)
	return &out, nil
}
