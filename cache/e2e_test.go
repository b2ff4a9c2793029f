package cache_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/sqlstore"
	"github.com/yeyak/yeyak/cache"
	"github.com/yeyak/yeyak/mocks/population"
	"github.com/yeyak/yeyak/mocks/registry"
	"github.com/yeyak/yeyak/mocks/testenv"
)

// These tests run the booking path through its real parts: booking.Service
// on a sqlstore (SQLite and PostgreSQL) → cache.Cache → adapter.Facade →
// mocks/registry, whose fault injection plays the registry's outages and
// stalls and whose counters (and readsByPerson's) show who reached it.

// readsByPerson sits between the facade and the mock registry and counts
// the single reads asked for each person.
type readsByPerson struct {
	adapter.Registry
	mu sync.Mutex
	n  map[string]int
}

func (r *readsByPerson) Eligibility(ctx context.Context, id string) (adapter.Record, error) {
	r.mu.Lock()
	r.n[id]++
	r.mu.Unlock()
	return r.Registry.Eligibility(ctx, id)
}

func (r *readsByPerson) of(ids []string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, id := range ids {
		n += r.n[id]
	}
	return n
}

// rotationNow is 2021-08-12 21:00 in Seoul: day 3 of Campaign2021's
// rotation, whose window is for birth digit 2 (wave 4).
var rotationNow = time.Date(2021, 8, 12, 21, 0, 0, 0, time.FixedZone("KST", 9*3600))

const rotationDigit = 2

// world is the booking path on one database.
type world struct {
	reg     *registry.Registry
	reads   *readsByPerson
	facade  *adapter.Facade
	cache   *cache.Cache
	svc     *booking.Service
	store   *sqlstore.DB
	pop     population.Config
	camps   map[booking.RegistryPolicy]string // campaign id by registry policy
	slot    booking.Date
	clinics int
}

// newWorld builds the booking path on the database at dsn, with a
// population born within Campaign2021's cohort, one copy of the campaign
// per registry policy, and `clinics` clinics with plenty of doses in every
// wave.
func newWorld(t testing.TB, dsn string, people int, fcfg adapter.FacadeConfig) *world {
	t.Helper()
	ctx := context.Background()
	base := booking.Campaign2021()
	w := &world{
		pop:     population.Config{Seed: 21, People: people, BornFrom: base.BornFrom, BornTo: base.BornTo},
		camps:   map[booking.RegistryPolicy]string{},
		slot:    booking.MustDate("2021-08-27"),
		clinics: 4,
	}
	w.reg = registry.New(registry.Config{Population: w.pop, Logger: quiet})
	w.reads = &readsByPerson{Registry: w.reg, n: map[string]int{}}
	if fcfg.Logger == nil {
		fcfg.Logger = quiet
	}
	f, err := adapter.NewFacade(w.reads, fcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	w.facade = f
	w.cache = newCache(t, f, cache.Config{})
	store, err := sqlstore.Open(ctx, dsn, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	w.store = store
	var clinics []booking.Clinic
	for i := 1; i <= w.clinics; i++ {
		id := fmt.Sprintf("K%03d", i)
		clinics = append(clinics, booking.Clinic{ID: id, Name: "Clinic " + id, Region: "11-110", Products: []string{"pfizer"}})
	}
	if err := store.PutClinics(ctx, clinics); err != nil {
		t.Fatal(err)
	}
	for _, policy := range []booking.RegistryPolicy{booking.FailClosed, booking.Provisional} {
		c := booking.Campaign2021()
		c.ID = c.ID + "-" + string(policy)
		c.RegistryPolicy = policy
		if err := store.PutCampaign(ctx, c); err != nil {
			t.Fatal(err)
		}
		var qs []booking.Quota
		for _, k := range clinics {
			for wave := booking.OpenWave; wave <= c.Waves(); wave++ {
				qs = append(qs, booking.Quota{CampaignID: c.ID, ClinicID: k.ID, Date: w.slot, Product: "pfizer",
					Dose: 1, Wave: wave, Capacity: 10_000})
			}
			// Book reserves dose 2 with dose 1, IntervalDays later within
			// ToleranceDays, from the one dose-2 pool.
			p, _ := c.Product("pfizer")
			for d := -p.ToleranceDays; d <= p.ToleranceDays; d++ {
				qs = append(qs, booking.Quota{CampaignID: c.ID, ClinicID: k.ID, Date: w.slot.AddDays(p.IntervalDays + d),
					Product: "pfizer", Dose: 2, Wave: booking.OpenWave, Capacity: 10_000})
			}
		}
		if err := store.SetQuotas(ctx, qs); err != nil {
			t.Fatal(err)
		}
		w.camps[policy] = c.ID
	}
	svc, err := booking.NewService(booking.ServiceConfig{Store: store, People: w.cache,
		Now: func() time.Time { return rotationNow }, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	w.svc = svc
	return w
}

// bookable returns n people of the rotation digit who may book a first
// dose (known, not contraindicated, excluded or vaccinated), skipping the
// first skip of them.
func (w *world) bookable(skip, n int) []population.Person {
	var out []population.Person
	for p := range population.People(w.pop) {
		if p.Eligible() && p.Digit() == rotationDigit {
			if skip > 0 {
				skip--
				continue
			}
			out = append(out, p)
			if len(out) == n {
				break
			}
		}
	}
	return out
}

// book books a first dose for p in the campaign of policy, with p's birth
// date as the identity token carries it, and says how long it took.
func (w *world) book(ctx context.Context, policy booking.RegistryPolicy, p population.Person, i int) (*booking.Booking, time.Duration, error) {
	start := time.Now()
	b, err := w.svc.Book(ctx, booking.BookRequest{PersonID: p.ID, CampaignID: w.camps[policy],
		ClinicID: fmt.Sprintf("K%03d", i%w.clinics+1), Date: w.slot, Product: "pfizer", BirthDate: p.BirthDate})
	return b, time.Since(start), err
}

func ids(ps []population.Person) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

// quantiles returns the p50, p99 and max of ds.
func quantiles(ds []time.Duration) (p50, p99, top time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)*99/100], s[len(s)-1]
}

// databases are the stores the end-to-end tests run on.
func databases(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "yeyak.db") },
		"postgres": func(t *testing.T) string { return testenv.Postgres(t) },
	}
}

