package booking_test

import (
	"strings"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
)

var seoul = mustLoc("Asia/Seoul")

func mustLoc(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// kst parses "2006-01-02 15:04" in Seoul time.
func kst(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, seoul)
	if err != nil {
		panic(err)
	}
	return t
}

var d = booking.MustDate

func TestCampaign2021IsValid(t *testing.T) {
	c := booking.Campaign2021()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.BornFrom != d("1971-08-10") || c.BornTo != d("2003-08-09") {
		t.Errorf("cohort = %s..%s, want 1971-08-10..2003-08-09", c.BornFrom, c.BornTo)
	}
	if got := c.Waves(); got != 11 {
		t.Errorf("Waves() = %d, want 11 (10 rotation days + open wave)", got)
	}
	if p, ok := c.Product("moderna"); !ok || p.Doses != 2 || p.IntervalDays != 42 || p.ToleranceDays != 3 {
		t.Errorf("Product(moderna) = %+v, %v", p, ok)
	}
	if _, ok := c.Product("astra"); ok {
		t.Error("Product(astra) found")
	}
	if c.Location().String() != "Asia/Seoul" {
		t.Errorf("Location() = %s", c.Location())
	}
	c.TimeZone = ""
	if c.Location().String() != "Asia/Seoul" {
		t.Errorf(`Location() with TimeZone "" = %s, want Asia/Seoul`, c.Location())
	}
	// Each call is a fresh copy.
	c.Phases[0].Days = 3
	if booking.Campaign2021().Phases[0].Days != 10 {
		t.Error("Campaign2021 shares state between calls")
	}
}

// People of the 2021 cohort used across the tables.
var (
	older9   = d("1980-03-09") // digit 9, ages 36–49 catch-up
	younger0 = d("1990-05-10") // digit 0, ages 18–35 catch-up
	younger1 = d("1995-07-31") // the 31st: digit 1
	younger9 = d("1988-11-29") // the 29th: digit 9
	born18th = d("1990-01-18") // digit 8: the last rotation day
)

