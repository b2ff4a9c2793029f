package clinicsearch

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/yeyak/yeyak/booking"
)

// Defaults and limits of a Query and a Config.
const (
	// DefaultRadiusKm is the radius of a Query whose RadiusKm is 0.
	DefaultRadiusKm = 10
	// MaxRadiusKm is the largest radius a Query may ask for.
	MaxRadiusKm = 100
	// DefaultLimit is the page size of a Query whose Limit is 0.
	DefaultLimit = 20
	// MaxLimit is the largest page size a Query may ask for.
	MaxLimit = 100
	// DefaultCellKm is the grid cell edge of a Config whose CellKm is 0.
	DefaultCellKm = 4
	// maxCells bounds the grid so clinics spread over the globe cannot make
	// it huge: the cell edge doubles until the grid fits.
	maxCells = 1 << 20
)

// Config configures an Index. The zero Config is ready to use.
type Config struct {
	// CellKm is the edge of a grid cell in kilometres (north–south; the
	// east–west edge is the same length at the clinics' middle latitude).
	// 0 means DefaultCellKm. Smaller cells touch fewer far clinics per
	// query but more empty cells; 2–8 km is flat at Korea's density.
	CellKm float64
	// CursorKey is the HMAC-SHA256 key that signs cursors. nil means a
	// built-in key, enough to reject edited or corrupted cursors; cursors
	// are positions, not secrets, so every instance behind a load balancer
	// must only agree on the key.
	CursorKey []byte
}

// Index is an in-memory geo index over clinics. Build replaces its content
// with an immutable snapshot swapped in atomically, so Near never locks and
// never sees a half-built index. The zero Index is empty and usable, with
// the default Config. An Index is safe for concurrent use.
type Index struct {
	cfg  Config
	snap atomic.Pointer[snapshot]
}

// New returns an empty Index with the given configuration.
func New(cfg Config) *Index {
	return &Index{cfg: cfg}
}

// Query is one GET /v1/clinics?near=… request.
type Query struct {
	// Lat and Lon are the point to search around, in degrees
	// (−90..90, −180..180).
	Lat, Lon float64
	// RadiusKm bounds the distance, 0 < RadiusKm ≤ MaxRadiusKm; 0 means
	// DefaultRadiusKm.
	RadiusKm float64
	// Limit is the page size, 1..MaxLimit; 0 means DefaultLimit.
	Limit int
	// Cursor is the NextCursor of the previous page, "" for the first page.
	// It must come from a query with the same Lat, Lon and RadiusKm.
	Cursor string
	// Filter, when set, keeps only the clinics for which it returns true:
	// typically "has remaining quota for the caller's wave". It is called
	// only for clinics within the radius, at most a few times per result,
	// from the goroutine that calls Near.
	Filter func(clinicID string) bool
}

// Hit is one clinic in a Page with its distance from the query point.
type Hit struct {
	Clinic     booking.Clinic
	DistanceKm float64
}

// Page is one page of results, nearest first (ties by clinic id).
type Page struct {
	Results []Hit
	// NextCursor resumes after the last result; "" when there is no more.
	NextCursor string
}

// snapshot is one immutable build of the index: the clinics bucketed by
// grid cell in compressed-row form (cell c holds entries[start[c]:start[c+1]]).
type snapshot struct {
	clinics        []booking.Clinic
	entries        []entry
	start          []int32
	minLat, minLon float64 // grid origin, degrees
	maxLat, maxLon float64
	dLat, dLon     float64 // cell size, degrees
	rows, cols     int
}

// entry is a clinic's position prepared for the haversine.
type entry struct {
	phi, cosPhi, lam float64 // latitude and longitude in radians
	idx              int32   // into snapshot.clinics
}

// Len returns the number of clinics in the current snapshot.
func (x *Index) Len() int {
	if s := x.snap.Load(); s != nil {
		return len(s.clinics)
	}
	return 0
}

