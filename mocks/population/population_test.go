package population_test

import (
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/mocks/population"
)

func TestDeterministic(t *testing.T) {
	cfg := population.Config{Seed: 7, People: 2000, Clinics: 50}
	a := collect(cfg)
	b := collect(cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same config gave different people")
	}
	if !reflect.DeepEqual(population.Clinics(cfg), population.Clinics(cfg)) {
		t.Fatal("same config gave different clinics")
	}
	other := collect(population.Config{Seed: 8, People: 2000})
	same := 0
	for i := range a {
		if a[i].BirthDate == other[i].BirthDate {
			same++
		}
		if a[i].ID != other[i].ID {
			t.Fatalf("ids depend on the seed: %s vs %s", a[i].ID, other[i].ID)
		}
	}
	if same > len(a)/10 {
		t.Fatalf("seed 7 and 8 share %d of %d birth dates: seed ignored?", same, len(a))
	}
}

// TestGolden pins the generator's output: changing the order of draws
// changes every population and every figure measured on one.
func TestGolden(t *testing.T) {
	p := population.PersonAt(population.Config{Seed: 1}, 0)
	got := fmt.Sprintf("%s %s %c %s", p.ID, p.BirthDate, p.Sex, p.Region)
	if want := "P0000000000 1997-08-12 F 46-150"; got != want {
		t.Fatalf("person 0 of seed 1 = %q, want %q (generator output changed)", got, want)
	}
}

func TestPersonAtEqualsNthOfPeople(t *testing.T) {
	cfg := population.Config{Seed: 99, People: 3000}
	i := 0
	for p := range population.People(cfg) {
		if q := population.PersonAt(cfg, i); !reflect.DeepEqual(p, q) {
			t.Fatalf("PersonAt(%d) = %+v, People gave %+v", i, q, p)
		}
		i++
	}
	if i != 3000 {
		t.Fatalf("People yielded %d, want 3000", i)
	}
}

func TestIDRoundTrip(t *testing.T) {
	for _, i := range []int{0, 1, 42, 999_999, 16_000_000} {
		id := population.ID(i)
		if len(id) != 11 || id[0] != 'P' {
			t.Fatalf("ID(%d) = %q", i, id)
		}
		if j, ok := population.IndexOf(id); !ok || j != i {
			t.Fatalf("IndexOf(%q) = %d, %v", id, j, ok)
		}
	}
	for _, bad := range []string{"", "P123", "X0000000001", "P00000000x1", "P+000000001"} {
		if _, ok := population.IndexOf(bad); ok {
			t.Errorf("IndexOf(%q) accepted", bad)
		}
	}
}

func TestSharesAndRanges(t *testing.T) {
	cfg := population.Config{Seed: 3, People: 100_000}
	var vacc, two, cntra, excl, unknown, male int
	regions := map[string]int{}
	from, to := population.DefaultBornFrom, population.DefaultBornTo
	for p := range population.People(cfg) {
		if p.BirthDate.Before(from) || p.BirthDate.After(to) {
			t.Fatalf("%s born %s outside [%s, %s]", p.ID, p.BirthDate, from, to)
		}
		if len(p.Doses) > 0 {
			vacc++
			if !p.Doses[0].Date.Before(population.DefaultDosesBefore) || p.Doses[0].Number != 1 {
				t.Fatalf("bad first dose %+v", p.Doses[0])
			}
		}
		if len(p.Doses) == 2 {
			two++
		}
		if p.Contraindicated {
			cntra++
		}
		if p.Excluded {
			excl++
		}
		if p.Unknown {
			unknown++
		}
		if p.Sex == 'M' {
			male++
		}
		if len(p.Region) != 6 || p.Region[2] != '-' {
			t.Fatalf("region %q not in 11-110 form", p.Region)
		}
		regions[p.Region[:2]]++
	}
	n := float64(cfg.People)
	for _, c := range []struct {
		name      string
		got       int
		want, tol float64
	}{
		{"vaccinated", vacc, 0.05, 0.005},
		{"two doses among vaccinated", two, 0.025, 0.004},
		{"contraindicated", cntra, 0.01, 0.002},
		{"excluded", excl, 0.005, 0.0015},
		{"unknown", unknown, 0.01, 0.002},
		{"male", male, 0.5, 0.01},
	} {
		if got := float64(c.got) / n; math.Abs(got-c.want) > c.tol {
			t.Errorf("%s share = %.4f, want %.4f ± %.4f", c.name, got, c.want, c.tol)
		}
	}
	if len(regions) != 17 {
		t.Errorf("people in %d regions, want 17", len(regions))
	}
	// Gyeonggi (13.5M) must outnumber Sejong (0.37M) by far.
	if regions["41"] < 10*regions["36"] {
		t.Errorf("Gyeonggi %d vs Sejong %d: weights ignored", regions["41"], regions["36"])
	}
}

func TestNegativeShareMeansNobody(t *testing.T) {
	cfg := population.Config{People: 5000, VaccinatedShare: -1, ContraindicatedShare: -1, ExcludedShare: -1, UnknownShare: -1}
	for p := range population.People(cfg) {
		if !p.Eligible() {
			t.Fatalf("%+v not eligible with every share off", p)
		}
	}
	all := population.Config{People: 500, UnknownShare: 1}
	for p := range population.People(all) {
		if !p.Unknown {
			t.Fatal("UnknownShare 1 left someone known")
		}
	}
}

