package clinicsearch_test

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/clinicsearch"
)

// oracle answers a query by brute force: every clinic, its distance, the
// filter, a full sort by (distance, id), then the part after the cursor.
func oracle(clinics []booking.Clinic, q clinicsearch.Query, after *clinicsearch.Hit) []clinicsearch.Hit {
	r := q.RadiusKm
	if r == 0 {
		r = clinicsearch.DefaultRadiusKm
	}
	var out []clinicsearch.Hit
	for _, c := range clinics {
		d := clinicsearch.DistanceKm(q.Lat, q.Lon, c.Lat, c.Lon)
		if d > r || (q.Filter != nil && !q.Filter(c.ID)) {
			continue
		}
		if after != nil && (d < after.DistanceKm || d == after.DistanceKm && c.ID <= after.Clinic.ID) {
			continue
		}
		out = append(out, clinicsearch.Hit{Clinic: c, DistanceKm: d})
	}
	slices.SortFunc(out, func(a, b clinicsearch.Hit) int {
		return cmp.Or(cmp.Compare(a.DistanceKm, b.DistanceKm), strings.Compare(a.Clinic.ID, b.Clinic.ID))
	})
	return out
}

// clinicsGen draws clinics mostly in a small box (so radii catch many),
// some on shared points (distance ties, broken by id) and some anywhere on
// Earth (poles, antimeridian).
func clinicsGen() *rapid.Generator[[]booking.Clinic] {
	return rapid.Custom(func(t *rapid.T) []booking.Clinic {
		n := rapid.IntRange(0, 300).Draw(t, "n")
		out := make([]booking.Clinic, 0, n)
		for i := range n {
			var lat, lon float64
			switch rapid.IntRange(0, 9).Draw(t, "kind") {
			case 0: // anywhere
				lat = rapid.Float64Range(-90, 90).Draw(t, "lat")
				lon = rapid.Float64Range(-180, 180).Draw(t, "lon")
			case 1, 2: // on a previous clinic's point
				if len(out) > 0 {
					p := out[rapid.IntRange(0, len(out)-1).Draw(t, "same")]
					lat, lon = p.Lat, p.Lon
					break
				}
				fallthrough
			default: // around Seoul, within ~60 km
				lat = 37.5 + rapid.Float64Range(-0.5, 0.5).Draw(t, "dlat")
				lon = 127 + rapid.Float64Range(-0.7, 0.7).Draw(t, "dlon")
			}
			out = append(out, booking.Clinic{ID: fmt.Sprintf("C%04d", (i*7919)%10007), Lat: lat, Lon: lon, Products: []string{"pfizer"}})
		}
		return out
	})
}

func queryGen(clinics []booking.Clinic) *rapid.Generator[clinicsearch.Query] {
	return rapid.Custom(func(t *rapid.T) clinicsearch.Query {
		q := clinicsearch.Query{
			RadiusKm: rapid.SampledFrom([]float64{0, 0.5, 3, 10, 37.5, 100}).Draw(t, "radius"),
			Limit:    rapid.IntRange(0, 30).Draw(t, "limit"),
		}
		if len(clinics) > 0 && rapid.Bool().Draw(t, "atClinic") {
			c := clinics[rapid.IntRange(0, len(clinics)-1).Draw(t, "at")]
			q.Lat, q.Lon = c.Lat, c.Lon
		} else if rapid.Bool().Draw(t, "anywhere") {
			q.Lat = rapid.Float64Range(-90, 90).Draw(t, "qlat")
			q.Lon = rapid.Float64Range(-180, 180).Draw(t, "qlon")
		} else {
			q.Lat = 37.5 + rapid.Float64Range(-0.6, 0.6).Draw(t, "qdlat")
			q.Lon = 127 + rapid.Float64Range(-0.8, 0.8).Draw(t, "qdlon")
		}
		return q
	})
}

// pageAll follows NextCursor to the end and returns every hit.
func pageAll(t interface {
	Helper()
	Fatalf(string, ...any)
}, idx *clinicsearch.Index, q clinicsearch.Query) []clinicsearch.Hit {
	t.Helper()
	var all []clinicsearch.Hit
	for pages := 0; ; pages++ {
		if pages > 10_000 {
			t.Fatalf("paging does not end")
		}
		p, err := idx.Near(q)
		if err != nil {
			t.Fatalf("Near: %v", err)
		}
		limit := cmp.Or(q.Limit, clinicsearch.DefaultLimit)
		if len(p.Results) > limit || (p.NextCursor != "" && len(p.Results) != limit) {
			t.Fatalf("page of %d results (limit %d), next cursor %q", len(p.Results), limit, p.NextCursor)
		}
		all = append(all, p.Results...)
		if p.NextCursor == "" {
			return all
		}
		q.Cursor = p.NextCursor
	}
}

