package booking

import "time"

// Campaign2021 returns the historical reference campaign: the 2021 booking
// for ages 18–49 (about 16 million people). It is data like any other
// campaign; tests, benchmarks and documentation use it as the worked
// example of every rule.
//
//   - cohort: ages 18–49 (만 나이) on 2021-08-09, see CohortForAges;
//   - rotation (10부제): 2021-08-09 for 10 days, each window 20:00 to 18:00
//     the next day (Opens 20h, Closes 42h), day k serving digit (9+k)%10, so
//     the 9th serves 9, the 10th serves 0, …, the 18th serves 8; changes
//     only in one's own window;
//   - catch-up: 2021-08-19 20:00 → 08-20 18:00 for ages 36–49, and
//     2021-08-20 20:00 → 08-21 18:00 for ages 18–35;
//   - open: from 2021-08-21 20:00 until 2021-09-18 18:00 for the whole cohort;
//   - vaccination 2021-08-26..2021-10-02, Pfizer and Moderna, two doses 42
//     days apart with 3 days' tolerance; time zone Asia/Seoul; fail closed
//     when the registry cannot answer.
//
// Each call returns a fresh copy the caller may change.
func Campaign2021() *Campaign {
	asOf := Date{2021, time.August, 9}
	bornFrom, bornTo := CohortForAges(18, 49, asOf)
	olderFrom, olderTo := CohortForAges(36, 49, asOf)
	youngerFrom, youngerTo := CohortForAges(18, 35, asOf)
	seoul, _ := loadLocation(DefaultTimeZone)
	return &Campaign{
		ID:   "covid19-2021-18-49",
		Name: "COVID-19 vaccination, ages 18–49 (2021)",
		Products: []Product{
			{ID: "pfizer", Doses: 2, IntervalDays: 42, ToleranceDays: 3},
			{ID: "moderna", Doses: 2, IntervalDays: 42, ToleranceDays: 3},
		},
		BornFrom:        bornFrom,
		BornTo:          bornTo,
		VaccinationFrom: Date{2021, time.August, 26},
		VaccinationTo:   Date{2021, time.October, 2},
		TimeZone:        DefaultTimeZone,
		Phases: []Phase{
			{Kind: PhaseRotation, Starts: asOf, Days: 10, Opens: 20 * time.Hour, Closes: 42 * time.Hour},
			{Kind: PhaseCatchUp, Starts: Date{2021, time.August, 19}, Opens: 20 * time.Hour, Closes: 42 * time.Hour,
				BornFrom: olderFrom, BornTo: olderTo},
			{Kind: PhaseCatchUp, Starts: Date{2021, time.August, 20}, Opens: 20 * time.Hour, Closes: 42 * time.Hour,
				BornFrom: youngerFrom, BornTo: youngerTo},
			{Kind: PhaseOpen, Starts: Date{2021, time.August, 21}, Opens: 20 * time.Hour,
				ChangeOutsideWindow: true},
		},
		OpenUntil:      time.Date(2021, time.September, 18, 18, 0, 0, 0, seoul),
		RegistryPolicy: FailClosed,
	}
}
