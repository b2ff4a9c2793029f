package registry

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/mocks/population"
)

// Config configures a Registry. The zero value is a registry of the
// default population (population.DefaultPeople people), healthy.
type Config struct {
	// Population is the synthetic population the registry knows. People
	// are derived from it on demand (population.PersonAt), so a registry
	// of sixteen million people costs no memory until they book.
	Population population.Config
	// Faults are in force from the start.
	Faults Faults
	// FaultSeed seeds the RNG that draws injected errors, throttling and
	// latency tails, so a run's faults are reproducible. 0 means 1.
	FaultSeed uint64
	// Now is the clock stamped on reservations (REG_DTM, UPD_DTM).
	// nil means time.Now.
	Now func() time.Time
	// Logger receives one line per fault change. nil means slog.Default().
	Logger *slog.Logger
}

const shards = 64

// Registry is the fake legacy registry: an in-memory adapter.Registry with
// the business rules of the real one (see docs/legacy-schema.md), run-time
// fault injection, and counters of every call and every write received.
// Handler serves the same registry as the HTTP gateway; Start runs it on a
// listener of its own. It is safe for concurrent use.
type Registry struct {
	pop    *population.Config // nil for NewEmpty
	now    func() time.Time
	log    *slog.Logger
	seed   maphash.Seed
	people [shards]personShard
	rsv    [shards]rsvShard

	fmu      sync.Mutex
	faults   Faults
	changed  chan struct{} // closed and replaced on every SetFaults
	rng      *rand.Rand
	watchers map[int]func(Faults)
	nextW    int

	stats    counters
	inFlight atomic.Int64
}

// personShard holds people added with Add (they override the population)
// and the reservation ids of each person. Lock order: personShard before
// rsvShard, never the reverse.
type personShard struct {
	mu     sync.RWMutex
	people map[string]population.Person
	byPers map[string][]string // person id → reservation ids
}

type rsvShard struct {
	mu     sync.RWMutex
	rsv    map[string]*Reservation
	writes map[string]*[2]int // booking id → records, cancels received
}

// Reservation is a booking as the registry stores it (a RSVT_INFO row).
type Reservation struct {
	adapter.BookingRecord
	// Status is "A" (active) or "C" (cancelled), as STTS_CD.
	Status string
	// Registered and Updated are REG_DTM and UPD_DTM.
	Registered, Updated time.Time
}

// Active reports whether the reservation is not cancelled.
func (r Reservation) Active() bool { return r.Status == "A" }

// New returns a registry that knows the people of cfg.Population.
func New(cfg Config) *Registry {
	pop := cfg.Population
	r := newRegistry(cfg)
	r.pop = &pop
	return r
}

// NewEmpty returns a registry that knows nobody; add people with Add.
func NewEmpty() *Registry { return newRegistry(Config{}) }

