package population

import (
	"fmt"
	"iter"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/yeyak/yeyak/booking"
)

// Defaults used when the matching Config field is zero.
const (
	DefaultPeople               = 10_000
	DefaultClinics              = 200
	DefaultVaccinatedShare      = 0.05
	DefaultContraindicatedShare = 0.01
	DefaultExcludedShare        = 0.005
	DefaultUnknownShare         = 0.01
)

// Default dates used when the matching Config field is zero: roughly the
// 2021 campaign's 18–49 cohort, and doses given in the spring before it.
var (
	DefaultBornFrom    = booking.Date{Year: 1972, Month: 1, Day: 1}
	DefaultBornTo      = booking.Date{Year: 2003, Month: 12, Day: 31}
	DefaultDosesBefore = booking.Date{Year: 2021, Month: 7, Day: 1}
)

// DefaultProducts are the products used when Config.Products is empty.
var DefaultProducts = []string{"pfizer", "moderna"}

// Config describes a synthetic population. The zero value is a usable
// population of DefaultPeople people and DefaultClinics clinics; every field
// left zero takes the documented default. The same Config always yields the
// same people and clinics.
type Config struct {
	// Seed selects the population; two configs that differ only in Seed
	// give the same ids with different attributes.
	Seed uint64
	// People is the number of people (indexes 0..People-1, including the
	// Unknown ones). 0 means DefaultPeople.
	People int
	// Clinics is the number of clinics. 0 means DefaultClinics.
	Clinics int
	// BornFrom and BornTo bound birth dates, inclusive; births are uniform
	// over the days between, leap days included. Zero means
	// DefaultBornFrom / DefaultBornTo.
	BornFrom, BornTo booking.Date
	// VaccinatedShare is the share of people with doses already given
	// (half of them two doses). 0 means DefaultVaccinatedShare (0.05); a
	// negative value means nobody.
	VaccinatedShare float64
	// ContraindicatedShare is the share flagged CNTRA_YN='Y'. 0 means
	// DefaultContraindicatedShare (0.01); negative means nobody.
	ContraindicatedShare float64
	// ExcludedShare is the share flagged EXCL_YN='Y'. 0 means
	// DefaultExcludedShare (0.005); negative means nobody.
	ExcludedShare float64
	// UnknownShare is the share of people the registry does not know (they
	// have ids and identities but no PERSON_MST row). 0 means
	// DefaultUnknownShare (0.01); negative means nobody.
	UnknownShare float64
	// Products are the product codes of doses given and of what clinics
	// administer. Empty means DefaultProducts.
	Products []string
	// DosesBefore: doses already given are dated within the 150 days
	// before it. Zero means DefaultDosesBefore.
	DosesBefore booking.Date
	// SupplyJitter varies each clinic's daily supply by up to ±SupplyJitter
	// (0.3 = ±30%), deterministically per clinic. 0 means none: every
	// Supply row holds exactly dosesPerDay.
	SupplyJitter float64
}

// withDefaults returns cfg with every zero field replaced by its default.
func (cfg Config) withDefaults() Config {
	if cfg.People <= 0 {
		cfg.People = DefaultPeople
	}
	if cfg.Clinics <= 0 {
		cfg.Clinics = DefaultClinics
	}
	if cfg.BornFrom.IsZero() {
		cfg.BornFrom = DefaultBornFrom
	}
	if cfg.BornTo.IsZero() {
		cfg.BornTo = DefaultBornTo
	}
	if cfg.BornTo.Before(cfg.BornFrom) {
		cfg.BornFrom, cfg.BornTo = cfg.BornTo, cfg.BornFrom
	}
	cfg.VaccinatedShare = share(cfg.VaccinatedShare, DefaultVaccinatedShare)
	cfg.ContraindicatedShare = share(cfg.ContraindicatedShare, DefaultContraindicatedShare)
	cfg.ExcludedShare = share(cfg.ExcludedShare, DefaultExcludedShare)
	cfg.UnknownShare = share(cfg.UnknownShare, DefaultUnknownShare)
	if len(cfg.Products) == 0 {
		cfg.Products = DefaultProducts
	}
	if cfg.DosesBefore.IsZero() {
		cfg.DosesBefore = DefaultDosesBefore
	}
	return cfg
}

func share(v, def float64) float64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	case v > 1:
		return 1
	}
	return v
}

// Size returns the number of people cfg describes (People or its default).
func (cfg Config) Size() int { return cfg.withDefaults().People }

