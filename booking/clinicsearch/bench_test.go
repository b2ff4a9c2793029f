package clinicsearch_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/clinicsearch"
	"github.com/yeyak/yeyak/mocks/population"
)

// benchWorld is 14,000 clinics of the synthetic population (spread over
// Korea's regions by population) with 30 vaccination dates of remaining
// quota each, 60% of (clinic, date) sold out, and 1,000 query points drawn
// where clinics are (people live where clinics are).
type benchWorld struct {
	clinics []booking.Clinic
	filter  func(string) bool
	points  [][2]float64
}

func newBenchWorld(b *testing.B) *benchWorld {
	b.Helper()
	w := &benchWorld{clinics: population.Clinics(population.Config{Seed: 1, Clinics: 14_000})}
	r := rand.New(rand.NewPCG(1, 2))
	remaining := make(map[string]*[30]int32, len(w.clinics))
	for _, c := range w.clinics {
		var days [30]int32
		for d := range days {
			if r.Float64() < 0.4 {
				days[d] = int32(r.IntN(20) + 1)
			}
		}
		remaining[c.ID] = &days
	}
	// The filter a handler would pass: any date with a dose left.
	w.filter = func(id string) bool {
		days := remaining[id]
		if days == nil {
			return false
		}
		for _, n := range days {
			if n > 0 {
				return true
			}
		}
		return false
	}
	for range 1000 {
		c := w.clinics[r.IntN(len(w.clinics))]
		w.points = append(w.points, [2]float64{c.Lat + (r.Float64()-0.5)*0.04, c.Lon + (r.Float64()-0.5)*0.04})
	}
	return w
}

// latencies times each call of f over b.N queries and reports p50 and p99.
func latencies(b *testing.B, w *benchWorld, f func(q clinicsearch.Query) int) {
	b.Helper()
	var lat []time.Duration
	found := 0
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		p := w.points[i%len(w.points)]
		q := clinicsearch.Query{Lat: p[0], Lon: p[1], RadiusKm: radiusOf(b), Limit: 20, Filter: w.filter}
		t0 := time.Now()
		found += f(q)
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	us := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(us(0.50), "p50-µs")
	b.ReportMetric(us(0.99), "p99-µs")
	b.ReportMetric(float64(found)/float64(len(lat)), "results/op")
}

var benchRadii = []float64{10, 100}

func radiusOf(b *testing.B) float64 {
	for _, r := range benchRadii {
		if strings.HasSuffix(b.Name(), fmt.Sprintf("radius=%gkm", r)) {
			return r
		}
	}
	b.Fatalf("no radius in %s", b.Name())
	return 0
}

// BenchmarkNear14k is GET /v1/clinics?near=… on the index: 14,000 clinics,
// limit 20, the default 10 km radius and the 100 km maximum.
func BenchmarkNear14k(b *testing.B) {
	w := newBenchWorld(b)
	idx := clinicsearch.New(clinicsearch.Config{})
	if err := idx.Build(w.clinics); err != nil {
		b.Fatal(err)
	}
	for _, r := range benchRadii {
		b.Run(fmt.Sprintf("radius=%gkm", r), func(b *testing.B) {
			latencies(b, w, func(q clinicsearch.Query) int {
				p, err := idx.Near(q)
				if err != nil {
					b.Fatal(err)
				}
				return len(p.Results)
			})
		})
	}
}

// BenchmarkFullScan14k answers the same queries as BenchmarkNear14k by a
// scan of every clinic and a sort: what the index replaces.
func BenchmarkFullScan14k(b *testing.B) {
	w := newBenchWorld(b)
	for _, r := range benchRadii {
		b.Run(fmt.Sprintf("radius=%gkm", r), func(b *testing.B) {
			latencies(b, w, func(q clinicsearch.Query) int {
				var hits []clinicsearch.Hit
				for _, c := range w.clinics {
					d := clinicsearch.DistanceKm(q.Lat, q.Lon, c.Lat, c.Lon)
					if d <= q.RadiusKm && q.Filter(c.ID) {
						hits = append(hits, clinicsearch.Hit{Clinic: c, DistanceKm: d})
					}
				}
				slices.SortFunc(hits, func(a, b clinicsearch.Hit) int {
					return cmp.Or(cmp.Compare(a.DistanceKm, b.DistanceKm), strings.Compare(a.Clinic.ID, b.Clinic.ID))
				})
				return len(hits[:min(len(hits), q.Limit)])
			})
		})
	}
}

// BenchmarkBuild14k is the cost of a rebuild after a clinic change.
func BenchmarkBuild14k(b *testing.B) {
	clinics := population.Clinics(population.Config{Seed: 1, Clinics: 14_000})
	idx := clinicsearch.New(clinicsearch.Config{})
	for b.Loop() {
		if err := idx.Build(clinics); err != nil {
			b.Fatal(err)
		}
	}
}