func newRegistry(cfg Config) *Registry {
	r := &Registry{
		now:      cfg.Now,
		log:      cfg.Logger,
		seed:     maphash.MakeSeed(),
		faults:   cfg.Faults,
		changed:  make(chan struct{}),
		watchers: map[int]func(Faults){},
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	seed := cfg.FaultSeed
	if seed == 0 {
		seed = 1
	}
	r.rng = rand.New(rand.NewPCG(seed, seed^0x6d6f636b))
	for i := range r.people {
		r.people[i].people = map[string]population.Person{}
		r.people[i].byPers = map[string][]string{}
		r.rsv[i].rsv = map[string]*Reservation{}
		r.rsv[i].writes = map[string]*[2]int{}
	}
	return r
}

// Add adds p to the registry, replacing any person with the same id
// (including one of the population). A person with Unknown set is added as
// absent: the registry answers "not found" for that id.
func (r *Registry) Add(p population.Person) {
	s := r.pshard(p.ID)
	s.mu.Lock()
	s.people[p.ID] = p
	s.mu.Unlock()
}

var _ adapter.Registry = (*Registry)(nil)

func (r *Registry) shardOf(key string) int {
	return int(maphash.String(r.seed, key) % shards)
}

func (r *Registry) pshard(id string) *personShard { return &r.people[r.shardOf(id)] }
func (r *Registry) rshard(id string) *rsvShard    { return &r.rsv[r.shardOf(id)] }

// person looks a person up; the caller holds s.mu.
func (r *Registry) person(s *personShard, id string) (population.Person, bool) {
	if p, ok := s.people[id]; ok {
		return p, !p.Unknown
	}
	if r.pop == nil {
		return population.Person{}, false
	}
	i, ok := population.IndexOf(id)
	if !ok || i >= r.pop.Size() {
		return population.Person{}, false
	}
	p := population.PersonAt(*r.pop, i)
	return p, !p.Unknown
}

// --- adapter.Registry -------------------------------------------------------

// Eligibility returns one person's record with their active reservations.
// Returns an error wrapping adapter.ErrNotFound for an unknown person.
func (r *Registry) Eligibility(ctx context.Context, personID string) (adapter.Record, error) {
	done, err := r.enter(ctx, false)
	if err != nil {
		return adapter.Record{}, err
	}
	defer done()
	rec, ok := r.eligibility(personID)
	if !ok {
		return adapter.Record{}, fmt.Errorf("mock registry: person: %w", adapter.ErrNotFound)
	}
	return rec, nil
}

// EligibilityBulk returns the records of the known people among ids, in
// the order of ids, each once; unknown ids are absent.
func (r *Registry) EligibilityBulk(ctx context.Context, ids []string) ([]adapter.Record, error) {
	done, err := r.enter(ctx, false)
	if err != nil {
		return nil, err
	}
	defer done()
	return r.eligibilityBulk(ids), nil
}

// RecordBooking records b, idempotently by b.BookingID: a booking id the
// registry already holds succeeds and changes nothing (a cancelled one stays
// cancelled). Otherwise it returns an error wrapping adapter.ErrRejected if
// the person is unknown, contraindicated or excluded, or already has a dose
// numbered b.Dose or higher, or if b is malformed.
func (r *Registry) RecordBooking(ctx context.Context, b adapter.BookingRecord) error {
	done, err := r.enter(ctx, true)
	if err != nil {
		return err
	}
	defer done()
	if _, err := r.recordBooking(b); err != nil {
		return err
	}
	return r.afterWrite()
}

// CancelBooking marks the reservation cancelled; an unknown or already
// cancelled id succeeds.
func (r *Registry) CancelBooking(ctx context.Context, bookingID string) error {
	done, err := r.enter(ctx, true)
	if err != nil {
		return err
	}
	defer done()
	r.cancelBooking(bookingID)
	return r.afterWrite()
}

// Ping answers nil when the registry is healthy enough to answer.
func (r *Registry) Ping(ctx context.Context) error {
	done, err := r.enter(ctx, false)
	if err != nil {
		return err
	}
	defer done()
	r.stats.pings.Add(1)
	return nil
}

// --- business logic, shared by both faces (no faults here) ----------------

func (r *Registry) eligibility(id string) (adapter.Record, bool) {
	r.stats.reads.Add(1)
	return r.lookup(id)
}

func (r *Registry) eligibilityBulk(ids []string) []adapter.Record {
	r.stats.bulkReads.Add(1)
	r.stats.bulkIDs.Add(int64(len(ids)))
	out := make([]adapter.Record, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		if rec, ok := r.lookup(id); ok {
			out = append(out, rec)
		}
	}
	return out
}

func (r *Registry) lookup(id string) (adapter.Record, bool) {
	s := r.pshard(id)
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := r.person(s, id)
	if !ok {
		return adapter.Record{}, false
	}
	rec := adapter.Record{
		PersonID:        p.ID,
		BirthDate:       p.BirthDate.In(time.UTC),
		Contraindicated: p.Contraindicated,
		Excluded:        p.Excluded,
	}
	for _, d := range p.Doses {
		rec.Doses = append(rec.Doses, adapter.Dose{Product: d.Product, Number: d.Number, Date: d.Date.In(time.UTC)})
	}
	for _, rid := range s.byPers[id] {
		rs := r.rshard(rid)
		rs.mu.RLock()
		if v, ok := rs.rsv[rid]; ok && v.Active() {
			rec.Bookings = append(rec.Bookings, v.BookingRecord)
		}
		rs.mu.RUnlock()
	}
	return rec, true
}

func rejected(format string, args ...any) error {
	return fmt.Errorf("mock registry: %s: %w", fmt.Sprintf(format, args...), adapter.ErrRejected)
}

// errMalformed marks a request that is malformed rather than refused; it
// also wraps adapter.ErrRejected (a permanent "no"). The HTTP face answers
// it with 400, a business rejection with 422.
var errMalformed = errors.New("malformed booking")

func validBooking(b adapter.BookingRecord) error {
	switch {
	case b.BookingID == "" || len(b.BookingID) > 40:
		return fmt.Errorf("%w: booking id must be 1..40 characters: %w", errMalformed, adapter.ErrRejected)
	case b.PersonID == "" || len(b.PersonID) > 20:
		return fmt.Errorf("%w: person id must be 1..20 characters: %w", errMalformed, adapter.ErrRejected)
	case b.CampaignID == "" || len(b.CampaignID) > 40, b.ClinicID == "" || len(b.ClinicID) > 40:
		return fmt.Errorf("%w: campaign and clinic ids must be 1..40 characters: %w", errMalformed, adapter.ErrRejected)
	case b.Product == "" || len(b.Product) > 20:
		return fmt.Errorf("%w: product must be 1..20 characters: %w", errMalformed, adapter.ErrRejected)
	case b.Dose < 1 || b.Dose > 99:
		return fmt.Errorf("%w: dose must be 1..99: %w", errMalformed, adapter.ErrRejected)
	case b.Date.IsZero():
		return fmt.Errorf("%w: date missing: %w", errMalformed, adapter.ErrRejected)
	}
	return nil
}

// recordBooking applies the RSVT_INFO rules; created is false when the id
// already existed.
func (r *Registry) recordBooking(b adapter.BookingRecord) (created bool, err error) {
	if err := validBooking(b); err != nil {
		return false, err
	}
	r.stats.records.Add(1)
	s := r.pshard(b.PersonID)
	rs := r.rshard(b.BookingID)
	s.mu.Lock()
	defer s.mu.Unlock()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r.countWrite(rs, b.BookingID, 0)
	if _, ok := rs.rsv[b.BookingID]; ok {
		r.stats.duplicates.Add(1)
		return false, nil
	}
	p, ok := r.person(s, b.PersonID)
	switch {
	case !ok:
		r.stats.rejected.Add(1)
		return false, rejected("person unknown")
	case p.Contraindicated:
		r.stats.rejected.Add(1)
		return false, rejected("person contraindicated")
	case p.Excluded:
		r.stats.rejected.Add(1)
		return false, rejected("person excluded")
	}
	for _, d := range p.Doses {
		if d.Number >= b.Dose {
			r.stats.rejected.Add(1)
			return false, rejected("dose %d already given", d.Number)
		}
	}
	now := r.now()
	b.Date = time.Date(b.Date.Year(), b.Date.Month(), b.Date.Day(), 0, 0, 0, 0, time.UTC)
	rs.rsv[b.BookingID] = &Reservation{BookingRecord: b, Status: "A", Registered: now, Updated: now}
	s.byPers[b.PersonID] = append(s.byPers[b.PersonID], b.BookingID)
	return true, nil
}

func (r *Registry) cancelBooking(id string) {
	r.stats.cancels.Add(1)
	rs := r.rshard(id)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r.countWrite(rs, id, 1)
	if v, ok := rs.rsv[id]; ok && v.Active() {
		v.Status = "C"
		v.Updated = r.now()
	}
}

// countWrite counts a write for id; the caller holds rs.mu.
func (r *Registry) countWrite(rs *rsvShard, id string, which int) {
	w := rs.writes[id]
	if w == nil {
		w = new([2]int)
		rs.writes[id] = w
	}
	w[which]++
}

// --- inspection -------------------------------------------------------------

// WritesFor returns how many record and cancel requests for bookingID the
// registry received and processed (applied, found already applied, or
// rejected), over both faces; calls refused by an injected fault before
// processing are not counted. With it a test checks "exactly once in
// effect": Reservation shows the effect, WritesFor the deliveries.
func (r *Registry) WritesFor(bookingID string) (records, cancels int) {
	rs := r.rshard(bookingID)
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	if w := rs.writes[bookingID]; w != nil {
		return w[0], w[1]
	}
	return 0, 0
}

// Reservation returns the reservation stored under bookingID and whether
// there is one.
func (r *Registry) Reservation(bookingID string) (Reservation, bool) {
	rs := r.rshard(bookingID)
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	if v, ok := rs.rsv[bookingID]; ok {
		return *v, true
	}
	return Reservation{}, false
}

// Reservations returns the number of reservations stored and how many of
// them are active.
func (r *Registry) Reservations() (total, active int) {
	for i := range r.rsv {
		rs := &r.rsv[i]
		rs.mu.RLock()
		for _, v := range rs.rsv {
			total++
			if v.Active() {
				active++
			}
		}
		rs.mu.RUnlock()
	}
	return total, active
}

// Reset clears the faults, the counters, the write counts and every
// reservation. People (the population and those added) stay.
func (r *Registry) Reset() {
	for i := range r.rsv {
		s := &r.people[i]
		s.mu.Lock()
		s.byPers = map[string][]string{}
		s.mu.Unlock()
		rs := &r.rsv[i]
		rs.mu.Lock()
		rs.rsv = map[string]*Reservation{}
		rs.writes = map[string]*[2]int{}
		rs.mu.Unlock()
	}
	r.stats.reset()
	r.SetFaults(Faults{})
}

// --- faults -----------------------------------------------------------------

// Faults returns the faults in force.
func (r *Registry) Faults() Faults {
	r.fmu.Lock()
	defer r.fmu.Unlock()
	return r.faults
}

// SetFaults replaces the faults in force. Calls stalled under the old
// faults re-check at once. With a Server running, setting Outage closes the
// listener before SetFaults returns, and clearing it listens again.
// Invalid faults (rates outside [0,1], negative durations) are refused.
func (r *Registry) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("mock registry: faults: %w", err)
	}
	r.fmu.Lock()
	r.faults = f
	close(r.changed)
	r.changed = make(chan struct{})
	ws := make([]func(Faults), 0, len(r.watchers))
	for _, w := range r.watchers {
		ws = append(ws, w)
	}
	r.fmu.Unlock()
	r.log.Info("mock registry faults changed",
		"latency", f.Latency, "tail_p", f.LatencyTail.P, "tail_extra", f.LatencyTail.Extra,
		"error_rate", f.ErrorRate, "error_after_rate", f.ErrorAfterRate, "throttle_rate", f.ThrottleRate,
		"outage", f.Outage, "stall", f.Stall, "capacity", f.Capacity, "shed", f.Shed, "scope", f.Scope)
	for _, w := range ws {
		w(f)
	}
	return nil
}