// Build replaces the index's content with clinics. It copies what it keeps,
// so the caller may reuse the slice. It returns EINVALID, listing every bad
// clinic and keeping the previous content, if a clinic has an empty or
// repeated id or coordinates outside −90..90 / −180..180.
//
// Quota changes need no rebuild: availability is the Query's Filter. Build
// is for clinic changes and takes a few milliseconds for 14,000 clinics.
func (x *Index) Build(clinics []booking.Clinic) error {
	var probs []string
	seen := make(map[string]struct{}, len(clinics))
	for i := range clinics {
		c := &clinics[i]
		switch _, dup := seen[c.ID]; {
		case c.ID == "":
			probs = append(probs, fmt.Sprintf("clinic %d has an empty id", i))
		case dup:
			probs = append(probs, fmt.Sprintf("clinic %q is listed twice", c.ID))
		}
		seen[c.ID] = struct{}{}
		if !(c.Lat >= -90 && c.Lat <= 90 && c.Lon >= -180 && c.Lon <= 180) {
			probs = append(probs, fmt.Sprintf("clinic %q has coordinates outside −90..90, −180..180", c.ID))
		}
	}
	if len(probs) > 0 {
		return booking.Errorf(booking.EINVALID, "clinic index: %s", strings.Join(probs, "; "))
	}
	x.snap.Store(build(clinics, x.cellKm()))
	return nil
}

func (x *Index) cellKm() float64 {
	if x.cfg.CellKm > 0 && !math.IsInf(x.cfg.CellKm, 0) {
		return x.cfg.CellKm
	}
	return DefaultCellKm
}

func build(clinics []booking.Clinic, cellKm float64) *snapshot {
	s := &snapshot{clinics: make([]booking.Clinic, len(clinics))}
	if len(clinics) == 0 {
		return s
	}
	s.minLat, s.maxLat = clinics[0].Lat, clinics[0].Lat
	s.minLon, s.maxLon = clinics[0].Lon, clinics[0].Lon
	for i, c := range clinics {
		c.Products = slices.Clone(c.Products)
		s.clinics[i] = c
		s.minLat, s.maxLat = min(s.minLat, c.Lat), max(s.maxLat, c.Lat)
		s.minLon, s.maxLon = min(s.minLon, c.Lon), max(s.maxLon, c.Lon)
	}
	s.dLat = cellKm / (EarthRadiusKm * degToRad)
	s.dLon = s.dLat / max(math.Cos((s.minLat+s.maxLat)/2*degToRad), 0.01)
	for {
		s.rows = int((s.maxLat-s.minLat)/s.dLat) + 1
		s.cols = int((s.maxLon-s.minLon)/s.dLon) + 1
		if s.rows*s.cols <= maxCells {
			break
		}
		s.dLat, s.dLon = s.dLat*2, s.dLon*2
	}

	cellOf := make([]int32, len(clinics))
	s.start = make([]int32, s.rows*s.cols+1)
	for i, c := range s.clinics {
		cell := s.row(c.Lat)*s.cols + s.col(c.Lon)
		cellOf[i] = int32(cell)
		s.start[cell+1]++
	}
	for i := 1; i < len(s.start); i++ {
		s.start[i] += s.start[i-1]
	}
	next := slices.Clone(s.start[:len(s.start)-1])
	s.entries = make([]entry, len(clinics))
	for i, c := range s.clinics {
		phi := c.Lat * degToRad
		s.entries[next[cellOf[i]]] = entry{phi: phi, cosPhi: math.Cos(phi), lam: c.Lon * degToRad, idx: int32(i)}
		next[cellOf[i]]++
	}
	return s
}

// row and col map a coordinate to its grid row and column, clamped to the
// grid. They are monotone, so a coordinate range maps onto a cell range.
func (s *snapshot) row(lat float64) int {
	return min(max(int((lat-s.minLat)/s.dLat), 0), s.rows-1)
}

func (s *snapshot) col(lon float64) int {
	return min(max(int((lon-s.minLon)/s.dLon), 0), s.cols-1)
}