func TestCanBook2021(t *testing.T) {
	c := booking.Campaign2021()
	tests := []struct {
		name     string
		birth    booking.Date
		now      time.Time
		ok       bool
		reason   booking.Code
		wave     int
		phase    int
		opensAt  time.Time
		closesAt time.Time
	}{
		{"a minute before the first window", older9, kst("2021-08-09 19:59"), false, booking.EOUTSIDECAMPAIGN, 0, -1, kst("2021-08-09 20:00"), time.Time{}},
		{"first window opens at 20:00", older9, kst("2021-08-09 20:00"), true, "", 1, 0, time.Time{}, kst("2021-08-10 18:00")},
		{"still open at 17:59 next day", older9, kst("2021-08-10 17:59"), true, "", 1, 0, time.Time{}, kst("2021-08-10 18:00")},
		{"closed at 18:00, next is the older catch-up", older9, kst("2021-08-10 18:00"), false, booking.ECLOSED, 0, -1, kst("2021-08-19 20:00"), time.Time{}},
		{"digit 0 waits for 20:00 on the 10th", younger0, kst("2021-08-10 18:00"), false, booking.ECLOSED, 0, -1, kst("2021-08-10 20:00"), time.Time{}},
		{"digit 0 at 19:59 on the 10th", younger0, kst("2021-08-10 19:59"), false, booking.ECLOSED, 0, -1, kst("2021-08-10 20:00"), time.Time{}},
		{"digit 0 on the 10th", younger0, kst("2021-08-10 20:00"), true, "", 2, 0, time.Time{}, kst("2021-08-11 18:00")},
		{"digit 0 in digit 9's window", younger0, kst("2021-08-09 23:00"), false, booking.ENOTYOURDAY, 0, 0, kst("2021-08-10 20:00"), kst("2021-08-10 18:00")},
		{"the 31st in digit 0's window", younger1, kst("2021-08-10 21:00"), false, booking.ENOTYOURDAY, 0, 0, kst("2021-08-11 20:00"), kst("2021-08-11 18:00")},
		{"the 31st books on the 11th", younger1, kst("2021-08-11 20:00"), true, "", 3, 0, time.Time{}, kst("2021-08-12 18:00")},
		{"the 29th books on the 9th", younger9, kst("2021-08-10 06:00"), true, "", 1, 0, time.Time{}, kst("2021-08-10 18:00")},
		{"the 29th on the 18th, next is the younger catch-up", younger9, kst("2021-08-18 21:00"), false, booking.ENOTYOURDAY, 0, 0, kst("2021-08-20 20:00"), kst("2021-08-19 18:00")},
		{"the 18th: last rotation day, wave 10", born18th, kst("2021-08-18 20:00"), true, "", 10, 0, time.Time{}, kst("2021-08-19 18:00")},
		{"the 18th at 18:00 after its window", born18th, kst("2021-08-19 18:00"), false, booking.ECLOSED, 0, -1, kst("2021-08-20 20:00"), time.Time{}},
		{"older catch-up admits 36–49", older9, kst("2021-08-19 20:00"), true, "", booking.OpenWave, 1, time.Time{}, kst("2021-08-20 18:00")},
		{"older catch-up refuses 18–35", younger0, kst("2021-08-19 20:00"), false, booking.ENOTYOURWINDOW, 0, 1, kst("2021-08-20 20:00"), kst("2021-08-20 18:00")},
		{"younger catch-up admits 18–35", younger0, kst("2021-08-20 20:00"), true, "", booking.OpenWave, 2, time.Time{}, kst("2021-08-21 18:00")},
		{"younger catch-up refuses 36–49", older9, kst("2021-08-21 17:59"), false, booking.ENOTYOURWINDOW, 0, 2, kst("2021-08-21 20:00"), kst("2021-08-21 18:00")},
		{"between catch-up and open", older9, kst("2021-08-21 19:00"), false, booking.ECLOSED, 0, -1, kst("2021-08-21 20:00"), time.Time{}},
		{"open phase admits everyone", younger0, kst("2021-09-01 03:00"), true, "", booking.OpenWave, 3, time.Time{}, kst("2021-09-18 18:00")},
		{"open phase at 17:59 on the last day", older9, kst("2021-09-18 17:59"), true, "", booking.OpenWave, 3, time.Time{}, kst("2021-09-18 18:00")},
		{"after open_until", younger0, kst("2021-09-18 18:00"), false, booking.EOUTSIDECAMPAIGN, 0, -1, time.Time{}, time.Time{}},
		{"a month before the campaign", younger0, kst("2021-07-01 12:00"), false, booking.EOUTSIDECAMPAIGN, 0, -1, kst("2021-08-10 20:00"), time.Time{}},
		{"aged 50", d("1971-08-09"), kst("2021-08-09 20:00"), false, booking.ENOTINCOHORT, 0, -1, time.Time{}, time.Time{}},
		{"aged 17", d("2003-08-10"), kst("2021-08-09 20:00"), false, booking.ENOTINCOHORT, 0, -1, time.Time{}, time.Time{}},
		{"turned 18 on the first day", d("2003-08-09"), kst("2021-08-09 20:00"), true, "", 1, 0, time.Time{}, kst("2021-08-10 18:00")},
		{"oldest in cohort", d("1971-08-10"), kst("2021-08-19 20:00"), true, "", booking.OpenWave, 1, time.Time{}, kst("2021-08-20 18:00")},
		{"zero birth date", booking.Date{}, kst("2021-08-09 20:00"), false, booking.ENOTINCOHORT, 0, -1, time.Time{}, time.Time{}},
		// Time-zone edges: the same instants seen in UTC.
		{"UTC 11:00 is 20:00 Seoul", older9, time.Date(2021, 8, 9, 11, 0, 0, 0, time.UTC), true, "", 1, 0, time.Time{}, kst("2021-08-10 18:00")},
		{"UTC 10:59 is 19:59 Seoul", older9, time.Date(2021, 8, 9, 10, 59, 0, 0, time.UTC), false, booking.EOUTSIDECAMPAIGN, 0, -1, kst("2021-08-09 20:00"), time.Time{}},
		{"UTC still the 9th, Seoul already the 10th", older9, time.Date(2021, 8, 9, 23, 0, 0, 0, time.UTC), true, "", 1, 0, time.Time{}, kst("2021-08-10 18:00")},
		{"UTC the 10th at 10:30 is before 20:00 Seoul", younger0, time.Date(2021, 8, 10, 10, 30, 0, 0, time.UTC), false, booking.ECLOSED, 0, -1, kst("2021-08-10 20:00"), time.Time{}},
		{"UTC 09:00 on the 10th is closing time in Seoul", older9, time.Date(2021, 8, 10, 9, 0, 0, 0, time.UTC), false, booking.ECLOSED, 0, -1, kst("2021-08-19 20:00"), time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := booking.CanBook(c, tt.birth, tt.now)
			want := booking.Decision{OK: tt.ok, Reason: tt.reason, Wave: tt.wave, Phase: tt.phase}
			if got.OK != want.OK || got.Reason != want.Reason || got.Wave != want.Wave || got.Phase != want.Phase {
				t.Errorf("CanBook = %+v, want ok=%v reason=%q wave=%d phase=%d", got, tt.ok, tt.reason, tt.wave, tt.phase)
			}
			if !got.OpensAt.Equal(tt.opensAt) {
				t.Errorf("OpensAt = %v, want %v", got.OpensAt, tt.opensAt)
			}
			if !got.ClosesAt.Equal(tt.closesAt) {
				t.Errorf("ClosesAt = %v, want %v", got.ClosesAt, tt.closesAt)
			}
		})
	}
}

