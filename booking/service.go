package booking

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
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

// PersonInvalidator is implemented by a PersonSource that keeps copies of
// registry records (cache.Cache does): Invalidate marks what it holds of
// the person out of date. It must not block for long and cannot fail.
type PersonInvalidator interface {
	Invalidate(ctx context.Context, personID string)
}

// DefaultPersonChangedTimeout bounds the OnPersonChanged hook when
// ServiceConfig.PersonChangedTimeout is 0.
const DefaultPersonChangedTimeout = 2 * time.Second

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
	// OnPersonChanged is called after a change to a person's bookings has
	// committed — Book, Assign, Cancel, Reschedule, ConfirmProvisional,
	// CancelProvisional — so a cache of the person's registry record can
	// drop it: the registry's view of the person changes once the sync
	// consumer applies the events. It runs on the caller's goroutine after
	// the commit, never inside the transaction, with a context that is not
	// canceled with the request's but bounded by PersonChangedTimeout. It
	// cannot fail the change: a panic in it is recovered and logged.
	//
	// Nil means People.Invalidate when People implements
	// PersonInvalidator (the eligibility cache does), else nothing.
	OnPersonChanged func(ctx context.Context, personID string)
	// PersonChangedTimeout bounds each OnPersonChanged call; 0 means
	// DefaultPersonChangedTimeout.
	PersonChangedTimeout time.Duration
	// CampaignTTL is how long a campaign or a clinic read from the Store
	// is reused: every booking, eligibility and change reads its campaign
	// (and a booking its clinic), and both change rarely (a `campaign
	// load`, a `clinic load`). 0 means DefaultCampaignTTL; negative reads
	// the Store every time.
	CampaignTTL time.Duration
}

// DefaultCampaignTTL is ServiceConfig.CampaignTTL's default: a loaded
// campaign takes effect on every instance within it.
const DefaultCampaignTTL = 5 * time.Second

// Service is the booking use cases: it applies the campaign rules, asks the
// registry (through People) who the person is, and writes bookings with
// their outbox events through the Store. It is safe for concurrent use.
//
// Every method that takes a personID acts for that person only: bookings of
// others are ENOTFOUND, exactly as if they did not exist (no proxy booking).
type Service struct {
	store     Store
	people    PersonSource
	now       func() time.Time
	log       *slog.Logger
	onChanged func(ctx context.Context, personID string)
	changedTO time.Duration

	campaigns ttlReads[*Campaign]
	clinics   ttlReads[*Clinic]
}

// NewService returns a Service, or an error if Store or People is missing.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("booking: NewService: Store is required")
	}
	if cfg.People == nil {
		return nil, errors.New("booking: NewService: People is required")
	}
	s := &Service{store: cfg.Store, people: cfg.People, now: cfg.Now, log: cfg.Logger,
		onChanged: cfg.OnPersonChanged, changedTO: cfg.PersonChangedTimeout}
	ttl := cfg.CampaignTTL
	if ttl == 0 {
		ttl = DefaultCampaignTTL
	}
	s.campaigns.ttl, s.clinics.ttl = ttl, ttl
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.onChanged == nil {
		if inv, ok := cfg.People.(PersonInvalidator); ok {
			s.onChanged = inv.Invalidate
		}
	}
	if s.changedTO <= 0 {
		s.changedTO = DefaultPersonChangedTimeout
	}
	return s, nil
}

// personChanged runs the OnPersonChanged hook after a committed change.
func (s *Service) personChanged(ctx context.Context, personID string) {
	if s.onChanged == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.changedTO)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			s.log.ErrorContext(ctx, "person change hook panicked; the booking change stands", "panic", fmt.Sprint(v))
		}
	}()
	s.onChanged(ctx, personID)
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

// Campaign returns a campaign, read from the Store at most every
// CampaignTTL; the caller must not modify it. Returns ENOTFOUND if it does
// not exist.
func (s *Service) Campaign(ctx context.Context, id string) (*Campaign, error) {
	if strings.TrimSpace(id) == "" {
		return nil, Errorf(EINVALID, "campaign id is empty")
	}
	c, err := s.campaigns.get(id, func() (*Campaign, error) { return s.store.Campaign(ctx, id) })
	if err != nil {
		return nil, fmt.Errorf("get campaign %s: %w", id, err)
	}
	return c, nil
}