func sameHits(a, b []clinicsearch.Hit) bool {
	return slices.EqualFunc(a, b, func(x, y clinicsearch.Hit) bool {
		return x.Clinic.ID == y.Clinic.ID && x.DistanceKm == y.DistanceKm
	})
}

func ids(hs []clinicsearch.Hit) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Clinic.ID
	}
	return out
}

// TestNearMatchesOracle: on random clinics and queries, the first page is
// the oracle's first Limit hits, and all pages together are exactly the
// oracle's answer (same set, same order), for several grid cell sizes.
func TestNearMatchesOracle(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		clinics := clinicsGen().Draw(t, "clinics")
		idx := clinicsearch.New(clinicsearch.Config{CellKm: rapid.SampledFrom([]float64{0, 0.3, 1, 4, 25}).Draw(t, "cellKm")})
		if err := idx.Build(clinics); err != nil {
			t.Fatalf("Build: %v", err)
		}
		q := queryGen(clinics).Draw(t, "query")
		if rapid.Bool().Draw(t, "filtered") {
			in := map[string]bool{}
			for _, c := range clinics {
				in[c.ID] = rapid.IntRange(0, 2).Draw(t, "stock") > 0
			}
			q.Filter = func(id string) bool { return in[id] }
		}
		want := oracle(clinics, q, nil)

		p, err := idx.Near(q)
		if err != nil {
			t.Fatalf("Near: %v", err)
		}
		limit := cmp.Or(q.Limit, clinicsearch.DefaultLimit)
		if first := want[:min(limit, len(want))]; !sameHits(p.Results, first) {
			t.Fatalf("first page\n got %v\nwant %v", ids(p.Results), ids(first))
		}
		if (p.NextCursor != "") != (len(want) > limit) {
			t.Fatalf("NextCursor %q with %d results of limit %d", p.NextCursor, len(want), limit)
		}
		if got := pageAll(t, idx, q); !sameHits(got, want) {
			t.Fatalf("all pages\n got %v\nwant %v", ids(got), ids(want))
		}
	})
}

// TestNearOrder: a table of clinics at known distances comes back nearest
// first, equal distances by id, the one outside the radius left out.
func TestNearOrder(t *testing.T) {
	const lat, lon = 37.5665, 126.9780
	north := func(km float64) float64 { return lat + km/(clinicsearch.EarthRadiusKm*math.Pi/180) }
	clinics := []booking.Clinic{
		{ID: "far", Lat: north(9.9), Lon: lon},
		{ID: "out", Lat: north(10.1), Lon: lon},
		{ID: "b-tie", Lat: north(2), Lon: lon},
		{ID: "a-tie", Lat: north(2), Lon: lon},
		{ID: "here", Lat: lat, Lon: lon},
		{ID: "south", Lat: lat - 0.01, Lon: lon},
	}
	idx := clinicsearch.New(clinicsearch.Config{})
	if err := idx.Build(clinics); err != nil {
		t.Fatal(err)
	}
	p, err := idx.Near(clinicsearch.Query{Lat: lat, Lon: lon})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"here", "south", "a-tie", "b-tie", "far"}
	if got := ids(p.Results); !slices.Equal(got, want) || p.NextCursor != "" {
		t.Fatalf("got %v next %q, want %v", got, p.NextCursor, want)
	}
	if d := p.Results[4].DistanceKm; math.Abs(d-9.9) > 1e-6 {
		t.Fatalf("far is %.9f km, want 9.9", d)
	}
	if d := p.Results[0].DistanceKm; d != 0 {
		t.Fatalf("here is %v km", d)
	}
}