// rotationCampaign is a campaign with one rotation phase of days days
// starting on start (20:00 → 18:00 next day), a cohort of everyone born in
// the 1900s, and no other phase.
func rotationCampaign(start booking.Date, days int) *booking.Campaign {
	last := start.AddDays(days + 1)
	return &booking.Campaign{
		ID: "rot", Name: "rotation", Products: []booking.Product{{ID: "pfizer"}},
		BornFrom: d("1900-01-01"), BornTo: d("1999-12-31"),
		VaccinationFrom: start, VaccinationTo: start.AddDays(90),
		Phases: []booking.Phase{{
			Kind: booking.PhaseRotation, Starts: start, Days: days,
			Opens: 20 * time.Hour, Closes: 42 * time.Hour,
		}},
		OpenUntil: last.In(seoul),
	}
}

// bookableDays returns the local dates whose rotation window (probed at its
// opening minute and its last minute) admits a person born on birth.
func bookableDays(t *testing.T, c *booking.Campaign, birth booking.Date) []booking.Date {
	t.Helper()
	var out []booking.Date
	p := c.Phases[0]
	for k := range p.Days {
		day := p.Starts.AddDays(k)
		open := day.In(seoul).Add(p.Opens)
		last := day.In(seoul).Add(p.Closes - time.Minute)
		a, b := booking.CanBook(c, birth, open), booking.CanBook(c, birth, last)
		if a.OK != b.OK {
			t.Fatalf("day %s: open %v but last minute %v", day, a.OK, b.OK)
		}
		if a.OK {
			if a.Wave != k+1 {
				t.Errorf("day %s: wave %d, want %d", day, a.Wave, k+1)
			}
			out = append(out, day)
		}
	}
	return out
}

func TestRotationEveryDigitOnceAcrossMonths(t *testing.T) {
	starts := []string{
		"2021-08-09", // inside a month: matches the calendar
		"2021-08-25", // crosses a 31-day month end
		"2021-01-25", // January → February
		"2021-02-25", // February with 28 days
		"2024-02-25", // February with 29 days
		"2021-04-25", // a 30-day month
		"2021-12-27", // crosses the year end
	}
	for _, s := range starts {
		t.Run(s, func(t *testing.T) {
			c := rotationCampaign(d(s), 10)
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			// Every day of birth 1..31 books on exactly one day, and the
			// days served are all different digits.
			served := map[booking.Date]int{}
			for day := 1; day <= 31; day++ {
				birth := booking.Date{Year: 1990, Month: time.January, Day: day}
				got := bookableDays(t, c, birth)
				if len(got) != 1 {
					t.Fatalf("born on day %d: bookable on %v, want exactly one day", day, got)
				}
				if prev, ok := served[got[0]]; ok && prev != day%10 {
					t.Errorf("%s serves digits %d and %d", got[0], prev, day%10)
				}
				served[got[0]] = day % 10
			}
			if len(served) != 10 {
				t.Errorf("%d distinct days served, want 10", len(served))
			}
		})
	}
}