// clinic returns a clinic, read from the Store at most every CampaignTTL
// (clinics change as rarely as campaigns: a `clinic load`). A clinic that
// does not exist is not remembered.
func (s *Service) clinic(ctx context.Context, id string) (*Clinic, error) {
	return s.clinics.get(id, func() (*Clinic, error) { return s.store.Clinic(ctx, id) })
}

// ttlReads keeps what the Store answered for each id and reuses it for
// ttl (wall clock: an entry's age is real time, whatever the service's
// clock says); ttl 0 reads the Store every time. Errors are not kept.
type ttlReads[T any] struct {
	ttl time.Duration
	m   sync.Map // id → ttlRead[T]
}

type ttlRead[T any] struct {
	v  T
	at time.Time
}

// get returns id's value, from memory when read less than ttl ago, else
// from read.
func (t *ttlReads[T]) get(id string, read func() (T, error)) (T, error) {
	if t.ttl > 0 {
		if e, ok := t.m.Load(id); ok {
			if r := e.(ttlRead[T]); time.Since(r.at) < t.ttl {
				return r.v, nil
			}
		}
	}
	v, err := read()
	if err == nil && t.ttl > 0 {
		t.m.Store(id, ttlRead[T]{v: v, at: time.Now()})
	}
	return v, err
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
		p.ID = personID // book for the authenticated person, whatever id form the source gives
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
	if d, refused := calendarRefusal(c, tokenBirth, s.now()); refused {
		return d, nil
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

// Book books req.PersonID's next dose (1, or the one after the doses the
// registry says they received) at req.ClinicID on req.Date, and returns
// the booking: confirmed, or provisional when the registry could not
// answer and the campaign's policy is Provisional and the request carries
// a birth date.
//
// Dose 1 of a product with two or more doses also reserves dose 2 at the
// same clinic, in the same transaction, on the first date of
// SecondDoseDates (the interval date, else the nearest within the
// tolerance, the earlier on ties) with a dose left in the clinic's dose-2
// pool. The returned dose 1 names it in LinkedID (BookDoses returns both).
// A later dose booked alone draws from the dose-2 pool.
//
// Returns EINVALID for a malformed request (empty ids, a product the campaign
// does not offer, a date outside the dose's dates, an unknown clinic or
// one that does not administer the product); ENOTFOUND for an unknown
// campaign; EUNKNOWNPERSON, ENOTELIGIBLE, EREGISTRYDOWN from the person
// lookup; the CanBook refusal code (ENOTINCOHORT, ENOTYOURDAY, …); ESOLDOUT
// and EALREADYBOOKED from the store; ESECONDDOSE when dose 2 has no date
// with a dose left. Nothing is written on error.
func (s *Service) Book(ctx context.Context, req BookRequest) (*Booking, error) {
	bs, err := s.BookDoses(ctx, req)
	if err != nil {
		return nil, err
	}
	return bs[0], nil
}

// BookDoses is Book returning every booking it made: the requested dose
// first, then the dose 2 reserved with it, if any.
func (s *Service) BookDoses(ctx context.Context, req BookRequest) ([]*Booking, error) {
	if strings.TrimSpace(req.PersonID) == "" || strings.TrimSpace(req.CampaignID) == "" ||
		strings.TrimSpace(req.ClinicID) == "" || strings.TrimSpace(req.Product) == "" || req.Date.IsZero() {
		return nil, Errorf(EINVALID, "person, campaign, clinic, product and date are required")
	}
	c, err := s.Campaign(ctx, req.CampaignID)
	if err != nil {
		return nil, err
	}
	product, err := s.checkSlot(ctx, c, req.ClinicID, req.Product)
	if err != nil {
		return nil, err
	}
	// Any dose's dates before asking the registry; the dose's own after.
	if err := checkDate(c, product, product.DosesOf(), req.Date); err != nil {
		return nil, err
	}
	sub, d, err := s.admit(ctx, c, req.PersonID, req.BirthDate, &product)
	if err != nil {
		return nil, err
	}
	bs, err := s.place(ctx, c, product, sub, d, req.ClinicID, req.Date, req.Traceparent)
	if err != nil {
		return nil, err
	}
	s.personChanged(ctx, req.PersonID)
	return bs, nil
}

// admit looks the person up, checks what the registry says (for product,
// when known) and applies the campaign's phases now.
func (s *Service) admit(ctx context.Context, c *Campaign, personID string, tokenBirth Date, product *Product) (subject, Decision, error) {
	if d, refused := calendarRefusal(c, tokenBirth, s.now()); refused {
		return subject{}, Decision{}, refusal(d)
	}
	sub, err := s.lookup(ctx, c, personID, tokenBirth)
	if err != nil {
		return subject{}, Decision{}, err
	}
	if sub.person.Excluded {
		return subject{}, Decision{}, Errorf(ENOTELIGIBLE, "The person is excluded from this campaign.")
	}
	if product != nil {
		if err := eligible(sub.person, *product); err != nil {
			return subject{}, Decision{}, err
		}
	}
	d := CanBook(c, sub.birth, s.now())
	if !d.OK {
		return subject{}, Decision{}, refusal(d)
	}
	return sub, d, nil
}

// calendarRefusal answers, from the identity token's birth date alone, a
// person the campaign's calendar does not let book now (not their rotation
// day, outside the windows, not in the cohort): such a person costs no
// registry read, which on a launch morning spares the registry every
// early or wrong-day visitor. The token only ever refuses here: a person
// it lets through is looked up, and the registry's birth date decides.
func calendarRefusal(c *Campaign, tokenBirth Date, now time.Time) (Decision, bool) {
	if tokenBirth.IsZero() {
		return Decision{}, false
	}
	d := CanBook(c, tokenBirth, now)
	return d, !d.OK
}

// place books sub's next dose of product at clinicID on date, with dose 2
// when it is dose 1 of a multi-dose product, in one transaction. The
// caller has checked the clinic and the person's eligibility.
func (s *Service) place(ctx context.Context, c *Campaign, product Product, sub subject, d Decision, clinicID string, date Date, traceparent string) ([]*Booking, error) {
	dose, wave := sub.person.DosesReceived+1, d.Wave
	if err := checkDate(c, product, dose, date); err != nil {
		return nil, err
	}
	if dose >= 2 {
		wave = OpenWave // later doses draw from the single dose-2 pool (see SplitSupply)
	}
	now := s.now()
	status, typ := StatusConfirmed, EventBookingConfirmed
	if sub.provisional {
		status, typ = StatusProvisional, EventBookingProvisional
	}
	first := &Booking{
		ID: NewID(), PersonID: sub.person.ID, CampaignID: c.ID, ClinicID: clinicID,
		Date: date, Product: product.ID, Dose: dose,
		Wave: wave, Status: status, CreatedAt: now.UTC(), UpdatedAt: now.UTC(),
	}
	bookings := []*Booking{first}
	if dose == 1 && product.DosesOf() >= 2 {
		second := *first
		second.ID, second.Dose, second.Wave, second.LinkedID = NewID(), 2, OpenWave, first.ID
		first.LinkedID = second.ID
		bookings = append(bookings, &second)
		err := s.store.Reserve(ctx, Reservation{
			Create: bookings, Flex: &second, FlexDates: SecondDoseDates(product, date),
			Events: func() []Event {
				return []Event{NewEvent(typ, first, nil, traceparent, now), NewEvent(typ, &second, nil, traceparent, now)}
			},
		})
		if err != nil {
			return nil, fmt.Errorf("create booking with dose 2: %w", err)
		}
	} else if err := s.store.CreateBookings(ctx, bookings, []Event{NewEvent(typ, first, nil, traceparent, now)}); err != nil {
		return nil, fmt.Errorf("create booking: %w", err)
	}
	for _, b := range bookings {
		s.log.InfoContext(ctx, "booking created", "booking_id", b.ID, "campaign_id", c.ID,
			"clinic_id", b.ClinicID, "date", b.Date.String(), "dose", b.Dose, "wave", b.Wave, "status", string(b.Status))
	}
	return bookings, nil
}

// SecondDoseDates lists the dates dose 2 may take when dose 1 of p is on
// dose1, in order of preference: dose1 + IntervalDays, then the dates up to
// ToleranceDays either side of it, nearest first and the earlier of two
// equally near first. It is nil for a single-dose product.
func SecondDoseDates(p Product, dose1 Date) []Date {
	if p.DosesOf() < 2 {
		return nil
	}
	target := dose1.AddDays(p.IntervalDays)
	out := []Date{target}
	for k := 1; k <= p.ToleranceDays; k++ {
		out = append(out, target.AddDays(-k), target.AddDays(k))
	}
	return out
}

// checkDate checks that date is one on which dose n of product p may be
// booked: the vaccination dates for dose 1; for a later dose, from the
// first vaccination date to the last date of SupplyDates for that dose.
func checkDate(c *Campaign, p Product, n int, date Date) error {
	from, to := c.VaccinationFrom, c.VaccinationTo
	if n >= 2 {
		_, to = SupplyDates(c, p, n)
	}
	if date.Before(from) || date.After(to) {
		return Errorf(EINVALID, "date %s is outside the dates %s..%s for dose %d", date, from, to, n)
	}
	return nil
}

// checkSlot validates a product and clinic for campaign c.
func (s *Service) checkSlot(ctx context.Context, c *Campaign, clinicID, productID string) (Product, error) {
	product, ok := c.Product(productID)
	if !ok {
		return Product{}, Errorf(EINVALID, "product %q is not offered by this campaign", productID)
	}
	clinic, err := s.clinic(ctx, clinicID)
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
// came from. Cancelling a dose 1 also cancels the dose 2 reserved with it
// (LinkedID) with reason "dose1_cancelled", in the same transaction, both
// doses going back to their quotas and both getting a BookingCancelled
// event. Cancelling a dose 2 alone is allowed and leaves its dose 1 as it
// is (the person keeps dose 1 and books dose 2 again once the registry
// records dose 1 as given). Returns the cancelled booking.
//
// Returns ENOTFOUND if the booking does not exist or belongs to someone
// else, EALREADYCANCELLED, ECHANGENOTALLOWED (see CanChange), or
// EREGISTRYDOWN when the rule needs the person's birth date and the
// registry cannot answer.
func (s *Service) Cancel(ctx context.Context, personID, bookingID, traceparent string) (*Booking, error) {
	for attempt := 1; ; attempt++ {
		b, c, _, err := s.owned(ctx, personID, bookingID)
		if err != nil {
			return nil, err
		}
		linked, err := s.activeLinked(ctx, b)
		if err != nil {
			return nil, err
		}
		now := s.now()
		cancel, events := cancellation(b, linked, ReasonPerson, traceparent, now)
		out := cancel[0]
		err = s.store.CancelBookings(ctx, cancel, events)
		if ErrorCode(err) == EALREADYCANCELLED && len(cancel) > 1 && attempt < 3 {
			continue // one of the two was cancelled meanwhile: read them again
		}
		if err != nil {
			return nil, fmt.Errorf("cancel booking %s: %w", b.ID, err)
		}
		for _, x := range cancel {
			s.log.InfoContext(ctx, "booking cancelled", "booking_id", x.ID, "campaign_id", c.ID, "dose", x.Dose, "wave", x.Wave, "reason", x.CancelReason)
		}
		s.personChanged(ctx, personID)
		return out, nil
	}
}

// activeLinked returns the active dose 2 reserved with dose 1 b, or nil.
func (s *Service) activeLinked(ctx context.Context, b *Booking) (*Booking, error) {
	if b.Dose != 1 || b.LinkedID == "" {
		return nil, nil
	}
	l, err := s.store.Booking(ctx, b.PersonID, b.LinkedID)
	switch {
	case ErrorCode(err) == ENOTFOUND:
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get linked booking %s: %w", b.LinkedID, err)
	case !l.Active():
		return nil, nil
	}
	return l, nil
}

// Reschedule moves personID's booking id to another clinic and/or date,
// releasing the old dose and taking the new one in one transaction. The new
// dose comes from the wave CanBook gives now (the open wave in catch-up and
// open phases); when the person may change but not book now (a
// ChangeOutsideWindow phase outside their window) it stays in the booking's
// wave while that wave's window is open, and comes from the open wave once
// it has closed (its unbooked doses roll over there, see Roller). Later
// doses stay in the dose-2 pool (OpenWave). Moving to the clinic and date
// it already has returns the booking unchanged.
//
// Rescheduling a dose 1 moves its active dose 2 with it, in the same
// transaction: to the new clinic, on the first of SecondDoseDates of the
// new date with a dose left there (ESECONDDOSE if none; nothing changes).
// A dose 2 reserved with a dose 1 that is still active may move on its
// own, to any clinic that administers the product, but only to a date
// within the product's tolerance of its interval date (else EINVALID).
//
// Returns ENOTFOUND if the booking does not exist or belongs to someone
// else, EINVALID for a bad clinic or date (as Book), EALREADYCANCELLED,
// ECHANGENOTALLOWED, EREGISTRYDOWN (as Cancel), ESOLDOUT when the target has
// no dose left, ESECONDDOSE as above; nothing changes on error.
func (s *Service) Reschedule(ctx context.Context, personID, bookingID, clinicID string, date Date, traceparent string) (*Booking, error) {
	if strings.TrimSpace(clinicID) == "" || date.IsZero() {
		return nil, Errorf(EINVALID, "clinic and date are required")
	}
	b, c, birth, err := s.owned(ctx, personID, bookingID)
	if err != nil {
		return nil, err
	}
	product, err := s.checkSlot(ctx, c, clinicID, b.Product)
	if err != nil {
		return nil, err
	}
	if err := checkDate(c, product, b.Dose, date); err != nil {
		return nil, err
	}
	if err := s.checkDose2Date(ctx, b, product, date); err != nil {
		return nil, err
	}
	if b.ClinicID == clinicID && b.Date == date {
		return b, nil
	}
	linked, err := s.activeLinked(ctx, b)
	if err != nil {
		return nil, err
	}
	now := s.now()
	moved := *b
	moved.ClinicID, moved.Date, moved.UpdatedAt = clinicID, date, now.UTC()
	if b.Dose < 2 {
		if d := CanBook(c, birth, now); d.OK {
			moved.Wave = d.Wave
		} else if waveClosed(c, b.Wave, now) {
			moved.Wave = OpenWave // the wave's window is over: its doses belong to the open pool
		}
	}
	event := func(nb, old *Booking) Event {
		return NewEvent(EventBookingRescheduled, nb, &EventPrevious{ClinicID: old.ClinicID, Date: old.Date}, traceparent, now)
	}
	movedAll := []*Booking{&moved}
	if linked == nil {
		err = s.store.MoveBookings(ctx, []Move{{Old: b, New: &moved}}, []Event{event(&moved, b)})
	} else {
		m2 := *linked
		m2.ClinicID, m2.UpdatedAt = clinicID, now.UTC()
		movedAll = append(movedAll, &m2)
		err = s.store.Reserve(ctx, Reservation{
			Moves: []Move{{Old: b, New: &moved}, {Old: linked, New: &m2}},
			Flex:  &m2, FlexDates: SecondDoseDates(product, date),
			Events: func() []Event { return []Event{event(&moved, b), event(&m2, linked)} },
		})
	}
	if err != nil {
		return nil, fmt.Errorf("reschedule booking %s: %w", b.ID, err)
	}
	for _, x := range movedAll {
		s.log.InfoContext(ctx, "booking rescheduled", "booking_id", x.ID, "campaign_id", c.ID,
			"clinic_id", x.ClinicID, "date", x.Date.String(), "dose", x.Dose, "wave", x.Wave)
	}
	s.personChanged(ctx, personID)
	return &moved, nil
}

// waveClosed reports whether rotation wave w's window has ended by now.
func waveClosed(c *Campaign, w int, now time.Time) bool {
	for _, ww := range c.RotationWaves() {
		if ww.Wave == w {
			return !now.Before(ww.Closes)
		}
	}
	return false
}

// checkDose2Date refuses moving a dose 2 whose dose 1 is active to a date
// outside the tolerance around dose 1's interval date.
func (s *Service) checkDose2Date(ctx context.Context, b *Booking, p Product, date Date) error {
	if b.Dose != 2 || b.LinkedID == "" {
		return nil
	}
	d1, err := s.store.Booking(ctx, b.PersonID, b.LinkedID)
	switch {
	case ErrorCode(err) == ENOTFOUND:
		return nil
	case err != nil:
		return fmt.Errorf("get linked booking %s: %w", b.LinkedID, err)
	case !d1.Active():
		return nil
	}
	dates := SecondDoseDates(p, d1.Date)
	for _, d := range dates {
		if d == date {
			return nil
		}
	}
	return Errorf(EINVALID, "dose 2 must be within %d day(s) of %s, %d days after dose 1 on %s",
		p.ToleranceDays, dates[0], p.IntervalDays, d1.Date)
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
// already confirmed is returned unchanged. A dose 2 reserved with a dose 1
// is verified through its own event. Returns ENOTFOUND for an unknown id,
// EALREADYCANCELLED for a cancelled booking.
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
	s.personChanged(ctx, b.PersonID)
	return &out, nil
}

// CancelProvisional cancels a provisional booking the registry refused,
// freeing the dose through the store with a BookingCancelled event. reason
// is recorded as the booking's CancelReason ("" means "ineligible"). A
// dose 1's active dose 2 is cancelled with it (reason "dose1_cancelled"),
// in the same transaction. It is for the registry sync consumer and is
// idempotent: a booking already cancelled is returned unchanged. Returns
// ENOTFOUND for an unknown id and ECONFLICT for a booking that is
// confirmed, not provisional.
func (s *Service) CancelProvisional(ctx context.Context, bookingID, reason string) (*Booking, error) {
	if reason == "" {
		reason = ReasonIneligible
	}
	for attempt := 1; ; attempt++ {
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
		linked, err := s.activeLinked(ctx, b)
		if err != nil {
			return nil, err
		}
		now := s.now()
		cancel, events := cancellation(b, linked, reason, "", now)
		out := cancel[0]
		err = s.store.CancelBookings(ctx, cancel, events)
		if ErrorCode(err) == EALREADYCANCELLED && attempt < 3 {
			continue // cancelled meanwhile: read again (and answer idempotently)
		}
		if err != nil {
			return nil, fmt.Errorf("cancel provisional booking %s: %w", b.ID, err)
		}
		for _, x := range cancel {
			s.log.InfoContext(ctx, "provisional booking cancelled", "booking_id", x.ID, "campaign_id", x.CampaignID, "reason", x.CancelReason)
		}
		s.personChanged(ctx, b.PersonID)
		return out, nil
	}
}

// cancellation is what cancelling b (for reason) writes: b cancelled, and
// its linked dose 2 (when active) cancelled with ReasonDose1Cancelled, with
// one BookingCancelled event each.
func cancellation(b, linked *Booking, reason, traceparent string, now time.Time) ([]*Booking, []Event) {
	out := *b
	out.Status, out.CancelReason, out.UpdatedAt = StatusCancelled, reason, now.UTC()
	cancel := []*Booking{&out}
	if linked != nil {
		l := *linked
		l.Status, l.CancelReason, l.UpdatedAt = StatusCancelled, ReasonDose1Cancelled, now.UTC()
		cancel = append(cancel, &l)
	}
	events := make([]Event, len(cancel))
	for i, x := range cancel {
		events[i] = NewEvent(EventBookingCancelled, x, nil, traceparent, now)
	}
	return cancel, events
}