// TestPagingStableUnderStockChanges: while a caller pages, clinics lose
// and gain stock. No clinic is ever shown twice, pages stay in order
// across page boundaries, and every clinic that had stock throughout is
// shown.
func TestPagingStableUnderStockChanges(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		clinics := clinicsGen().Draw(t, "clinics")
		idx := clinicsearch.New(clinicsearch.Config{})
		if err := idx.Build(clinics); err != nil {
			t.Fatal(err)
		}
		stock := map[string]bool{}
		for _, c := range clinics {
			stock[c.ID] = true
		}
		q := queryGen(clinics).Draw(t, "query")
		q.Limit = rapid.IntRange(1, 7).Draw(t, "limit")
		q.Filter = func(id string) bool { return stock[id] }
		everIn := map[string]bool{}
		var seen []clinicsearch.Hit
		for pages := 0; ; pages++ {
			p, err := idx.Near(q)
			if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, p.Results...)
			if p.NextCursor == "" {
				break
			}
			q.Cursor = p.NextCursor
			// Between pages, some clinics sell out and some get stock back.
			for range rapid.IntRange(0, 5).Draw(t, "changes") {
				if len(clinics) == 0 {
					break
				}
				c := clinics[rapid.IntRange(0, len(clinics)-1).Draw(t, "changed")]
				stock[c.ID] = !stock[c.ID]
				everIn[c.ID] = true
			}
		}
		dup := map[string]bool{}
		for i, h := range seen {
			if dup[h.Clinic.ID] {
				t.Fatalf("clinic %s shown twice", h.Clinic.ID)
			}
			dup[h.Clinic.ID] = true
			if i > 0 && cmp.Or(cmp.Compare(h.DistanceKm, seen[i-1].DistanceKm), strings.Compare(h.Clinic.ID, seen[i-1].Clinic.ID)) <= 0 {
				t.Fatalf("results out of order at %d: %v", i, ids(seen))
			}
		}
		q.Filter = nil
		for _, h := range oracle(clinics, q, nil) {
			if !everIn[h.Clinic.ID] && !dup[h.Clinic.ID] {
				t.Fatalf("clinic %s always had stock but was skipped", h.Clinic.ID)
			}
		}
	})
}

// TestCursorSurvivesRebuild: a cursor taken before Build resumes after it
// on the new snapshot at the same position.
func TestCursorSurvivesRebuild(t *testing.T) {
	var clinics []booking.Clinic
	for i := range 50 {
		clinics = append(clinics, booking.Clinic{ID: fmt.Sprintf("C%02d", i), Lat: 37.5 + float64(i)*0.001, Lon: 127})
	}
	idx := clinicsearch.New(clinicsearch.Config{})
	if err := idx.Build(clinics); err != nil {
		t.Fatal(err)
	}
	q := clinicsearch.Query{Lat: 37.5, Lon: 127, Limit: 10}
	p1, err := idx.Near(q)
	if err != nil {
		t.Fatal(err)
	}
	// Rebuild without the first 5 and with a new clinic nearer than all.
	next := append([]booking.Clinic{{ID: "new", Lat: 37.5, Lon: 127}}, clinics[5:]...)
	if err := idx.Build(next); err != nil {
		t.Fatal(err)
	}
	q.Cursor = p1.NextCursor
	p2, err := idx.Near(q)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(p2.Results); got[0] != "C10" || len(got) != 10 {
		t.Fatalf("after rebuild got %v, want C10…C19", got)
	}
}

// TestQueryValidation: inputs out of range are EINVALID; zero values take
// the documented defaults.
func TestQueryValidation(t *testing.T) {
	idx := clinicsearch.New(clinicsearch.Config{})
	if err := idx.Build([]booking.Clinic{{ID: "a", Lat: 37.5, Lon: 127}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		q    clinicsearch.Query
		ok   bool
	}{
		{"defaults", clinicsearch.Query{Lat: 37.5, Lon: 127}, true},
		{"bounds", clinicsearch.Query{Lat: -90, Lon: 180, RadiusKm: 100, Limit: 100}, true},
		{"other bounds", clinicsearch.Query{Lat: 90, Lon: -180, RadiusKm: 0.001, Limit: 1}, true},
		{"lat above 90", clinicsearch.Query{Lat: 90.0001, Lon: 127}, false},
		{"lat below -90", clinicsearch.Query{Lat: -91, Lon: 127}, false},
		{"lat NaN", clinicsearch.Query{Lat: math.NaN(), Lon: 127}, false},
		{"lon above 180", clinicsearch.Query{Lat: 37, Lon: 180.5}, false},
		{"lon NaN", clinicsearch.Query{Lat: 37, Lon: math.NaN()}, false},
		{"lon -Inf", clinicsearch.Query{Lat: 37, Lon: math.Inf(-1)}, false},
		{"negative radius", clinicsearch.Query{Lat: 37, Lon: 127, RadiusKm: -1}, false},
		{"radius over 100", clinicsearch.Query{Lat: 37, Lon: 127, RadiusKm: 100.01}, false},
		{"radius NaN", clinicsearch.Query{Lat: 37, Lon: 127, RadiusKm: math.NaN()}, false},
		{"radius Inf", clinicsearch.Query{Lat: 37, Lon: 127, RadiusKm: math.Inf(1)}, false},
		{"negative limit", clinicsearch.Query{Lat: 37, Lon: 127, Limit: -1}, false},
		{"limit over 100", clinicsearch.Query{Lat: 37, Lon: 127, Limit: 101}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := idx.Near(tc.q)
			if tc.ok && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if !tc.ok && booking.ErrorCode(err) != booking.EINVALID {
				t.Fatalf("got %v, want %s", err, booking.EINVALID)
			}
		})
	}
}