// Person is one synthetic person: what the registry's PERSON_MST and
// VACC_HIST hold for them, plus where they live.
type Person struct {
	// ID is "P" followed by the person's index as 10 digits; see ID and IndexOf.
	ID        string
	BirthDate booking.Date
	Sex       byte   // 'M' or 'F'
	Region    string // 시도-시군구 code, e.g. "11-110"
	Lat, Lon  float64
	// Doses already given, in dose order.
	Doses           []Dose
	Contraindicated bool
	Excluded        bool
	// Unknown people are not in the registry: the mock answers "not found"
	// for them and Seed skips them. They exist to test unknown people.
	Unknown bool
}

// Dose is one dose already given to a person.
type Dose struct {
	Number  int
	Product string
	Date    booking.Date
}

// Digit returns the last digit of the person's day of birth, the one the
// rotation rule (10부제) looks at.
func (p Person) Digit() int { return p.BirthDate.Day % 10 }

// Eligible reports whether the registry would let the person book a first
// dose: known, not contraindicated or excluded, no dose given yet.
func (p Person) Eligible() bool {
	return !p.Unknown && !p.Contraindicated && !p.Excluded && len(p.Doses) == 0
}

// ID returns the person id of index i: "P" followed by i in 10 digits.
func ID(i int) string {
	return "P" + fmt.Sprintf("%010d", i)
}

// IndexOf is the inverse of ID: it returns the index of a person id and
// whether id has the generator's form.
func IndexOf(id string) (int, bool) {
	if len(id) != 11 || id[0] != 'P' {
		return 0, false
	}
	rest := id[1:]
	if strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil {
		return 0, false
	}
	return n, true
}

// splitmix64 is a strong 64-bit mixer; it turns (seed, stream, index) into
// independent PCG seeds so each person and clinic has its own stream and
// can be generated alone, in O(1).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Stream tags keep people and clinics on unrelated random streams.
const (
	streamPerson uint64 = 0x5045_5253 // "PERS"
	streamClinic uint64 = 0x434c_494e // "CLIN"
)

func rng(seed, stream uint64, i int) *rand.Rand {
	a := splitmix64(seed ^ splitmix64(stream))
	b := splitmix64(a ^ splitmix64(uint64(i)+1))
	return rand.New(rand.NewPCG(a^b, splitmix64(b)))
}

// PersonAt returns person i of the population (0 <= i < cfg.People) in
// O(1), without generating the others: a load tool can pick any person. It
// equals the i-th person People yields. i outside the range still yields a
// well-formed person, but one that People never produces.
func PersonAt(cfg Config, i int) Person {
	cfg = cfg.withDefaults()
	return personAt(&cfg, i)
}

// personAt draws person i. The order of draws is part of the output: change
// it and every population changes.
func personAt(cfg *Config, i int) Person {
	r := rng(cfg.Seed, streamPerson, i)
	days := cfg.BornTo.Sub(cfg.BornFrom) + 1
	p := Person{ID: ID(i)}
	p.BirthDate = cfg.BornFrom.AddDays(r.IntN(days))
	p.Sex = "MF"[r.IntN(2)]
	reg := pickRegion(r.Float64())
	p.Region = fmt.Sprintf("%s-%03d", reg.Code, 110+10*r.IntN(reg.Sigungu))
	p.Lat = reg.MinLat + r.Float64()*(reg.MaxLat-reg.MinLat)
	p.Lon = reg.MinLon + r.Float64()*(reg.MaxLon-reg.MinLon)
	p.Unknown = r.Float64() < cfg.UnknownShare
	p.Contraindicated = r.Float64() < cfg.ContraindicatedShare
	p.Excluded = r.Float64() < cfg.ExcludedShare
	if r.Float64() < cfg.VaccinatedShare {
		prod := cfg.Products[r.IntN(len(cfg.Products))]
		first := cfg.DosesBefore.AddDays(-60 - r.IntN(90))
		p.Doses = append(p.Doses, Dose{Number: 1, Product: prod, Date: first})
		if r.IntN(2) == 0 {
			p.Doses = append(p.Doses, Dose{Number: 2, Product: prod, Date: first.AddDays(28)})
		}
	}
	return p
}

// People yields every person of the population in index order, Unknown
// people included (check Person.Unknown).
func People(cfg Config) iter.Seq[Person] {
	cfg = cfg.withDefaults()
	return func(yield func(Person) bool) {
		for i := range cfg.People {
			if !yield(personAt(&cfg, i)) {
				return
			}
		}
	}
}

// PeopleWithDigit returns up to n people known to the registry (not
// Unknown) whose day of birth ends in digit, in index order; for demos and
// tests that need someone whose rotation day it is. Check Person.Eligible
// when the person must be able to book.
func PeopleWithDigit(cfg Config, digit, n int) []Person {
	var out []Person
	for p := range People(cfg) {
		if len(out) >= n {
			break
		}
		if !p.Unknown && p.Digit() == digit {
			out = append(out, p)
		}
	}
	return out
}