// watch registers fn to run after every SetFaults; it returns the
// function that unregisters it.
func (r *Registry) watch(fn func(Faults)) func() {
	r.fmu.Lock()
	defer r.fmu.Unlock()
	id := r.nextW
	r.nextW++
	r.watchers[id] = fn
	return func() {
		r.fmu.Lock()
		defer r.fmu.Unlock()
		delete(r.watchers, id)
	}
}

func (r *Registry) current() (Faults, <-chan struct{}) {
	r.fmu.Lock()
	defer r.fmu.Unlock()
	return r.faults, r.changed
}

func (r *Registry) draw() float64 {
	r.fmu.Lock()
	defer r.fmu.Unlock()
	return r.rng.Float64()
}

// enter runs the faults before a call. On success the caller must call
// done when the call ends.
func (r *Registry) enter(ctx context.Context, write bool) (done func(), err error) {
	n := r.inFlight.Add(1)
	r.stats.observeInFlight(n)
	release := func() { r.inFlight.Add(-1) }
	defer func() {
		if err != nil {
			release()
		}
	}()
	f, changed := r.current()
	if f.Outage {
		r.stats.refused.Add(1)
		return nil, &FaultError{Kind: FaultOutage, Status: http.StatusServiceUnavailable}
	}
	if !f.applies(write) {
		return release, nil
	}
	if f.Stall {
		r.stats.stalled.Add(1)
		for f.Stall && f.applies(write) {
			select {
			case <-ctx.Done():
				return nil, &FaultError{Kind: FaultStall, Status: http.StatusGatewayTimeout, Ctx: ctx.Err()}
			case <-changed:
				f, changed = r.current()
			}
		}
		if f.Outage {
			r.stats.refused.Add(1)
			return nil, &FaultError{Kind: FaultOutage, Status: http.StatusServiceUnavailable}
		}
		if !f.applies(write) {
			return release, nil
		}
	}
	if f.Shed > 0 && n > int64(f.Shed) {
		r.stats.shed.Add(1)
		return nil, &FaultError{Kind: FaultShed, Status: http.StatusServiceUnavailable, RetryAfter: f.retryAfter()}
	}
	if f.ThrottleRate > 0 && r.draw() < f.ThrottleRate {
		r.stats.throttled.Add(1)
		return nil, &FaultError{Kind: FaultThrottle, Status: http.StatusTooManyRequests, RetryAfter: f.retryAfter()}
	}
	delay := f.Latency
	if f.LatencyTail.P > 0 && r.draw() < f.LatencyTail.P {
		delay += f.LatencyTail.Extra
	}
	if f.Capacity > 0 && n > int64(f.Capacity) {
		delay += time.Duration(n-int64(f.Capacity)) * f.overloadStep()
		r.stats.overloaded.Add(1)
	}
	if err := sleep(ctx, delay); err != nil {
		return nil, &FaultError{Kind: FaultTimeout, Status: http.StatusGatewayTimeout, Ctx: err}
	}
	if f.ErrorRate > 0 && r.draw() < f.ErrorRate {
		r.stats.injected.Add(1)
		return nil, &FaultError{Kind: FaultInjected, Status: http.StatusInternalServerError}
	}
	return release, nil
}

// afterWrite draws ErrorAfterRate for a write that has been applied.
func (r *Registry) afterWrite() error {
	f, _ := r.current()
	if f.ErrorAfterRate > 0 && f.applies(true) && r.draw() < f.ErrorAfterRate {
		r.stats.injected.Add(1)
		return &FaultError{Kind: FaultErrorAfter, Status: http.StatusInternalServerError}
	}
	return nil
}
