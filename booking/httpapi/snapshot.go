package httpapi

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/clinicsearch"
)

// SnapshotSource is what the clinic snapshot reads; booking.Store has it.
type SnapshotSource interface {
	Campaigns(ctx context.Context) ([]*booking.Campaign, error)
	Clinics(ctx context.Context) ([]booking.Clinic, error)
	QuotasChangedSince(ctx context.Context, campaignID string, version int64) ([]booking.Quota, int64, error)
}

// SnapshotConfig configures a Snapshot.
type SnapshotConfig struct {
	// Interval between refreshes. 0 means 1s.
	Interval time.Duration
	// ReloadEvery reloads campaigns and clinics every so many Intervals
	// (pokes do not count: a busy instance pokes after every booking). 0
	// means 30.
	ReloadEvery int
	// Logger receives refresh failures. nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock for AsOf. nil means time.Now.
	Now func() time.Time
	// CursorKey signs the paging cursors of near searches. Every instance
	// behind one load balancer needs the same key, or a cursor from one is
	// refused by another. nil means a random key per process.
	CursorKey []byte
}

// Snapshot is an in-memory copy of campaigns, clinics and first-dose quota
// rows that answers GET /v1/clinics without a database query per request.
// It follows the quota table through QuotasChangedSince every Interval,
// and at once after Poke (this instance's own bookings). Readers never
// wait for the database; they see at most one refresh of staleness.
type Snapshot struct {
	src SnapshotSource
	cfg SnapshotConfig

	poke   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup

	index *clinicsearch.Index // clinics by place; rebuilt on reload

	mu        sync.RWMutex
	campaigns map[string]*campaignSnap
	clinics   map[string]booking.Clinic
	asOf      time.Time
}

type campaignSnap struct {
	c       *booking.Campaign
	version int64
	rows    map[quotaKey]*quotaRow
	// byWave[wave] lists clinics (sorted by id) with their rows of that
	// wave sorted by date and product; rebuilt when a new row appears.
	byWave map[int][]clinicRows
	// rowsOf[wave][clinic] are the same rows, for near searches.
	rowsOf map[int]map[string][]*quotaRow
	dirty  bool
}

type quotaKey struct {
	clinic  string
	date    booking.Date
	product string
	dose    int
	wave    int
}

type quotaRow struct {
	key       quotaKey
	remaining int
}

type clinicRows struct {
	clinicID string
	rows     []*quotaRow
}

// NewSnapshot returns a Snapshot; call Start to load and follow the store.
func NewSnapshot(src SnapshotSource, cfg SnapshotConfig) *Snapshot {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.ReloadEvery <= 0 {
		cfg.ReloadEvery = 30
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Snapshot{src: src, cfg: cfg, poke: make(chan struct{}, 1), campaigns: map[string]*campaignSnap{}, clinics: map[string]booking.Clinic{},
		index: clinicsearch.New(clinicsearch.Config{CursorKey: cfg.CursorKey})}
}

// Start loads everything once (returning its error) and then refreshes in
// a goroutine until Close.
func (s *Snapshot) Start(ctx context.Context) error {
	if err := s.reload(ctx); err != nil {
		return err
	}
	if err := s.Refresh(ctx); err != nil {
		return err
	}
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.wg.Add(1)
	go s.loop(ctx)
	return nil
}

// Close stops the refresh goroutine and waits for it.
func (s *Snapshot) Close() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// Poke asks for a refresh now (non-blocking; coalesces).
func (s *Snapshot) Poke() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

func (s *Snapshot) loop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n++
		case <-s.poke:
		}
		if n >= s.cfg.ReloadEvery {
			n = 0
			if err := s.reload(ctx); err != nil && ctx.Err() == nil {
				s.cfg.Logger.Warn("clinic snapshot: reload failed", "err", err)
			}
		}
		if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("clinic snapshot: refresh failed; serving the previous snapshot", "err", err)
		}
	}
}

