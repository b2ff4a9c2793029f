package registrysync_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/adapter/registrysync"
	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/sqlstore"
	"github.com/yeyak/yeyak/mocks/population"
	"github.com/yeyak/yeyak/mocks/registry"
	"github.com/yeyak/yeyak/mocks/testenv"
	"github.com/yeyak/yeyak/outbox"
)

// registryPeople is the booking path's PersonSource straight over the mock
// registry (no cache): registry down → EREGISTRYDOWN.
type registryPeople struct{ reg adapter.Registry }

func (p registryPeople) Person(ctx context.Context, id string) (booking.Person, error) {
	rec, err := p.reg.Eligibility(ctx, id)
	switch {
	case errors.Is(err, adapter.ErrNotFound):
		return booking.Person{}, booking.Errorf(booking.EUNKNOWNPERSON, "unknown person")
	case errors.Is(err, adapter.ErrUnavailable):
		return booking.Person{}, &booking.Error{Code: booking.EREGISTRYDOWN, Message: "registry down", Err: err}
	case err != nil:
		return booking.Person{}, err
	}
	return booking.Person{ID: rec.PersonID, BirthDate: booking.DateOf(rec.BirthDate), DosesReceived: len(rec.Doses),
		Excluded: rec.Excluded || rec.Contraindicated}, nil
}

// cachedPeople stands in for a warm eligibility cache: it answers from
// the population, whatever the registry's state.
type cachedPeople map[string]population.Person

func (c cachedPeople) Person(_ context.Context, id string) (booking.Person, error) {
	p, ok := c[id]
	if !ok {
		return booking.Person{}, booking.Errorf(booking.EUNKNOWNPERSON, "unknown person")
	}
	return booking.Person{ID: p.ID, BirthDate: p.BirthDate, DosesReceived: len(p.Doses), Excluded: p.Excluded || p.Contraindicated}, nil
}

// system is yeyak's write path and sync path on one SQLite file, an
// embedded Kafka broker and the mock registry.
type system struct {
	store   *sqlstore.DB
	svc     *booking.Service
	reg     *registry.Registry
	brokers []string
	slot    booking.Date
	campID  string
}

var seoul, _ = time.LoadLocation("Asia/Seoul")

// dialects are the databases the end-to-end tests run on.
var dialects = []string{"sqlite", "postgres"}

// newSystem is newSystemOn on a fresh database of the dialect with one
// clinic.
func newSystem(t testing.TB, dialect string, people booking.PersonSource, reg *registry.Registry, capacity int) *system {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "yeyak.db")
	if dialect == "postgres" {
		dsn = testenv.Postgres(t)
	}
	return newSystemOn(t, dsn, people, reg, capacity, 1)
}