// TestRegistryFaultsDoNotTouchCachedBookings is invariant 4 through the
// real pieces: while the registry is in outage or stalls, people whose
// eligibility is cached book exactly as before — every booking succeeds,
// none of them reaches the registry, and none comes anywhere near the
// facade's read deadline — while uncached people get their campaign's
// policy (fail_closed: registry_unavailable; provisional: a provisional
// booking), each within the read deadline.
func TestRegistryFaultsDoNotTouchCachedBookings(t *testing.T) {
	const (
		readDeadline = 2 * time.Second
		cachedN      = 120 // per policy, half booked before the fault, half during
		uncachedN    = 10  // per policy
	)
	for dbName, dsn := range databases(t) {
		for _, fault := range []string{"outage", "stall"} {
			t.Run(dbName+"/"+fault, func(t *testing.T) {
				t.Parallel()
				w := newWorld(t, dsn(t), 20_000, adapter.FacadeConfig{ReadTimeout: readDeadline,
					ReadSlowThreshold: readDeadline / 2, MinRequests: 5})
				ctx := context.Background()
				policies := []booking.RegistryPolicy{booking.FailClosed, booking.Provisional}
				all := w.bookable(0, 2*cachedN+2*uncachedN)
				cached := map[booking.RegistryPolicy][]population.Person{
					booking.FailClosed: all[:cachedN], booking.Provisional: all[cachedN : 2*cachedN]}
				uncached := map[booking.RegistryPolicy][]population.Person{
					booking.FailClosed: all[2*cachedN : 2*cachedN+uncachedN], booking.Provisional: all[2*cachedN+uncachedN:]}
				// Their eligibility is cached (as the warmer or an earlier
				// request would have left it).
				for _, policy := range policies {
					for _, p := range cached[policy] {
						if _, err := w.cache.Get(ctx, p.ID); err != nil {
							t.Fatal(err)
						}
					}
				}
				// Healthy registry: half of the cached people book.
				var healthy []time.Duration
				for _, policy := range policies {
					for i, p := range cached[policy][:cachedN/2] {
						b, took, err := w.book(ctx, policy, p, i)
						if err != nil || b.Status != booking.StatusConfirmed {
							t.Fatalf("healthy booking: %+v, %v", b, err)
						}
						healthy = append(healthy, took)
					}
				}

				if err := w.reg.SetFaults(registry.Faults{Outage: fault == "outage", Stall: fault == "stall"}); err != nil {
					t.Fatal(err)
				}
				cachedIDs := append(ids(cached[booking.FailClosed]), ids(cached[booking.Provisional])...)
				readsBefore := w.reads.of(cachedIDs)

				// During the fault: the other half of the cached people and
				// the uncached people book at the same time.
				var mu sync.Mutex
				var during []time.Duration
				var wg sync.WaitGroup
				for _, policy := range policies {
					for i, p := range uncached[policy] {
						wg.Go(func() {
							b, took, err := w.book(ctx, policy, p, i)
							if took > readDeadline+2*time.Second {
								t.Errorf("uncached person waited %v, past the %v read deadline", took, readDeadline)
							}
							switch policy {
							case booking.FailClosed:
								if booking.ErrorCode(err) != booking.EREGISTRYDOWN {
									t.Errorf("uncached person, fail_closed, registry %s: %+v, %v; want %s", fault, b, err, booking.EREGISTRYDOWN)
								}
							case booking.Provisional:
								if err != nil || b.Status != booking.StatusProvisional {
									t.Errorf("uncached person, provisional, registry %s: %+v, %v; want a provisional booking", fault, b, err)
								}
							}
						})
					}
					wg.Go(func() {
						for i, p := range cached[policy][cachedN/2:] {
							b, took, err := w.book(ctx, policy, p, i)
							if err != nil || b.Status != booking.StatusConfirmed {
								t.Errorf("cached person during registry %s: %+v, %v; want a confirmed booking", fault, b, err)
								continue
							}
							mu.Lock()
							during = append(during, took)
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				if t.Failed() {
					return
				}
				if n := w.reads.of(cachedIDs) - readsBefore; n != 0 {
					t.Fatalf("cached people made %d registry reads during the %s, want 0", n, fault)
				}
				hp50, hp99, hmax := quantiles(healthy)
				dp50, dp99, dmax := quantiles(during)
				t.Logf("cached bookings, healthy registry: p50 %v p99 %v max %v; registry %s: p50 %v p99 %v max %v",
					hp50, hp99, hmax, fault, dp50, dp99, dmax)
				// Not a performance assertion: a cached booking that waited
				// for the registry would take the read deadline.
				if dmax >= readDeadline/2 {
					t.Fatalf("a cached booking took %v during the %s: near the %v read deadline, as if it waited for the registry", dmax, fault, readDeadline)
				}
				if st := w.reg.Stats(); fault == "stall" && st.Stalled == 0 || fault == "outage" && st.Refused == 0 {
					t.Fatalf("the uncached people never met the %s: %+v", fault, st)
				}
			})
		}
	}
}

// TestWarmedDigitGroupBooksWithoutRegistryReads: the warmer loads the
// rotation day's digit group in bulk before the window opens; then 1,000
// of its people book through booking.Service and the registry (the mock's
// own counters) sees not one single read.
func TestWarmedDigitGroupBooksWithoutRegistryReads(t *testing.T) {
	w := newWorld(t, "sqlite:"+filepath.Join(t.TempDir(), "yeyak.db"), 20_000, adapter.FacadeConfig{})
	ctx := context.Background()
	warmer, err := cache.NewWarmer(w.cache, cache.WarmerConfig{Roster: rosterOf(w.pop), ChunksPerSecond: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if err := warmer.Start(ctx, rotationDigit); err != nil {
		t.Fatal(err)
	}
	eventually(t, "warmer to finish", func() bool { return warmer.Status().State == cache.WarmerDone })
	warmed := w.reg.Stats()
	if warmed.Reads != 0 || warmed.BulkReads == 0 {
		t.Fatalf("after warming: %+v, want bulk reads only", warmed)
	}
	people := w.bookable(0, 1_000)
	if len(people) != 1_000 {
		t.Fatalf("only %d bookable people in the digit group", len(people))
	}
	for i, p := range people {
		if b, _, err := w.book(ctx, booking.FailClosed, p, i); err != nil || b.Status != booking.StatusConfirmed {
			t.Fatalf("booking %d: %+v, %v", i, b, err)
		}
	}
	st := w.reg.Stats()
	if st.Reads != 0 || w.reads.of(ids(people)) != 0 {
		t.Fatalf("1,000 bookings of warmed people made %d registry reads (%d of them), want 0", st.Reads, w.reads.of(ids(people)))
	}
	t.Logf("warmer: %d bulk reads for %d ids; then 1,000 bookings, %d single reads", st.BulkReads, st.BulkIDs, st.Reads)
	// booking.Service invalidated each booked person's entry after the
	// commit (the cache is its PersonInvalidator): the next lookup asks
	// the registry.
	if e, err := w.cache.Get(ctx, people[0].ID); err != nil || e.Source != cache.SourceRegistry {
		t.Fatalf("lookup after the booking = %+v, %v; want a registry read", e, err)
	}
}