// Near returns one page of the clinics within q.RadiusKm of (q.Lat, q.Lon)
// that pass q.Filter, ordered by (distance, clinic id), starting strictly
// after q.Cursor. Because a cursor is a position in that order and not an
// offset, paging neither repeats nor skips a clinic that stays eligible when
// other clinics gain or lose stock, or when the index is rebuilt, between
// pages. It returns EINVALID for coordinates, radius or limit out of range
// and for a cursor that is malformed, edited, or from another query.
//
// Cost: the cells of the query's bounding box plus the clinics in them.
func (x *Index) Near(q Query) (Page, error) {
	q, err := normalize(q)
	if err != nil {
		return Page{}, err
	}
	var cur *cursor
	if q.Cursor != "" {
		c, err := decodeCursor(x.cfg.CursorKey, q)
		if err != nil {
			return Page{}, err
		}
		cur = &c
	}
	s := x.snap.Load()
	if s == nil || len(s.clinics) == 0 {
		return Page{}, nil
	}
	top := s.search(q, cur)
	var p Page
	if len(top) > q.Limit {
		top = top[:q.Limit]
		last := top[len(top)-1]
		p.NextCursor = encodeCursor(x.cfg.CursorKey, cursor{lat: q.Lat, lon: q.Lon, radius: q.RadiusKm, dist: last.d, id: s.clinics[last.idx].ID})
	}
	p.Results = make([]Hit, len(top))
	for i, c := range top {
		p.Results[i] = Hit{Clinic: s.clinics[c.idx], DistanceKm: c.d}
	}
	return p, nil
}

// normalize applies defaults and validates q.
func normalize(q Query) (Query, error) {
	if q.RadiusKm == 0 {
		q.RadiusKm = DefaultRadiusKm
	}
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	switch {
	case !(q.Lat >= -90 && q.Lat <= 90):
		return q, booking.Errorf(booking.EINVALID, "latitude must be between -90 and 90")
	case !(q.Lon >= -180 && q.Lon <= 180):
		return q, booking.Errorf(booking.EINVALID, "longitude must be between -180 and 180")
	case !(q.RadiusKm > 0 && q.RadiusKm <= MaxRadiusKm):
		return q, booking.Errorf(booking.EINVALID, "radius_km must be greater than 0 and at most %d", MaxRadiusKm)
	case q.Limit < 1 || q.Limit > MaxLimit:
		return q, booking.Errorf(booking.EINVALID, "limit must be between 1 and %d", MaxLimit)
	}
	return q, nil
}

// cand is a candidate result: a distance and an index into clinics.
type cand struct {
	d   float64
	idx int32
}

// search returns up to q.Limit+1 results in order, the extra one telling
// Near that another page exists. It keeps the best Limit+1 seen so far in a
// max-heap, and calls the filter only for clinics that would enter it.
// Cells are visited nearest first, so a query in a dense city stops after
// a few rings instead of reading its whole 100 km box.
func (s *snapshot) search(q Query, cur *cursor) []cand {
	k := q.Limit + 1
	heap := make([]cand, 0, k)
	less := func(a, b cand) bool { // a before b in result order
		if a.d != b.d {
			return a.d < b.d
		}
		return s.clinics[a.idx].ID < s.clinics[b.idx].ID
	}

	r0, r1, c0, c1, ok := s.cells(q)
	if !ok {
		return nil
	}
	phi0 := q.Lat * degToRad
	cos0, lam0 := math.Cos(phi0), q.Lon*degToRad
	// A cheap pre-filter on the haversine skips the asin for clinics
	// clearly outside; the decision itself is on the distance in km, the
	// same arithmetic as DistanceKm.
	hmax := kmToH(q.RadiusKm)*(1+1e-9) + 1e-15
	scan := func(es []entry) {
		for _, e := range es {
			h := haversine(phi0, cos0, lam0, e.phi, e.cosPhi, e.lam)
			if h > hmax {
				continue
			}
			c := cand{d: hToKm(h), idx: e.idx}
			if c.d > q.RadiusKm {
				continue
			}
			if cur != nil && (c.d < cur.dist || c.d == cur.dist && s.clinics[c.idx].ID <= cur.id) {
				continue
			}
			if len(heap) == k && !less(c, heap[0]) {
				continue
			}
			if q.Filter != nil && !q.Filter(s.clinics[c.idx].ID) {
				continue
			}
			if len(heap) < k {
				heap = append(heap, c)
				up(heap, len(heap)-1, less)
			} else {
				heap[0] = c
				down(heap, 0, less)
			}
		}
	}
	// segment scans the cells of row r from column a to b, clipped to the
	// bounding box; they are contiguous in entries.
	segment := func(r, a, b int) {
		a, b = max(a, c0), min(b, c1)
		if r < r0 || r > r1 || a > b {
			return
		}
		base := r * s.cols
		scan(s.entries[s.start[base+a]:s.start[base+b+1]])
	}
	// Visit the box in square rings of cells around the query's cell,
	// nearest first, and stop once the heap is full and no clinic in the
	// next ring can beat its worst.
	rq, cq := s.row(q.Lat), s.col(q.Lon)
	early := s.maxLon-180 <= q.Lon && q.Lon <= s.minLon+180 // no shorter way round the antimeridian
	for ring := 0; ; ring++ {
		if early && len(heap) == k && s.ringBound(ring, cos0) > heap[0].d {
			break
		}
		if ring == 0 {
			segment(rq, cq, cq)
		} else {
			segment(rq-ring, cq-ring, cq+ring)
			segment(rq+ring, cq-ring, cq+ring)
			for r := max(rq-ring+1, r0); r <= min(rq+ring-1, r1); r++ {
				segment(r, cq-ring, cq-ring)
				segment(r, cq+ring, cq+ring)
			}
		}
		if rq-ring <= r0 && rq+ring >= r1 && cq-ring <= c0 && cq+ring >= c1 {
			break
		}
	}
	slices.SortFunc(heap, func(a, b cand) int {
		if a.d != b.d {
			return cmp.Compare(a.d, b.d)
		}
		return strings.Compare(s.clinics[a.idx].ID, s.clinics[b.idx].ID)
	})
	return heap
}