func TestLeapDayBirths(t *testing.T) {
	cfg := population.Config{Seed: 5, People: 200_000}
	leap := 0
	for p := range population.People(cfg) {
		if p.BirthDate.Month == 2 && p.BirthDate.Day == 29 {
			leap++
			if p.BirthDate.Year%4 != 0 {
				t.Fatalf("29 February %d is not a date", p.BirthDate.Year)
			}
		}
	}
	// 8 leap days among 11,688 days: about 137 expected.
	if leap < 60 {
		t.Fatalf("%d leap-day births in 200,000, want about 137", leap)
	}
}

func TestBirthRangeOverride(t *testing.T) {
	from, to := booking.MustDate("2000-02-28"), booking.MustDate("2000-03-01")
	seen := map[booking.Date]bool{}
	for p := range population.People(population.Config{People: 300, BornFrom: from, BornTo: to}) {
		seen[p.BirthDate] = true
	}
	if len(seen) != 3 || !seen[booking.MustDate("2000-02-29")] {
		t.Fatalf("births over 3 days incl. leap day: got %v", seen)
	}
}

func TestPeopleWithDigit(t *testing.T) {
	cfg := population.Config{Seed: 11, People: 5000}
	for d := range 10 {
		ps := population.PeopleWithDigit(cfg, d, 25)
		if len(ps) != 25 {
			t.Fatalf("digit %d: %d people, want 25", d, len(ps))
		}
		for _, p := range ps {
			if p.Digit() != d || p.Unknown {
				t.Fatalf("digit %d: got %+v", d, p)
			}
		}
	}
	// Digit 9 includes the 9th, 19th and 29th.
	days := map[int]bool{}
	for _, p := range population.PeopleWithDigit(cfg, 9, 200) {
		days[p.BirthDate.Day] = true
	}
	if !days[9] || !days[19] || !days[29] {
		t.Fatalf("digit 9 days = %v", days)
	}
}

func TestClinics(t *testing.T) {
	cfg := population.Config{Seed: 2, Clinics: 14_000, Products: []string{"pfizer", "moderna", "az"}}
	cs := population.Clinics(cfg)
	if len(cs) != 14_000 {
		t.Fatalf("%d clinics", len(cs))
	}
	ids := map[string]bool{}
	regions := map[string]bool{}
	for j, c := range cs {
		if ids[c.ID] {
			t.Fatalf("duplicate clinic id %s", c.ID)
		}
		ids[c.ID] = true
		regions[c.Region[:2]] = true
		if len(c.Products) == 0 || c.Name == "" || c.Lat < 33 || c.Lat > 39 || c.Lon < 126 || c.Lon > 130 {
			t.Fatalf("bad clinic %+v", c)
		}
		if j%997 == 0 && !reflect.DeepEqual(c, population.ClinicAt(cfg, j)) {
			t.Fatalf("ClinicAt(%d) differs from Clinics()[%d]", j, j)
		}
	}
	if len(regions) != 17 {
		t.Fatalf("clinics in %d regions", len(regions))
	}
}

func TestSupply(t *testing.T) {
	c := &booking.Campaign{
		ID: "c1",
		Products: []booking.Product{
			{ID: "pfizer", Doses: 2, IntervalDays: 42},
			{ID: "janssen"},
		},
		VaccinationFrom: booking.MustDate("2021-07-26"),
		VaccinationTo:   booking.MustDate("2021-08-04"),
	}
	clinics := []booking.Clinic{
		{ID: "a", Products: []string{"pfizer", "janssen"}},
		{ID: "b", Products: []string{"moderna"}}, // nothing the campaign offers
	}
	rows := population.Supply(population.Config{}, c, clinics, 30)
	// clinic a: 10 days × (pfizer d1 + janssen d1 + pfizer d2) = 30 rows.
	if len(rows) != 30 {
		t.Fatalf("%d rows, want 30", len(rows))
	}
	var d1, d2 int
	for _, r := range rows {
		if r.ClinicID != "a" || r.CampaignID != "c1" || r.Doses != 30 {
			t.Fatalf("bad row %+v", r)
		}
		switch r.Dose {
		case 1:
			d1++
			if r.Date.Before(c.VaccinationFrom) || r.Date.After(c.VaccinationTo) {
				t.Fatalf("dose-1 row outside vaccination dates: %+v", r)
			}
		case 2:
			d2++
			if r.Product != "pfizer" || r.Date.Before(c.VaccinationFrom.AddDays(42)) || r.Date.After(c.VaccinationTo.AddDays(42)) {
				t.Fatalf("bad dose-2 row %+v", r)
			}
		}
	}
	if d1 != 20 || d2 != 10 {
		t.Fatalf("dose 1 rows %d, dose 2 rows %d", d1, d2)
	}

	jit := population.Supply(population.Config{Seed: 1, SupplyJitter: 0.5}, c, clinics[:1], 100)
	for _, r := range jit {
		if r.Doses < 50 || r.Doses > 150 {
			t.Fatalf("jittered supply %d outside ±50%%", r.Doses)
		}
	}
}

func BenchmarkPersonAt(b *testing.B) {
	cfg := population.Config{Seed: 1, People: 1_000_000}
	for i := 0; b.Loop(); i++ {
		_ = population.PersonAt(cfg, i%1_000_000)
	}
}

func collect(cfg population.Config) []population.Person {
	var out []population.Person
	for p := range population.People(cfg) {
		out = append(out, p)
	}
	return out
}