// newSystemOn is newSystem on the database at dsn with clinics K001…
// each holding capacity doses on the slot date.
func newSystemOn(t testing.TB, dsn string, people booking.PersonSource, reg *registry.Registry, capacity, clinics int) *system {
	t.Helper()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, dsn, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	c := booking.Campaign2021()
	c.RegistryPolicy = booking.Provisional
	if err := store.PutCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	slot := booking.MustDate("2021-08-26")
	var cs []booking.Clinic
	var qs []booking.Quota
	for i := 1; i <= clinics; i++ {
		id := fmt.Sprintf("K%03d", i)
		cs = append(cs, booking.Clinic{ID: id, Name: "Clinic " + id, Region: "11-110", Products: []string{"pfizer"}})
		qs = append(qs, booking.Quota{CampaignID: c.ID, ClinicID: id, Date: slot, Product: "pfizer",
			Dose: 1, Wave: booking.OpenWave, Capacity: capacity})
		// Booking dose 1 of pfizer also reserves dose 2, an interval later.
		p, _ := c.Product("pfizer")
		qs = append(qs, booking.Quota{CampaignID: c.ID, ClinicID: id, Date: slot.AddDays(p.IntervalDays), Product: "pfizer",
			Dose: 2, Wave: booking.OpenWave, Capacity: capacity})
	}
	if err := store.PutClinics(ctx, cs); err != nil {
		t.Fatal(err)
	}
	if err := store.SetQuotas(ctx, qs); err != nil {
		t.Fatal(err)
	}
	if people == nil {
		people = registryPeople{reg}
	}
	now := time.Date(2021, 8, 25, 12, 0, 0, 0, seoul) // open phase
	svc, err := booking.NewService(booking.ServiceConfig{Store: store, People: people, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	brokers, stop, err := outbox.StartEmbeddedKafka(ctx, []string{outbox.DefaultTopic, outbox.DefaultTopic + outbox.DeadLetterSuffix}, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return &system{store: store, svc: svc, reg: reg, brokers: brokers, slot: slot, campID: c.ID}
}

func (s *system) book(ctx context.Context, person string, birth booking.Date) (*booking.Booking, error) {
	return s.bookAt(ctx, "K001", person, birth)
}

func (s *system) bookAt(ctx context.Context, clinic, person string, birth booking.Date) (*booking.Booking, error) {
	return s.svc.Book(ctx, booking.BookRequest{PersonID: person, CampaignID: s.campID, ClinicID: clinic,
		Date: s.slot, Product: "pfizer", BirthDate: birth})
}

// run runs fn in the background until the test ends; stop waits for it.
func run(t testing.TB, fn func(ctx context.Context) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func (s *system) relay(t testing.TB, hook func(context.Context, int) error) *outbox.Relay {
	w := outbox.NewWriter(s.brokers, outbox.DefaultTopic, outbox.WriterConfig{})
	t.Cleanup(func() { w.Close() })
	r, err := outbox.NewRelay(s.store.DB(), string(s.store.Dialect()), w, outbox.RelayConfig{
		BatchSize: 20, PollInterval: 20 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		AfterPublish: hook})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (s *system) consumer(t testing.TB) *outbox.Consumer {
	h, err := registrysync.New(registrysync.Config{Registry: s.reg, Verifier: s.svc})
	if err != nil {
		t.Fatal(err)
	}
	c, err := outbox.NewConsumer(outbox.ConsumerConfig{Brokers: s.brokers, GroupID: "registry-sync", Handler: h.Handle,
		DB: s.store.DB(), Dialect: string(s.store.Dialect()), Rate: rate.Inf,
		RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond, PauseMin: 20 * time.Millisecond, PauseMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func person(i int, contraindicated bool) population.Person {
	return population.Person{ID: fmt.Sprintf("P%010d", i), BirthDate: booking.MustDate("1990-05-01").AddDays(i % 300),
		Contraindicated: contraindicated}
}

// TestEndToEndCrashBetweenPublishAndMark: bookings flow through the outbox
// to the registry; the relay crashes after publishing a batch and before
// marking it, restarts, and the registry still holds each booking exactly
// once (write counts), none missing.
func TestEndToEndCrashBetweenPublishAndMark(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) { t.Parallel(); crashBetweenPublishAndMark(t, d) })
	}
}

func crashBetweenPublishAndMark(t *testing.T, dialect string) {
	reg := registry.NewEmpty()
	const n = 60
	for i := range n {
		reg.Add(person(i, false))
	}
	s := newSystem(t, dialect, nil, reg, n)
	ctx := context.Background()
	var ids []string
	for i := range n {
		b, err := s.book(ctx, person(i, false).ID, booking.Date{})
		if err != nil {
			t.Fatalf("book %d: %v", i, err)
		}
		ids = append(ids, b.ID, b.LinkedID) // dose 1 and the dose 2 reserved with it
	}
	crash := errors.New("killed")
	var crashed bool
	r1 := s.relay(t, func(context.Context, int) error {
		if !crashed {
			crashed = true
			return crash
		}
		return nil
	})
	if err := r1.Run(ctx); !errors.Is(err, crash) {
		t.Fatalf("relay: %v", err)
	}
	run(t, s.relay(t, nil).Run)
	c := s.consumer(t)
	run(t, c.Run)
	waitFor(t, 30*time.Second, "every booking in the registry", func() bool {
		_, active := reg.Reservations()
		return active == len(ids) && c.Stats().Deduplicated >= 20
	})
	for _, id := range ids {
		if rec, cancels := reg.WritesFor(id); rec != 1 || cancels != 0 {
			t.Fatalf("registry received %d records / %d cancels for a booking, want exactly 1 / 0", rec, cancels)
		}
	}
}

// TestEndToEndRegistryOutageDuringBookingStream: with eligibility cached,
// bookings keep succeeding while the registry is down; the consumer pauses
// instead of skipping; after recovery every booking is in the registry
// exactly once.
func TestEndToEndRegistryOutageDuringBookingStream(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) { t.Parallel(); registryOutageDuringBookingStream(t, d) })
	}
}

func registryOutageDuringBookingStream(t *testing.T, dialect string) {
	reg := registry.NewEmpty()
	cache := cachedPeople{}
	const n = 40
	for i := range n {
		p := person(i, false)
		reg.Add(p)
		cache[p.ID] = p
	}
	s := newSystem(t, dialect, cache, reg, n)
	run(t, s.relay(t, nil).Run)
	c := s.consumer(t)
	run(t, c.Run)
	ctx := context.Background()
	var ids []string
	for i := range n {
		if i == 10 {
			if err := reg.SetFaults(registry.Faults{Outage: true}); err != nil {
				t.Fatal(err)
			}
		}
		b, err := s.book(ctx, person(i, false).ID, booking.Date{})
		if err != nil {
			t.Fatalf("booking %d during registry outage: %v", i, err)
		}
		ids = append(ids, b.ID, b.LinkedID) // dose 1 and the dose 2 reserved with it
	}
	waitFor(t, 20*time.Second, "consumer paused", func() bool { return c.Stats().Paused })
	if err := reg.SetFaults(registry.Faults{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "every booking in the registry", func() bool {
		_, active := reg.Reservations()
		return active == len(ids)
	})
	for _, id := range ids {
		if rec, _ := reg.WritesFor(id); rec != 1 {
			t.Fatalf("registry received %d records for a booking, want 1", rec)
		}
	}
	if c.Stats().DeadLettered != 0 {
		t.Fatal("outage produced dead letters")
	}
}

// TestEndToEndProvisionalIneligibleFreesDose: bookings accepted as
// provisional while the registry was down are verified when it returns:
// the eligible one is confirmed (and recorded once), the ineligible one is
// cancelled with reason "ineligible" and its dose is bookable again.
func TestEndToEndProvisionalIneligibleFreesDose(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) { t.Parallel(); provisionalIneligibleFreesDose(t, d) })
	}
}

