package population

import (
	"fmt"
	"math"

	"github.com/yeyak/yeyak/booking"
)

var clinicKinds = []string{"내과의원", "가정의학과의원", "소아청소년과의원", "이비인후과의원", "의원", "병원", "보건소"}

// ClinicID returns the id of clinic j: "C" followed by j+1 in 6 digits.
func ClinicID(j int) string { return fmt.Sprintf("C%06d", j+1) }

// ClinicAt returns clinic j (0 <= j < cfg.Clinics) in O(1). Clinics are
// spread over the regions by population; each administers a random
// non-empty subset of cfg.Products (each product with probability 0.7).
func ClinicAt(cfg Config, j int) booking.Clinic {
	cfg = cfg.withDefaults()
	return clinicAt(&cfg, j)
}

func clinicAt(cfg *Config, j int) booking.Clinic {
	r := rng(cfg.Seed, streamClinic, j)
	reg := pickRegion(r.Float64())
	c := booking.Clinic{
		ID:     ClinicID(j),
		Region: fmt.Sprintf("%s-%03d", reg.Code, 110+10*r.IntN(reg.Sigungu)),
		Lat:    reg.MinLat + r.Float64()*(reg.MaxLat-reg.MinLat),
		Lon:    reg.MinLon + r.Float64()*(reg.MaxLon-reg.MinLon),
	}
	c.Name = fmt.Sprintf("%s %s %d", reg.NameKo, clinicKinds[r.IntN(len(clinicKinds))], j+1)
	for _, p := range cfg.Products {
		if r.Float64() < 0.7 {
			c.Products = append(c.Products, p)
		}
	}
	if len(c.Products) == 0 {
		c.Products = []string{cfg.Products[r.IntN(len(cfg.Products))]}
	}
	return c
}

// Clinics returns every clinic of the population in index order.
func Clinics(cfg Config) []booking.Clinic {
	cfg = cfg.withDefaults()
	out := make([]booking.Clinic, cfg.Clinics)
	for j := range out {
		out[j] = clinicAt(&cfg, j)
	}
	return out
}

// DefaultDosesPerDay is the daily supply Supply uses when dosesPerDay <= 0.
const DefaultDosesPerDay = 100

// Supply returns the supply rows of campaign c at the given clinics: for
// each clinic, each vaccination date from c.VaccinationFrom to
// c.VaccinationTo and each product both the campaign and the clinic offer,
// one dose-1 row of dosesPerDay doses (DefaultDosesPerDay when <= 0; varied
// per clinic by cfg.SupplyJitter). For two-dose products it adds the
// matching dose-2 rows IntervalDays later, same size, so every dose 1 has a
// dose 2 waiting. Rows are ordered by clinic, then dose, date and product.
func Supply(cfg Config, c *booking.Campaign, clinics []booking.Clinic, dosesPerDay int) []booking.Supply {
	cfg = cfg.withDefaults()
	if dosesPerDay <= 0 {
		dosesPerDay = DefaultDosesPerDay
	}
	products := make(map[string]booking.Product, len(c.Products))
	for _, p := range c.Products {
		products[p.ID] = p
	}
	days := c.VaccinationTo.Sub(c.VaccinationFrom) + 1
	var out []booking.Supply
	for j, cl := range clinics {
		n := dosesPerDay
		if cfg.SupplyJitter > 0 {
			r := rng(cfg.Seed, streamClinic^0xffff, j)
			n = max(1, int(math.Round(float64(dosesPerDay)*(1+cfg.SupplyJitter*(2*r.Float64()-1)))))
		}
		var second []booking.Supply
		for d := range days {
			date := c.VaccinationFrom.AddDays(d)
			for _, id := range cl.Products {
				p, ok := products[id]
				if !ok {
					continue
				}
				out = append(out, booking.Supply{CampaignID: c.ID, ClinicID: cl.ID, Date: date, Product: id, Dose: 1, Doses: n})
				if p.Doses >= 2 {
					second = append(second, booking.Supply{CampaignID: c.ID, ClinicID: cl.ID, Date: date.AddDays(p.IntervalDays), Product: id, Dose: 2, Doses: n})
				}
			}
		}
		out = append(out, second...)
	}
	return out
}