// TestBadCursor: anything but an untouched cursor of the same query is
// refused with EINVALID.
func TestBadCursor(t *testing.T) {
	var clinics []booking.Clinic
	for i := range 30 {
		clinics = append(clinics, booking.Clinic{ID: fmt.Sprintf("C%02d", i), Lat: 37.5 + float64(i)*0.001, Lon: 127})
	}
	idx := clinicsearch.New(clinicsearch.Config{})
	if err := idx.Build(clinics); err != nil {
		t.Fatal(err)
	}
	q := clinicsearch.Query{Lat: 37.5, Lon: 127, Limit: 5}
	p, err := idx.Near(q)
	if err != nil || p.NextCursor == "" {
		t.Fatalf("first page: %v, cursor %q", err, p.NextCursor)
	}
	good := p.NextCursor
	raw, err := base64.RawURLEncoding.DecodeString(good)
	if err != nil {
		t.Fatalf("cursor is not base64url: %v", err)
	}
	flip := func(i int) string {
		b := slices.Clone(raw)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	withQ := func(c string, f func(*clinicsearch.Query)) clinicsearch.Query {
		q2 := q
		q2.Cursor = c
		if f != nil {
			f(&q2)
		}
		return q2
	}
	for _, tc := range []struct {
		name string
		q    clinicsearch.Query
	}{
		{"not base64", withQ("!!!", nil)},
		{"padded base64", withQ(good+"=", nil)},
		{"truncated", withQ(good[:len(good)-2], nil)},
		{"too short", withQ("AQ", nil)},
		{"flipped version", withQ(flip(0), nil)},
		{"flipped distance", withQ(flip(30), nil)},
		{"flipped id", withQ(flip(34), nil)},
		{"flipped tag", withQ(flip(len(raw)-1), nil)},
		{"huge", withQ(strings.Repeat("A", 10_000), nil)},
		{"other point", withQ(good, func(q *clinicsearch.Query) { q.Lat += 0.001 })},
		{"other radius", withQ(good, func(q *clinicsearch.Query) { q.RadiusKm = 5 })},
		{"other key", withQ(good, nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := idx
			if tc.name == "other key" {
				x = clinicsearch.New(clinicsearch.Config{CursorKey: []byte("another instance's key")})
				if err := x.Build(clinics); err != nil {
					t.Fatal(err)
				}
			}
			_, err := x.Near(tc.q)
			if booking.ErrorCode(err) != booking.EINVALID {
				t.Fatalf("got %v, want %s", err, booking.EINVALID)
			}
		})
	}
	// The untouched cursor works, and with a different limit too.
	if _, err := idx.Near(withQ(good, func(q *clinicsearch.Query) { q.Limit = 50 })); err != nil {
		t.Fatalf("good cursor refused: %v", err)
	}
}

// TestBuildValidation: bad clinics are refused, all listed, and the
// previous content stays.
func TestBuildValidation(t *testing.T) {
	idx := clinicsearch.New(clinicsearch.Config{})
	if err := idx.Build([]booking.Clinic{{ID: "keep", Lat: 37.5, Lon: 127}}); err != nil {
		t.Fatal(err)
	}
	err := idx.Build([]booking.Clinic{
		{ID: "", Lat: 37, Lon: 127},
		{ID: "x", Lat: 37, Lon: 127},
		{ID: "x", Lat: 37, Lon: 127},
		{ID: "north", Lat: 91, Lon: 127},
		{ID: "nan", Lat: math.NaN(), Lon: 127},
		{ID: "east", Lat: 37, Lon: 181},
	})
	if booking.ErrorCode(err) != booking.EINVALID {
		t.Fatalf("got %v, want EINVALID", err)
	}
	for _, want := range []string{"clinic 0 has an empty id", `"x" is listed twice`, `"north"`, `"nan"`, `"east"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if idx.Len() != 1 {
		t.Fatalf("Len %d after a refused Build, want the previous 1", idx.Len())
	}
}

// TestEmptyIndex: the zero Index and an Index built with no clinics answer
// valid queries with an empty page and still validate input.
func TestEmptyIndex(t *testing.T) {
	var zero clinicsearch.Index
	empty := clinicsearch.New(clinicsearch.Config{})
	if err := empty.Build(nil); err != nil {
		t.Fatal(err)
	}
	for _, idx := range []*clinicsearch.Index{&zero, empty} {
		p, err := idx.Near(clinicsearch.Query{Lat: 37, Lon: 127})
		if err != nil || len(p.Results) != 0 || p.NextCursor != "" {
			t.Fatalf("got %+v, %v", p, err)
		}
		if _, err := idx.Near(clinicsearch.Query{Lat: 99}); booking.ErrorCode(err) != booking.EINVALID {
			t.Fatalf("got %v, want EINVALID", err)
		}
	}
}

// TestBuildCopies: the index keeps its own copy of the clinics.
func TestBuildCopies(t *testing.T) {
	clinics := []booking.Clinic{{ID: "a", Name: "A", Lat: 37, Lon: 127, Products: []string{"pfizer"}}}
	idx := clinicsearch.New(clinicsearch.Config{})
	if err := idx.Build(clinics); err != nil {
		t.Fatal(err)
	}
	clinics[0].Name, clinics[0].Products[0], clinics[0].Lat = "changed", "changed", 0
	p, err := idx.Near(clinicsearch.Query{Lat: 37, Lon: 127})
	if err != nil || len(p.Results) != 1 {
		t.Fatalf("got %+v, %v", p, err)
	}
	if c := p.Results[0].Clinic; c.Name != "A" || c.Products[0] != "pfizer" {
		t.Fatalf("index shares the caller's memory: %+v", c)
	}
}

// TestConcurrentBuildAndNear: readers never lock and never see a partial
// snapshot while Build swaps new ones in (run with -race).
func TestConcurrentBuildAndNear(t *testing.T) {
	a := make([]booking.Clinic, 200)
	b := make([]booking.Clinic, 300)
	for i := range a {
		a[i] = booking.Clinic{ID: fmt.Sprintf("A%03d", i), Lat: 37.5 + float64(i%20)*0.001, Lon: 127 + float64(i/20)*0.001}
	}
	for i := range b {
		b[i] = booking.Clinic{ID: fmt.Sprintf("B%03d", i), Lat: 37.5 + float64(i%20)*0.001, Lon: 127 + float64(i/20)*0.001}
	}
	idx := clinicsearch.New(clinicsearch.Config{})
	if err := idx.Build(a); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				p, err := idx.Near(clinicsearch.Query{Lat: 37.5, Lon: 127, Limit: 100})
				if err != nil {
					t.Error(err)
					return
				}
				for _, h := range p.Results[1:] {
					if h.Clinic.ID[0] != p.Results[0].Clinic.ID[0] {
						t.Error("a page mixes two snapshots")
						return
					}
				}
			}
		})
	}
	for i := range 100 {
		if err := idx.Build([][]booking.Clinic{a, b}[i%2]); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
}

// TestFilterOnlyWithinRadius: the filter (a quota lookup for the caller) is
// asked only about clinics within the radius, and with a full first page
// in a dense area far fewer than all of them.
func TestFilterOnlyWithinRadius(t *testing.T) {
	var clinics []booking.Clinic
	for i := range 2000 {
		clinics = append(clinics, booking.Clinic{ID: fmt.Sprintf("C%04d", i), Lat: 37.3 + float64(i%50)*0.01, Lon: 126.8 + float64(i/50)*0.01})
	}
	idx := clinicsearch.New(clinicsearch.Config{})
	if err := idx.Build(clinics); err != nil {
		t.Fatal(err)
	}
	byID := map[string]booking.Clinic{}
	for _, c := range clinics {
		byID[c.ID] = c
	}
	q := clinicsearch.Query{Lat: 37.5, Lon: 127, RadiusKm: 100, Limit: 10}
	asked := 0
	q.Filter = func(id string) bool {
		asked++
		c := byID[id]
		if d := clinicsearch.DistanceKm(q.Lat, q.Lon, c.Lat, c.Lon); d > q.RadiusKm {
			t.Errorf("filter asked about %s at %.1f km", id, d)
		}
		return true
	}
	p, err := idx.Near(q)
	if err != nil || len(p.Results) != 10 {
		t.Fatalf("got %d results, %v", len(p.Results), err)
	}
	if asked > 200 {
		t.Fatalf("filter asked %d times for a page of 10 out of 2,000 clinics", asked)
	}
}