// cells returns the grid rows r0..r1 and columns c0..c1 covering every point
// within q.RadiusKm of the query point, or ok false when none of the grid
// does. The bounding box of a spherical cap is exact (latitude ± the angular
// radius; longitude ± asin(sin r / cos φ)) plus a centimetre of slack for
// rounding; a cap over a pole or across the antimeridian takes every
// longitude, which is correct and only slower for those rare queries.
func (s *snapshot) cells(q Query) (r0, r1, c0, c1 int, ok bool) {
	const slack = 1e-7 // degrees, about a centimetre
	ang := q.RadiusKm / EarthRadiusKm
	latLo, latHi := q.Lat-ang/degToRad-slack, q.Lat+ang/degToRad+slack
	lonLo, lonHi := -180.0, 180.0
	if latLo > -90 && latHi < 90 {
		if x := math.Sin(ang) / math.Cos(q.Lat*degToRad); x < 1 {
			dl := math.Asin(x)/degToRad + slack
			if q.Lon-dl >= -180 && q.Lon+dl <= 180 {
				lonLo, lonHi = q.Lon-dl, q.Lon+dl
			}
		}
	}
	if latHi < s.minLat || latLo > s.maxLat || lonHi < s.minLon || lonLo > s.maxLon {
		return 0, 0, 0, 0, false
	}
	return s.row(latLo), s.row(latHi), s.col(lonLo), s.col(lonHi), true
}

// ringBound is a lower bound, in km, on the distance from a query point at
// latitude φ0 (cos0 = cos φ0) to any clinic in a cell ring cells away (in
// rows or columns) from the query's cell: ring−1 whole cells lie between.
// Across rows that is the latitude difference; across columns it is the
// distance to the meridian at that longitude difference, asin(cos φ0 ·
// sin Δλ), which needs the short way round (see the caller's early flag).
func (s *snapshot) ringBound(ring int, cos0 float64) float64 {
	if ring <= 1 {
		return 0
	}
	n := float64(ring - 1)
	byLat := n * s.dLat * degToRad * EarthRadiusKm
	byLon := EarthRadiusKm * math.Asin(min(cos0*math.Sin(min(n*s.dLon, 90)*degToRad), 1))
	return min(byLat, byLon)*(1-1e-9) - 1e-9
}

// up and down maintain h as a max-heap under less (the root is the last in
// result order), so the root is the candidate to drop.
func up(h []cand, i int, less func(a, b cand) bool) {
	for i > 0 {
		p := (i - 1) / 2
		if !less(h[p], h[i]) {
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func down(h []cand, i int, less func(a, b cand) bool) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && less(h[l], h[r]) {
			m = r
		}
		if !less(h[i], h[m]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