func TestRotationDayForDigit(t *testing.T) {
	tests := []struct {
		start    string
		birthDay int
		want     string
	}{
		{"2021-08-09", 9, "2021-08-09"},
		{"2021-08-09", 10, "2021-08-10"},
		{"2021-08-09", 31, "2021-08-11"},
		{"2021-08-09", 18, "2021-08-18"},
		{"2021-08-25", 31, "2021-08-31"}, // the 31st serves digit 1 …
		{"2021-08-25", 1, "2021-08-31"},  // … shared with the 1st
		{"2021-08-25", 2, "2021-09-01"},  // digit (5+7)%10 = 2 on 1 September
		{"2021-08-25", 4, "2021-09-03"},
		{"2021-02-25", 8, "2021-02-28"},
		{"2021-02-25", 9, "2021-03-01"}, // no 29th: digit 9 moves to 1 March
		{"2021-02-25", 4, "2021-03-06"},
		{"2024-02-25", 29, "2024-02-29"},
		{"2024-02-25", 10, "2024-03-01"},
		{"2024-02-25", 4, "2024-03-05"},
	}
	for _, tt := range tests {
		c := rotationCampaign(d(tt.start), 10)
		birth := booking.Date{Year: 1990, Month: time.March, Day: tt.birthDay}
		if tt.birthDay > 30 {
			birth.Month = time.May
		}
		got := bookableDays(t, c, birth)
		if len(got) != 1 || got[0] != d(tt.want) {
			t.Errorf("rotation from %s, born on day %d: bookable %v, want %s", tt.start, tt.birthDay, got, tt.want)
		}
	}
}

func TestDigitOverride(t *testing.T) {
	c := booking.Campaign2021()
	c.Phases[0].Digits = []int{8, 6, 4, 2, 0, 9, 7, 5, 3, 1}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := bookableDays(t, c, younger0); len(got) != 1 || got[0] != d("2021-08-13") {
		t.Errorf("digit 0 bookable on %v, want 2021-08-13 (day 4 of the table)", got)
	}
	got := booking.CanBook(c, older9, kst("2021-08-09 20:00"))
	if got.OK || got.Reason != booking.ENOTYOURDAY || !got.OpensAt.Equal(kst("2021-08-14 20:00")) {
		t.Errorf("digit 9 on day 0 = %+v, want not_your_rotation_day opening 2021-08-14 20:00", got)
	}
	if got := booking.CanBook(c, older9, kst("2021-08-14 20:00")); !got.OK || got.Wave != 6 {
		t.Errorf("digit 9 on day 5 = %+v, want OK wave 6", got)
	}
}

func TestCampaignInOtherZone(t *testing.T) {
	c := booking.Campaign2021()
	c.TimeZone = "UTC"
	c.OpenUntil = time.Date(2021, 9, 18, 18, 0, 0, 0, time.UTC)
	if got := booking.CanBook(c, older9, kst("2021-08-09 20:00")); got.OK {
		t.Errorf("20:00 Seoul is 11:00 UTC, before a UTC campaign opens: got %+v", got)
	}
	got := booking.CanBook(c, older9, time.Date(2021, 8, 9, 20, 0, 0, 0, time.UTC))
	if !got.OK || !got.ClosesAt.Equal(time.Date(2021, 8, 10, 18, 0, 0, 0, time.UTC)) {
		t.Errorf("20:00 UTC in a UTC campaign = %+v", got)
	}
}