func provisionalIneligibleFreesDose(t *testing.T, dialect string) {
	reg := registry.NewEmpty()
	good, bad, late := person(1, false), person(2, true), person(3, false)
	for _, p := range []population.Person{good, bad, late} {
		reg.Add(p)
	}
	s := newSystem(t, dialect, nil, reg, 2)
	ctx := context.Background()
	if err := reg.SetFaults(registry.Faults{Outage: true}); err != nil {
		t.Fatal(err)
	}
	bGood, err := s.book(ctx, good.ID, good.BirthDate)
	if err != nil || bGood.Status != booking.StatusProvisional {
		t.Fatalf("provisional booking: %v %+v", err, bGood)
	}
	bBad, err := s.book(ctx, bad.ID, bad.BirthDate)
	if err != nil || bBad.Status != booking.StatusProvisional {
		t.Fatalf("provisional booking: %v %+v", err, bBad)
	}
	if err := reg.SetFaults(registry.Faults{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.book(ctx, late.ID, booking.Date{}); booking.ErrorCode(err) != booking.ESOLDOUT {
		t.Fatalf("third booking before verification: %v, want sold_out", err)
	}

	run(t, s.relay(t, nil).Run)
	c := s.consumer(t)
	run(t, c.Run)
	waitFor(t, 30*time.Second, "provisional bookings settled", func() bool {
		g, err1 := s.store.BookingByID(ctx, bGood.ID)
		b, err2 := s.store.BookingByID(ctx, bBad.ID)
		return err1 == nil && err2 == nil && g.Status == booking.StatusConfirmed && b.Status == booking.StatusCancelled
	})
	b, _ := s.store.BookingByID(ctx, bBad.ID)
	if b.CancelReason != registrysync.ReasonIneligible {
		t.Fatalf("cancel reason %q", b.CancelReason)
	}
	waitFor(t, 30*time.Second, "confirmed booking recorded", func() bool {
		r, ok := reg.Reservation(bGood.ID)
		return ok && r.Active()
	})
	if _, err := s.book(ctx, late.ID, booking.Date{}); err != nil {
		t.Fatalf("the freed dose is not bookable: %v", err)
	}
	if rec, _ := reg.WritesFor(bBad.ID); rec != 0 {
		t.Fatal("ineligible booking was recorded in the registry")
	}
}

// TestEndToEndOpenBreakerPausesConsumer: the registry sync consumer writes
// through the real adapter.Facade to the mock registry, which goes into an
// outage during a booking stream. The facade's write breaker opens; the
// consumer pauses on it without hammering the registry (while the breaker
// is open the registry sees at most its half-open probes); no offset is
// skipped; after recovery every booking is in the registry exactly once.
func TestEndToEndOpenBreakerPausesConsumer(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) { t.Parallel(); openBreakerPausesConsumer(t, d) })
	}
}

