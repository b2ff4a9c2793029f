package booking_test

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/yeyak/yeyak/booking"
)

// memStore is an in-memory booking.Store for the Service tests; the SQL
// store has its own contract suite in booking/sqlstore.
type memStore struct {
	mu        sync.Mutex
	campaigns map[string]*booking.Campaign
	clinics   map[string]booking.Clinic
	quotas    map[quotaKey]*booking.Quota
	bookings  map[string]*booking.Booking
	events    []booking.Event
	version   int64
}

type quotaKey struct {
	campaign, clinic string
	date             booking.Date
	product          string
	dose, wave       int
}

func keyOf(q booking.Quota) quotaKey {
	return quotaKey{q.CampaignID, q.ClinicID, q.Date, q.Product, q.Dose, q.Wave}
}

func bookingKey(b *booking.Booking) quotaKey {
	return quotaKey{b.CampaignID, b.ClinicID, b.Date, b.Product, b.Dose, b.Wave}
}

func newMemStore() *memStore {
	return &memStore{
		campaigns: map[string]*booking.Campaign{},
		clinics:   map[string]booking.Clinic{},
		quotas:    map[quotaKey]*booking.Quota{},
		bookings:  map[string]*booking.Booking{},
	}
}

func notFound(what string) error { return booking.Errorf(booking.ENOTFOUND, "%s not found", what) }

func (m *memStore) PutCampaign(_ context.Context, c *booking.Campaign) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.campaigns[c.ID] = c
	return nil
}

func (m *memStore) Campaign(_ context.Context, id string) (*booking.Campaign, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.campaigns[id]
	if !ok {
		return nil, notFound("campaign")
	}
	return c, nil
}

func (m *memStore) Campaigns(context.Context) ([]*booking.Campaign, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*booking.Campaign
	for _, c := range m.campaigns {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *booking.Campaign) int { return cmpStr(a.ID, b.ID) })
	return out, nil
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (m *memStore) PutClinics(_ context.Context, cs []booking.Clinic) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range cs {
		m.clinics[c.ID] = c
	}
	return nil
}

func (m *memStore) Clinic(_ context.Context, id string) (*booking.Clinic, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.clinics[id]
	if !ok {
		return nil, notFound("clinic")
	}
	return &c, nil
}

func (m *memStore) Clinics(context.Context) ([]booking.Clinic, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []booking.Clinic
	for _, c := range m.clinics {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b booking.Clinic) int { return cmpStr(a.ID, b.ID) })
	return out, nil
}

func (m *memStore) SetQuotas(_ context.Context, qs []booking.Quota) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, q := range qs {
		if old, ok := m.quotas[keyOf(q)]; ok && q.Capacity < old.Booked {
			return booking.Errorf(booking.ECONFLICT, "capacity below booked")
		}
	}
	for _, q := range qs {
		if old, ok := m.quotas[keyOf(q)]; ok {
			old.Capacity = q.Capacity
			continue
		}
		q.Booked = 0
		m.quotas[keyOf(q)] = &q
	}
	m.version++
	return nil
}

func (m *memStore) Quotas(_ context.Context, campaignID string) ([]booking.Quota, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []booking.Quota
	for _, q := range m.quotas {
		if q.CampaignID == campaignID {
			out = append(out, *q)
		}
	}
	return out, nil
}

func (m *memStore) QuotasChangedSince(ctx context.Context, campaignID string, _ int64) ([]booking.Quota, int64, error) {
	qs, err := m.Quotas(ctx, campaignID)
	return qs, m.version, err
}

// quota returns the row for k (test helper).
func (m *memStore) quota(k quotaKey) booking.Quota {
	m.mu.Lock()
	defer m.mu.Unlock()
	if q, ok := m.quotas[k]; ok {
		return *q
	}
	return booking.Quota{}
}

func (m *memStore) CreateBookings(_ context.Context, bs []*booking.Booking, evs []booking.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range bs {
		q, ok := m.quotas[bookingKey(b)]
		if !ok || q.Remaining() == 0 {
			return booking.Errorf(booking.ESOLDOUT, "sold out")
		}
		for _, o := range m.bookings {
			if o.PersonID == b.PersonID && o.CampaignID == b.CampaignID && o.Dose == b.Dose && o.Active() {
				return booking.Errorf(booking.EALREADYBOOKED, "already booked")
			}
		}
	}
	for _, b := range bs {
		m.quotas[bookingKey(b)].Booked++
		c := *b
		m.bookings[b.ID] = &c
	}
	m.events = append(m.events, evs...)
	return nil
}

func (m *memStore) CancelBookings(_ context.Context, bs []*booking.Booking, evs []booking.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range bs {
		o, ok := m.bookings[b.ID]
		if !ok {
			return notFound("booking")
		}
		if !o.Active() {
			return booking.Errorf(booking.EALREADYCANCELLED, "already cancelled")
		}
	}
	for _, b := range bs {
		o := m.bookings[b.ID]
		m.quotas[bookingKey(o)].Booked--
		o.Status, o.CancelReason, o.UpdatedAt = booking.StatusCancelled, b.CancelReason, b.UpdatedAt
	}
	m.events = append(m.events, evs...)
	return nil
}