func TestCanChange2021(t *testing.T) {
	c := booking.Campaign2021()
	active := &booking.Booking{Status: booking.StatusConfirmed, Wave: 1}
	cancelled := &booking.Booking{Status: booking.StatusCancelled, Wave: 1}
	relaxed := booking.Campaign2021()
	relaxed.Phases[0].ChangeOutsideWindow = true
	tests := []struct {
		name    string
		c       *booking.Campaign
		b       *booking.Booking
		birth   booking.Date
		now     time.Time
		ok      bool
		reason  booking.Code
		opensAt time.Time
	}{
		{"own rotation window", c, active, older9, kst("2021-08-09 21:00"), true, "", time.Time{}},
		{"another digit's window", c, active, older9, kst("2021-08-10 21:00"), false, booking.ECHANGENOTALLOWED, kst("2021-08-19 20:00")},
		{"between windows", c, active, younger0, kst("2021-08-10 19:00"), false, booking.ECHANGENOTALLOWED, kst("2021-08-10 20:00")},
		{"own catch-up window", c, active, older9, kst("2021-08-19 21:00"), true, "", time.Time{}},
		{"other catch-up window", c, active, younger0, kst("2021-08-19 21:00"), false, booking.ECHANGENOTALLOWED, kst("2021-08-20 20:00")},
		{"open phase", c, active, younger0, kst("2021-09-10 09:00"), true, "", time.Time{}},
		{"at open_until", c, active, younger0, kst("2021-09-18 18:00"), false, booking.ECHANGENOTALLOWED, time.Time{}},
		{"cancelled booking", c, cancelled, older9, kst("2021-08-09 21:00"), false, booking.EALREADYCANCELLED, time.Time{}},
		{"outside window allowed by phase", relaxed, active, older9, kst("2021-08-10 21:00"), true, "", time.Time{}},
		{"phase policy still needs a window", relaxed, active, older9, kst("2021-08-10 19:00"), false, booking.ECHANGENOTALLOWED, kst("2021-08-10 20:00")},
		{"unknown birth: only where it does not matter", c, active, booking.Date{}, kst("2021-08-09 21:00"), false, booking.ECHANGENOTALLOWED, kst("2021-08-21 20:00")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := booking.CanChange(tt.c, tt.b, tt.birth, tt.now)
			if got.OK != tt.ok || got.Reason != tt.reason || !got.OpensAt.Equal(tt.opensAt) {
				t.Errorf("CanChange = %+v, want ok=%v reason=%q opensAt=%v", got, tt.ok, tt.reason, tt.opensAt)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *booking.Campaign)
		want   string // substring of the message
	}{
		{"empty id", func(c *booking.Campaign) { c.ID = " " }, "id is empty"},
		{"no products", func(c *booking.Campaign) { c.Products = nil }, "no products"},
		{"duplicate product", func(c *booking.Campaign) { c.Products[1].ID = "pfizer" }, "listed twice"},
		{"two doses without interval", func(c *booking.Campaign) { c.Products[0].IntervalDays = 0 }, "no interval"},
		{"cohort reversed", func(c *booking.Campaign) { c.BornFrom, c.BornTo = c.BornTo, c.BornFrom }, "cohort born_from"},
		{"cohort missing", func(c *booking.Campaign) { c.BornTo = booking.Date{} }, "cohort birth range"},
		{"vaccination reversed", func(c *booking.Campaign) { c.VaccinationTo = d("2021-08-01") }, "vaccination_from"},
		{"bad zone", func(c *booking.Campaign) { c.TimeZone = "Mars/Olympus" }, "time zone"},
		{"bad policy", func(c *booking.Campaign) { c.RegistryPolicy = "maybe" }, "registry policy"},
		{"no phases", func(c *booking.Campaign) { c.Phases = nil }, "no booking phases"},
		{"no open_until", func(c *booking.Campaign) { c.OpenUntil = time.Time{} }, "open_until"},
		{"days 32", func(c *booking.Campaign) { c.Phases[0].Days = 32 }, "outside 1..31"},
		{"negative days", func(c *booking.Campaign) { c.Phases[0].Days = -1 }, "outside 1..31"},
		{"7 days without digits", func(c *booking.Campaign) { c.Phases[0].Days = 7 }, "multiple of 10"},
		{"digits length", func(c *booking.Campaign) { c.Phases[0].Digits = []int{1, 2, 3} }, "3 digits for 10 days"},
		{"digit 10", func(c *booking.Campaign) { c.Phases[0].Digits = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 10} }, "outside 0..9"},
		{"closes before opens", func(c *booking.Campaign) { c.Phases[1].Closes = 19 * time.Hour }, "not after opens"},
		{"window over 24h", func(c *booking.Campaign) { c.Phases[0].Closes = 45 * time.Hour }, "longer than 24h"},
		{"unknown kind", func(c *booking.Campaign) { c.Phases[1].Kind = "lottery" }, "unknown kind"},
		{"open not last", func(c *booking.Campaign) { c.Phases[2], c.Phases[3] = c.Phases[3], c.Phases[2] }, "must be the last"},
		{"phases overlap", func(c *booking.Campaign) { c.Phases[1].Starts = d("2021-08-15") }, "starts before phase 0 ends"},
		{"catch-up range reversed", func(c *booking.Campaign) {
			c.Phases[1].BornFrom, c.Phases[1].BornTo = c.Phases[1].BornTo, c.Phases[1].BornFrom
		}, "phase 1: born_from"},
		{"window after open_until", func(c *booking.Campaign) { c.OpenUntil = kst("2021-08-20 12:00") }, "after open_until"},
		{"digits on catch-up", func(c *booking.Campaign) { c.Phases[1].Digits = []int{1} }, "only rotation"},
		{"no start", func(c *booking.Campaign) { c.Phases[0].Starts = booking.Date{} }, "no start date"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := booking.Campaign2021()
			tt.change(c)
			err := c.Validate()
			if booking.ErrorCode(err) != booking.EINVALID {
				t.Fatalf("Validate() = %v, want %s", err, booking.EINVALID)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %q, want it to mention %q", err, tt.want)
			}
		})
	}
	var nilCampaign *booking.Campaign
	if booking.ErrorCode(nilCampaign.Validate()) != booking.EINVALID {
		t.Error("nil campaign validates")
	}
}