func openBreakerPausesConsumer(t *testing.T, dialect string) {
	reg := registry.NewEmpty()
	people := cachedPeople{}
	const n = 30
	for i := range n {
		p := person(i, false)
		reg.Add(p)
		people[p.ID] = p
	}
	const openFor = 2 * time.Second
	facade, err := adapter.NewFacade(reg, adapter.FacadeConfig{MinRequests: 3, FailureRatio: 0.5,
		OpenTimeout: openFor, HalfOpenRequests: 1, WriteTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer facade.Close()
	s := newSystem(t, dialect, people, reg, n)
	run(t, s.relay(t, nil).Run)
	h, err := registrysync.New(registrysync.Config{Registry: facade, Verifier: s.svc})
	if err != nil {
		t.Fatal(err)
	}
	c, err := outbox.NewConsumer(outbox.ConsumerConfig{Brokers: s.brokers, GroupID: "registry-sync", Handler: h.Handle,
		DB: s.store.DB(), Dialect: string(s.store.Dialect()), Rate: rate.Inf,
		RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		// Without the breaker the paused consumer would try every 20-50ms.
		PauseMin: 20 * time.Millisecond, PauseMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	run(t, c.Run)
	attempts := func() int64 { st := reg.Stats(); return st.Refused + st.Records + st.Cancels + st.Reads }

	ctx := context.Background()
	var ids []string
	for i := range n {
		if i == 5 {
			if err := reg.SetFaults(registry.Faults{Outage: true}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.book(ctx, person(i, false).ID, booking.Date{}); err != nil {
			t.Fatalf("booking %d during registry outage: %v", i, err)
		}
		// A booking of dose 1 may come with its dose 2: each is an event.
		bs, err := s.store.Bookings(ctx, person(i, false).ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			ids = append(ids, b.ID)
		}
	}
	writeState := func() string {
		for _, b := range facade.Breakers() {
			if b.Name == adapter.BreakerWrite {
				return b.State
			}
		}
		return ""
	}
	waitFor(t, 20*time.Second, "write breaker open and consumer paused", func() bool {
		return writeState() == "open" && c.Stats().Paused
	})
	// Observe a second of the pause, within the breaker's open time.
	before, start := attempts(), time.Now()
	time.Sleep(time.Second)
	during, observed := attempts()-before, time.Since(start)
	if probes := int64(observed/openFor) + 1; during > probes {
		t.Fatalf("registry saw %d attempts in %v with the write breaker open, want at most %d half-open probe(s)", during, observed, probes)
	}
	if c.Stats().DeadLettered != 0 {
		t.Fatalf("consumer %+v while the registry is down", c.Stats())
	}

	if err := reg.SetFaults(registry.Faults{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, active := reg.Reservations()
		if active == len(ids) && c.Stats().Applied == int64(len(ids)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after recovery: %d of %d bookings in the registry; consumer %+v; write breaker %s; registry %+v",
				active, len(ids), c.Stats(), writeState(), reg.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, id := range ids {
		if rec, _ := reg.WritesFor(id); rec != 1 {
			t.Fatalf("registry received %d records for a booking, want exactly 1", rec)
		}
	}
	if st := c.Stats(); st.DeadLettered != 0 || st.Paused {
		t.Fatalf("after recovery: %+v", st)
	}
	if writeState() != "closed" {
		t.Fatalf("write breaker %s after recovery, want closed", writeState())
	}
}
