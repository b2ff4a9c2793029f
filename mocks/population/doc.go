// Package population generates a deterministic synthetic population for
// yeyak's tests, demo and load tools: people with realistic birth dates
// across a cohort (leap days included), regions and coordinates over the
// seventeen Korean 시도, shares already vaccinated, contraindicated,
// excluded or unknown to the registry; clinics spread by population; and
// supply rows for a campaign.
//
// Everything is a pure function of Config: person i and clinic j come from
// their own seeded PCG streams, so any one of them is generated in O(1)
// without the others, and the same Config gives the same data on every run
// and machine.
//
//	cfg := population.Config{Seed: 42, People: 1_000_000, Clinics: 14_000}
//	p := population.PersonAt(cfg, 123_456) // random access, O(1)
//	for p := range population.People(cfg) { // all of them, in index order
//		_ = p
//	}
//	clinics := population.Clinics(cfg)
//	supply := population.Supply(cfg, campaign, clinics, 100)
//
// It is test and demo data: production code never imports it.
package population