func TestAgeOn(t *testing.T) {
	tests := []struct {
		birth, on string
		want      int
	}{
		{"2000-08-09", "2021-08-08", 20},
		{"2000-08-09", "2021-08-09", 21},
		{"2000-12-31", "2001-01-01", 0},
		{"2000-02-29", "2001-02-28", 0}, // not yet: the birthday is 1 March
		{"2000-02-29", "2001-03-01", 1},
		{"2000-02-29", "2004-02-28", 3},
		{"2000-02-29", "2004-02-29", 4}, // leap year: the real birthday
		{"2000-02-29", "2100-02-28", 99},
		{"2000-02-29", "2100-03-01", 100}, // 2100 is not a leap year
		{"2021-08-10", "2021-08-09", -1},
	}
	for _, tt := range tests {
		if got := booking.AgeOn(d(tt.birth), d(tt.on)); got != tt.want {
			t.Errorf("AgeOn(%s, %s) = %d, want %d", tt.birth, tt.on, got, tt.want)
		}
	}
}

func TestCohortForAges(t *testing.T) {
	tests := []struct {
		min, max     int
		asOf         string
		from, to     string
		leapIncluded string // a leap-day birth that must be inside, if any
		leapExcluded string // and one that must be outside
	}{
		{18, 49, "2021-08-09", "1971-08-10", "2003-08-09", "", ""},
		{36, 49, "2021-08-09", "1971-08-10", "1985-08-09", "1980-02-29", ""},
		{18, 35, "2021-08-09", "1985-08-10", "2003-08-09", "2000-02-29", ""},
		// Someone born on 2004-02-29 turns 18 on 2022-03-01, not on 02-28.
		// … and someone born on 1972-02-29 is still 49 that day.
		{18, 49, "2022-02-28", "1972-02-29", "2004-02-28", "1972-02-29", "2004-02-29"},
		{18, 49, "2022-03-01", "1972-03-02", "2004-03-01", "2004-02-29", ""},
		// As of a leap day.
		{0, 0, "2024-02-29", "2023-03-01", "2024-02-29", "2024-02-29", ""},
		{18, 18, "2024-02-29", "2005-03-01", "2006-02-28", "", "2004-02-29"},
		{20, 20, "2024-02-29", "2003-03-01", "2004-02-29", "2004-02-29", ""},
	}
	for _, tt := range tests {
		from, to := booking.CohortForAges(tt.min, tt.max, d(tt.asOf))
		if from != d(tt.from) || to != d(tt.to) {
			t.Errorf("CohortForAges(%d, %d, %s) = %s..%s, want %s..%s", tt.min, tt.max, tt.asOf, from, to, tt.from, tt.to)
		}
		// The bounds agree with AgeOn exactly.
		asOf := d(tt.asOf)
		for _, b := range []booking.Date{from, to} {
			if a := booking.AgeOn(b, asOf); a < tt.min || a > tt.max {
				t.Errorf("bound %s has age %d on %s", b, a, asOf)
			}
		}
		if a := booking.AgeOn(from.AddDays(-1), asOf); a <= tt.max {
			t.Errorf("day before %s has age %d, inside the band", from, a)
		}
		if a := booking.AgeOn(to.AddDays(1), asOf); a >= tt.min {
			t.Errorf("day after %s has age %d, inside the band", to, a)
		}
		if tt.leapIncluded != "" {
			if b := d(tt.leapIncluded); b.Before(from) || b.After(to) {
				t.Errorf("%s should be in %s..%s", b, from, to)
			}
		}
		if tt.leapExcluded != "" {
			if b := d(tt.leapExcluded); !b.Before(from) && !b.After(to) {
				t.Errorf("%s should not be in %s..%s", b, from, to)
			}
		}
	}
}