// reload re-reads campaigns and clinics (they change rarely).
func (s *Snapshot) reload(ctx context.Context) error {
	cs, err := s.src.Campaigns(ctx)
	if err != nil {
		return fmt.Errorf("snapshot: campaigns: %w", err)
	}
	clinics, err := s.src.Clinics(ctx)
	if err != nil {
		return fmt.Errorf("snapshot: clinics: %w", err)
	}
	byID := make(map[string]booking.Clinic, len(clinics))
	for _, c := range clinics {
		byID[c.ID] = c
	}
	if err := s.index.Build(clinics); err != nil {
		return fmt.Errorf("snapshot: clinic index: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clinics = byID
	for _, c := range cs {
		if cs, ok := s.campaigns[c.ID]; ok {
			cs.c = c
			cs.dirty = true // clinics may have changed
			continue
		}
		s.campaigns[c.ID] = &campaignSnap{c: c, rows: map[quotaKey]*quotaRow{}, dirty: true}
	}
	return nil
}

// Refresh applies the quota rows changed since the last refresh. It is
// called by the refresh goroutine; tests call it to refresh synchronously.
func (s *Snapshot) Refresh(ctx context.Context) error {
	s.mu.RLock()
	type job struct {
		id      string
		version int64
	}
	jobs := make([]job, 0, len(s.campaigns))
	for id, c := range s.campaigns {
		jobs = append(jobs, job{id, c.version})
	}
	s.mu.RUnlock()
	for _, j := range jobs {
		rows, version, err := s.src.QuotasChangedSince(ctx, j.id, j.version)
		if err != nil {
			return fmt.Errorf("snapshot: quotas of %s: %w", j.id, err)
		}
		s.apply(j.id, rows, version)
	}
	s.mu.Lock()
	s.asOf = s.cfg.Now()
	s.mu.Unlock()
	return nil
}

func (s *Snapshot) apply(campaignID string, rows []booking.Quota, version int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.campaigns[campaignID]
	if cs == nil {
		return
	}
	for _, q := range rows {
		if q.Dose != 1 {
			continue // second-dose pools are reserved with dose 1, not listed
		}
		k := quotaKey{q.ClinicID, q.Date, q.Product, q.Dose, q.Wave}
		if r, ok := cs.rows[k]; ok {
			r.remaining = q.Remaining()
			continue
		}
		cs.rows[k] = &quotaRow{key: k, remaining: q.Remaining()}
		cs.dirty = true
	}
	if version > cs.version {
		cs.version = version
	}
	if cs.dirty {
		cs.reindex()
	}
}

func (cs *campaignSnap) reindex() {
	byWave := map[int]map[string][]*quotaRow{}
	for _, r := range cs.rows {
		m := byWave[r.key.wave]
		if m == nil {
			m = map[string][]*quotaRow{}
			byWave[r.key.wave] = m
		}
		m[r.key.clinic] = append(m[r.key.clinic], r)
	}
	cs.byWave = make(map[int][]clinicRows, len(byWave))
	cs.rowsOf = byWave
	for w, m := range byWave {
		list := make([]clinicRows, 0, len(m))
		for id, rows := range m {
			slices.SortFunc(rows, func(a, b *quotaRow) int {
				if c := a.key.date.Compare(b.key.date); c != 0 {
					return c
				}
				return strings.Compare(a.key.product, b.key.product)
			})
			list = append(list, clinicRows{id, rows})
		}
		slices.SortFunc(list, func(a, b clinicRows) int { return cmp.Compare(a.clinicID, b.clinicID) })
		cs.byWave[w] = list
	}
	cs.dirty = false
}

// Campaign returns the snapshot's copy of a campaign (nil if unknown).
func (s *Snapshot) Campaign(id string) *booking.Campaign {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if cs := s.campaigns[id]; cs != nil {
		return cs.c
	}
	return nil
}

// ClinicQuery selects clinics from the snapshot.
type ClinicQuery struct {
	CampaignID string
	// Wave whose remaining doses are shown.
	Wave int
	// Region matches a clinic region code or its prefix ("11" matches
	// "11-110"); "" matches all.
	Region string
	// Date and Product filter availability; zero values match all.
	Date    booking.Date
	Product string
	// Limit is the maximum number of clinics.
	Limit int
}

// ClinicAvailability is one clinic with its availability for one wave.
type ClinicAvailability struct {
	Clinic       booking.Clinic
	Availability []Availability
}

// Availability is what one wave can still book at a clinic on a date for a product.
type Availability struct {
	Date      booking.Date
	Product   string
	Remaining int
}

// Clinics answers a query from memory: clinics ordered by id with at least
// one quota row matching the filters, and the snapshot's time. ok is false
// when the campaign is unknown.
func (s *Snapshot) Clinics(q ClinicQuery) (out []ClinicAvailability, asOf time.Time, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	cs := s.campaigns[q.CampaignID]
	if cs == nil {
		return nil, time.Time{}, false
	}
	for _, cr := range cs.byWave[q.Wave] {
		if len(out) >= q.Limit {
			break
		}
		cl, known := s.clinics[cr.clinicID]
		if !known || q.Region != "" && cl.Region != q.Region && !strings.HasPrefix(cl.Region, q.Region+"-") {
			continue
		}
		var av []Availability
		for _, r := range cr.rows {
			if !q.Date.IsZero() && r.key.date != q.Date || q.Product != "" && r.key.product != q.Product {
				continue
			}
			av = append(av, Availability{Date: r.key.date, Product: r.key.product, Remaining: r.remaining})
		}
		if len(av) > 0 {
			out = append(out, ClinicAvailability{Clinic: cl, Availability: av})
		}
	}
	return out, s.asOf, true
}

// NearQuery selects clinics around a point from the snapshot.
type NearQuery struct {
	ClinicQuery
	// Lat and Lon are the point; RadiusKm the search radius (0 means
	// clinicsearch.DefaultRadiusKm, at most clinicsearch.MaxRadiusKm).
	Lat, Lon, RadiusKm float64
	// Cursor continues an earlier page ("" for the first).
	Cursor string
}

// NearClinic is a clinic found near a point, with its availability for
// the query's wave.
type NearClinic struct {
	ClinicAvailability
	DistanceKm float64
}

// Near answers a radius search from memory through the geo index: the
// clinics within the radius, nearest first (ties by id), that have at
// least one dose left for the query's wave among the rows matching Date,
// Product and Region, each with those rows; and the cursor of the next
// page ("" on the last). ok is false when the campaign is unknown; err is
// EINVALID for a bad point, radius or cursor.
func (s *Snapshot) Near(q NearQuery) (out []NearClinic, next string, asOf time.Time, ok bool, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	cs := s.campaigns[q.CampaignID]
	if cs == nil {
		return nil, "", time.Time{}, false, nil
	}
	rowsOf := cs.rowsOf[q.Wave]
	matching := func(clinicID string, keep func(*quotaRow)) bool {
		cl, known := s.clinics[clinicID]
		if !known || q.Region != "" && cl.Region != q.Region && !strings.HasPrefix(cl.Region, q.Region+"-") {
			return false
		}
		stock := false
		for _, r := range rowsOf[clinicID] {
			if !q.Date.IsZero() && r.key.date != q.Date || q.Product != "" && r.key.product != q.Product {
				continue
			}
			stock = stock || r.remaining > 0
			if keep != nil {
				keep(r)
			}
		}
		return stock
	}
	page, err := s.index.Near(clinicsearch.Query{Lat: q.Lat, Lon: q.Lon, RadiusKm: q.RadiusKm, Limit: q.Limit, Cursor: q.Cursor,
		Filter: func(id string) bool { return matching(id, nil) }})
	if err != nil {
		return nil, "", time.Time{}, true, err
	}
	out = make([]NearClinic, 0, len(page.Results))
	for _, h := range page.Results {
		nc := NearClinic{ClinicAvailability: ClinicAvailability{Clinic: s.clinics[h.Clinic.ID]}, DistanceKm: h.DistanceKm}
		matching(h.Clinic.ID, func(r *quotaRow) {
			nc.Availability = append(nc.Availability, Availability{Date: r.key.date, Product: r.key.product, Remaining: r.remaining})
		})
		out = append(out, nc)
	}
	return out, page.NextCursor, s.asOf, true, nil
}

// Slots yields, nearest clinic first, the (clinic, date, product) slots
// within the radius that have a dose left for the wave, among the given
// product ("" any) and dates (none: any); dates ascending within a clinic.
// It reads the snapshot at each step (it may lag the database by a
// refresh; the booking is checked there). For POST /v1/bookings:assign.
func (s *Snapshot) Slots(campaignID string, wave int, lat, lon, radiusKm float64, product string, dates []booking.Date) func(yield func(booking.Slot) bool) {
	return func(yield func(booking.Slot) bool) {
		cursor := ""
		for {
			var batch []booking.Slot
			s.mu.RLock()
			cs := s.campaigns[campaignID]
			if cs == nil {
				s.mu.RUnlock()
				return
			}
			rowsOf := cs.rowsOf[wave]
			slotsOf := func(id string, keep func(booking.Slot)) bool {
				found := false
				for _, r := range rowsOf[id] {
					if r.remaining <= 0 || product != "" && r.key.product != product || len(dates) > 0 && !slices.Contains(dates, r.key.date) {
						continue
					}
					found = true
					if keep != nil {
						keep(booking.Slot{ClinicID: id, Date: r.key.date, Product: r.key.product})
					}
				}
				return found
			}
			page, err := s.index.Near(clinicsearch.Query{Lat: lat, Lon: lon, RadiusKm: radiusKm, Limit: clinicsearch.MaxLimit, Cursor: cursor,
				Filter: func(id string) bool { return slotsOf(id, nil) }})
			if err == nil {
				for _, h := range page.Results {
					slotsOf(h.Clinic.ID, func(sl booking.Slot) { batch = append(batch, sl) })
				}
			}
			s.mu.RUnlock()
			for _, sl := range batch {
				if !yield(sl) {
					return
				}
			}
			if err != nil || page.NextCursor == "" {
				return
			}
			cursor = page.NextCursor
		}
	}
}

// CurrentWave is the wave of the booking window now falls in: rotation day
// k (counted across rotation phases) is wave k+1; anything else is
// booking.OpenWave. It is what anonymous callers of /v1/clinics see.
func CurrentWave(c *booking.Campaign, now time.Time) int {
	loc := c.Location()
	k := 0
	for _, p := range c.Phases {
		if p.Kind != booking.PhaseRotation {
			continue
		}
		days := p.Days
		if days == 0 {
			days = booking.DefaultRotationDays
		}
		for d := range days {
			day := p.Starts.AddDays(d).In(loc)
			if !now.Before(day.Add(p.Opens)) && now.Before(day.Add(p.Closes)) {
				return k + d + 1
			}
		}
		k += days
	}
	return booking.OpenWave
}