func (m *memStore) MoveBookings(_ context.Context, moves []booking.Move, evs []booking.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mv := range moves {
		q, ok := m.quotas[bookingKey(mv.New)]
		if !ok || q.Remaining() == 0 {
			return booking.Errorf(booking.ESOLDOUT, "sold out")
		}
	}
	for _, mv := range moves {
		o := m.bookings[mv.Old.ID]
		m.quotas[bookingKey(o)].Booked--
		m.quotas[bookingKey(mv.New)].Booked++
		c := *mv.New
		m.bookings[c.ID] = &c
	}
	m.events = append(m.events, evs...)
	return nil
}

// Reserve applies creates and moves like CreateBookings and MoveBookings
// together, choosing the flexible booking's date, all or nothing.
func (m *memStore) Reserve(_ context.Context, r booking.Reservation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delta := map[quotaKey]int{}
	for _, mv := range r.Moves {
		o, ok := m.bookings[mv.Old.ID]
		if !ok || o.PersonID != mv.New.PersonID {
			return notFound("booking")
		}
		if !o.Active() {
			return booking.Errorf(booking.EALREADYCANCELLED, "already cancelled")
		}
		delta[bookingKey(o)]--
		if mv.New != r.Flex {
			delta[bookingKey(mv.New)]++
		}
	}
	for _, b := range r.Create {
		for _, o := range m.bookings {
			if o.PersonID == b.PersonID && o.CampaignID == b.CampaignID && o.Dose == b.Dose && o.Active() {
				return booking.Errorf(booking.EALREADYBOOKED, "already booked")
			}
		}
		if b != r.Flex {
			delta[bookingKey(b)]++
		}
	}
	left := func(k quotaKey) int {
		q, ok := m.quotas[k]
		if !ok {
			return -delta[k]
		}
		return q.Capacity - q.Booked - delta[k]
	}
	for k, n := range delta {
		if n > 0 && left(k) < 0 {
			return booking.Errorf(booking.ESOLDOUT, "sold out")
		}
	}
	if r.Flex != nil {
		chosen := false
		for _, d := range r.FlexDates {
			f := *r.Flex
			f.Date = d
			if left(bookingKey(&f)) > 0 {
				r.Flex.Date, chosen = d, true
				delta[bookingKey(r.Flex)]++
				break
			}
		}
		if !chosen {
			return booking.Errorf(booking.ESECONDDOSE, "no dose 2 date left")
		}
	}
	for k, n := range delta {
		if q, ok := m.quotas[k]; ok {
			q.Booked += n
		}
	}
	for _, mv := range r.Moves {
		c := *mv.New
		m.bookings[c.ID] = &c
	}
	for _, b := range r.Create {
		c := *b
		m.bookings[c.ID] = &c
	}
	if r.Events != nil {
		m.events = append(m.events, r.Events()...)
	}
	return nil
}

func (m *memStore) SetStatus(_ context.Context, id string, from, to booking.Status, at time.Time, evs []booking.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.bookings[id]
	if !ok {
		return notFound("booking")
	}
	if b.Status != from {
		return booking.Errorf(booking.ECONFLICT, "status is %s", b.Status)
	}
	b.Status, b.UpdatedAt = to, at
	m.events = append(m.events, evs...)
	return nil
}

func (m *memStore) Booking(_ context.Context, personID, id string) (*booking.Booking, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.bookings[id]
	if !ok || b.PersonID != personID {
		return nil, notFound("booking")
	}
	c := *b
	return &c, nil
}

func (m *memStore) BookingByID(_ context.Context, id string) (*booking.Booking, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.bookings[id]
	if !ok {
		return nil, notFound("booking")
	}
	c := *b
	return &c, nil
}

func (m *memStore) Bookings(_ context.Context, personID string) ([]*booking.Booking, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*booking.Booking
	for _, b := range m.bookings {
		if b.PersonID == personID {
			c := *b
			out = append(out, &c)
		}
	}
	slices.SortFunc(out, func(a, b *booking.Booking) int { return -cmpStr(a.ID, b.ID) })
	return out, nil
}

func (m *memStore) Ping(context.Context) error { return nil }

// allEvents returns a copy of the events written so far.
func (m *memStore) allEvents() []booking.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.events)
}

// people is a fake PersonSource: a map, and a switch that takes the
// registry down.
type people struct {
	mu      sync.Mutex
	persons map[string]booking.Person
	down    bool
}

func (p *people) Person(_ context.Context, id string) (booking.Person, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return booking.Person{}, booking.Errorf(booking.EREGISTRYDOWN, "registry down")
	}
	v, ok := p.persons[id]
	if !ok {
		return booking.Person{}, booking.Errorf(booking.ENOTFOUND, "person not found")
	}
	return v, nil
}

func (p *people) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

var _ booking.Store = (*memStore)(nil)
