package booking

import (
	"fmt"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // the campaign zone (Asia/Seoul by default) must load on hosts without zoneinfo
)

// DefaultTimeZone is the campaign time zone when Campaign.TimeZone is "".
const DefaultTimeZone = "Asia/Seoul"

// DefaultRotationDays is the length of a rotation phase when Phase.Days is 0.
const DefaultRotationDays = 10

// Decision is the answer of CanBook and CanChange: whether the person may act
// now and, if not, why and when they may next.
type Decision struct {
	// OK is true when the person may book (CanBook) or change (CanChange) now.
	OK bool
	// Reason is the refusal code when OK is false: ENOTINCOHORT,
	// ENOTYOURDAY, ENOTYOURWINDOW, ECLOSED, EOUTSIDECAMPAIGN (CanBook);
	// ECHANGENOTALLOWED, EALREADYCANCELLED (CanChange); ENOTELIGIBLE or
	// EREGISTRYDOWN (Service.Eligibility).
	Reason Code
	// OpensAt is the start of the earliest future window in which the
	// person may act; zero when there is none (or OK is true).
	OpensAt time.Time
	// Wave is the quota wave a booking made now draws from (CanBook, when
	// OK): rotation day k, counted across all rotation phases in order,
	// is wave k+1; the catch-up and open phases share OpenWave (0).
	Wave int
	// Phase is the index in Campaign.Phases of the window now falls in
	// (whether or not the person qualifies for it), or -1 when now is in
	// no window.
	Phase int
	// ClosesAt is the end of the window now falls in; zero when Phase is -1.
	ClosesAt time.Time
	// Provisional is set by Service.Eligibility when the registry could not
	// answer and the decision rests on the identity token's birth date: a
	// booking made now would be provisional.
	Provisional bool
}

// window is one booking window of a campaign: [start, end) in absolute time.
type window struct {
	phase    int
	kind     PhaseKind
	start    time.Time
	end      time.Time
	digit    int  // rotation: the birth-day digit served; -1 otherwise
	wave     int  // quota wave a booking in this window draws from
	bornFrom Date // catch-up: sub-range; a zero bound is open
	bornTo   Date
}

func (w *window) contains(t time.Time) bool {
	return !t.Before(w.start) && t.Before(w.end)
}

// qualifies reports whether a person of the cohort born on birth may book
// in w. Cohort membership is checked by the caller.
func (w *window) qualifies(birth Date) bool {
	switch w.kind {
	case PhaseRotation:
		return BirthDigit(birth) == w.digit
	case PhaseCatchUp:
		return (w.bornFrom.IsZero() || !birth.Before(w.bornFrom)) &&
			(w.bornTo.IsZero() || !birth.After(w.bornTo))
	default:
		return true
	}
}

// BirthDigit is the rotation digit of a person: the last digit of their day
// of birth (the 9th, 19th and 29th give 9; the 31st gives 1; the 10th, 20th
// and 30th give 0).
func BirthDigit(birth Date) int { return birth.Day % 10 }

// rotationDays is the number of days of a rotation phase.
func (p *Phase) rotationDays() int {
	if p.Days == 0 {
		return DefaultRotationDays
	}
	return p.Days
}

// RotationDigit is the digit served on day k (0-based) of a rotation phase:
// Digits[k] when the phase has a digit table, else (Starts.Day%10 + k) % 10,
// so a phase inside one month matches the calendar and one that crosses a
// month end still serves every digit once in ten days.
func (p *Phase) RotationDigit(k int) int {
	if p.Digits != nil {
		return p.Digits[k]
	}
	return (p.Starts.Day%10 + k) % 10
}

// windows lists the campaign's booking windows in phase order.
func (c *Campaign) windows() []window {
	loc := c.Location()
	ws := make([]window, 0, c.Waves()+len(c.Phases))
	wave := OpenWave
	for i := range c.Phases {
		p := &c.Phases[i]
		switch p.Kind {
		case PhaseRotation:
			n := p.rotationDays()
			for k := range n {
				if p.Digits != nil && k >= len(p.Digits) {
					break // invalid campaign (Validate reports it); serve what is defined
				}
				wave++
				day := p.Starts.AddDays(k).In(loc)
				ws = append(ws, window{
					phase: i, kind: p.Kind, digit: p.RotationDigit(k), wave: wave,
					start: day.Add(p.Opens), end: day.Add(p.Closes),
				})
			}
		case PhaseCatchUp:
			day := p.Starts.In(loc)
			ws = append(ws, window{
				phase: i, kind: p.Kind, digit: -1, wave: OpenWave,
				start: day.Add(p.Opens), end: day.Add(p.Closes),
				bornFrom: p.BornFrom, bornTo: p.BornTo,
			})
		case PhaseOpen:
			ws = append(ws, window{
				phase: i, kind: p.Kind, digit: -1, wave: OpenWave,
				start: p.Starts.In(loc).Add(p.Opens), end: c.OpenUntil,
			})
		}
	}
	return ws
}

// WaveWindow is one rotation wave and the booking window that draws from it.
type WaveWindow struct {
	// Wave is the quota wave: rotation day k (0-based, across all rotation
	// phases in order) is wave k+1.
	Wave int
	// Digit is the birth-day digit the day serves.
	Digit int
	// Opens and Closes bound the window; Closes is never after the
	// campaign's OpenUntil.
	Opens, Closes time.Time
}

// RotationWaves lists the campaign's rotation waves in order with their
// windows. Once a wave's window has closed nobody can book from it again;
// its unbooked share may then roll over to OpenWave (see Roller).
func (c *Campaign) RotationWaves() []WaveWindow {
	var out []WaveWindow
	for _, w := range c.windows() {
		if w.kind == PhaseRotation {
			out = append(out, WaveWindow{Wave: w.wave, Digit: w.digit, Opens: w.start, Closes: minTime(w.end, c.OpenUntil)})
		}
	}
	return out
}

// InCohort reports whether a person born on birth belongs to the campaign's
// cohort (BornFrom ≤ birth ≤ BornTo).
func (c *Campaign) InCohort(birth Date) bool {
	return !birth.IsZero() && !birth.Before(c.BornFrom) && !birth.After(c.BornTo)
}

// CanBook applies the campaign's booking phases to a person born on birth at
// instant now (in any zone: windows are instants in the campaign's zone).
//
// A person outside the cohort gets ENOTINCOHORT. Inside a window they
// qualify for (their rotation day, a catch-up window whose birth range holds
// them, the open phase) the answer is OK with the window's Wave and
// ClosesAt. Otherwise OpensAt is the start of the earliest future window they
// qualify for (zero if none) and Reason says why not now: ENOTYOURDAY inside
// another digit's rotation window, ENOTYOURWINDOW inside a catch-up window
// for other birth dates, ECLOSED between windows within the booking span,
// EOUTSIDECAMPAIGN before the first window or from OpenUntil on.
func CanBook(c *Campaign, birth Date, now time.Time) Decision {
	d := Decision{Phase: -1}
	if !c.InCohort(birth) {
		d.Reason = ENOTINCOHORT
		return d
	}
	if !now.Before(c.OpenUntil) {
		d.Reason = EOUTSIDECAMPAIGN
		return d
	}
	ws := c.windows()
	var cur *window
	for i := range ws {
		w := &ws[i]
		switch {
		case w.contains(now):
			if w.qualifies(birth) {
				return Decision{OK: true, Wave: w.wave, Phase: w.phase, ClosesAt: minTime(w.end, c.OpenUntil)}
			}
			if cur == nil {
				cur = w
			}
		case w.start.After(now) && w.start.Before(c.OpenUntil) && w.qualifies(birth):
			if d.OpensAt.IsZero() || w.start.Before(d.OpensAt) {
				d.OpensAt = w.start
			}
		}
	}
	switch {
	case cur != nil:
		d.Phase, d.ClosesAt = cur.phase, minTime(cur.end, c.OpenUntil)
		if cur.kind == PhaseRotation {
			d.Reason = ENOTYOURDAY
		} else {
			d.Reason = ENOTYOURWINDOW
		}
	case len(ws) == 0 || now.Before(ws[0].start):
		d.Reason = EOUTSIDECAMPAIGN
	default:
		d.Reason = ECLOSED
	}
	return d
}

// CanChange says whether the owner of b, born on birth, may cancel or
// reschedule it at instant now. Changes are allowed inside the person's own
// window (one they could book in), inside any window of a phase with
// ChangeOutsideWindow, and throughout the open phase; never from OpenUntil
// on. A refusal is ECHANGENOTALLOWED with OpensAt the next window in which
// the change would be allowed, or EALREADYCANCELLED when b is cancelled.
// Wave is not set: Reschedule asks CanBook for the wave it draws from.
func CanChange(c *Campaign, b *Booking, birth Date, now time.Time) Decision {
	d := Decision{Phase: -1}
	if b != nil && !b.Active() {
		d.Reason = EALREADYCANCELLED
		return d
	}
	d.Reason = ECHANGENOTALLOWED
	if !now.Before(c.OpenUntil) {
		return d
	}
	own := c.InCohort(birth)
	ws := c.windows()
	for i := range ws {
		w := &ws[i]
		allowed := w.kind == PhaseOpen || c.Phases[w.phase].ChangeOutsideWindow || (own && w.qualifies(birth))
		switch {
		case w.contains(now):
			if allowed {
				return Decision{OK: true, Phase: w.phase, ClosesAt: minTime(w.end, c.OpenUntil)}
			}
			if d.Phase < 0 {
				d.Phase, d.ClosesAt = w.phase, minTime(w.end, c.OpenUntil)
			}
		case allowed && w.start.After(now) && w.start.Before(c.OpenUntil):
			if d.OpensAt.IsZero() || w.start.Before(d.OpensAt) {
				d.OpensAt = w.start
			}
		}
	}
	return d
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// locations caches loaded zones: time.LoadLocation reads the zone database
// on every call, and CanBook sits on the hot path.
var locations sync.Map // string -> *time.Location

func loadLocation(name string) (*time.Location, error) {
	if name == "" {
		name = DefaultTimeZone
	}
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	locations.Store(name, l)
	return l, nil
}

// Location returns the campaign's time zone: TimeZone, or Asia/Seoul when it
// is "". A zone that does not load (Validate reports it) also gives
// Asia/Seoul, which the embedded zone database always holds.
func (c *Campaign) Location() *time.Location {
	l, err := loadLocation(c.TimeZone)
	if err != nil {
		l, _ = loadLocation(DefaultTimeZone)
	}
	return l
}

// Waves returns the number of quota waves: one per rotation day (across all
// rotation phases) plus OpenWave, shared by the catch-up and open phases.
func (c *Campaign) Waves() int {
	n := 1
	for i := range c.Phases {
		if c.Phases[i].Kind == PhaseRotation {
			n += max(c.Phases[i].rotationDays(), 0) // never below 1 wave, even unvalidated
		}
	}
	return n
}

// Product returns the campaign's product with the given id.
func (c *Campaign) Product(id string) (Product, bool) {
	for _, p := range c.Products {
		if p.ID == id {
			return p, true
		}
	}
	return Product{}, false
}

// DosesOf returns the number of doses in p's schedule (Doses, or 1 when 0).
func (p Product) DosesOf() int { return max(p.Doses, 1) }

// Validate checks that the campaign is complete and consistent. It returns
// EINVALID listing every problem found: missing ids, products, an empty or
// reversed cohort or vaccination range, a time zone that does not load,
// phases out of order or overlapping, rotation Days outside 1..31, a digit
// table of the wrong length or with digits outside 0..9, a rotation without a
// digit table whose length is not a multiple of 10 (so some digit would be
// served more often than another), windows whose Closes is not after Opens,
// windows ending after OpenUntil.
func (c *Campaign) Validate() error {
	if c == nil {
		return Errorf(EINVALID, "campaign is missing")
	}
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }

	if strings.TrimSpace(c.ID) == "" {
		add("id is empty")
	}
	if len(c.Products) == 0 {
		add("no products")
	}
	seen := map[string]bool{}
	for i, p := range c.Products {
		switch {
		case strings.TrimSpace(p.ID) == "":
			add("product %d has an empty id", i)
		case seen[p.ID]:
			add("product %q is listed twice", p.ID)
		}
		seen[p.ID] = true
		if p.Doses < 0 || p.IntervalDays < 0 || p.ToleranceDays < 0 {
			add("product %q has a negative doses, interval or tolerance", p.ID)
		}
		if p.Doses >= 2 && p.IntervalDays == 0 {
			add("product %q has %d doses but no interval", p.ID, p.Doses)
		}
	}
	if c.BornFrom.IsZero() || c.BornTo.IsZero() {
		add("cohort birth range is incomplete")
	} else if c.BornTo.Before(c.BornFrom) {
		add("cohort born_from %s is after born_to %s", c.BornFrom, c.BornTo)
	}
	if c.VaccinationFrom.IsZero() || c.VaccinationTo.IsZero() {
		add("vaccination date range is incomplete")
	} else if c.VaccinationTo.Before(c.VaccinationFrom) {
		add("vaccination_from %s is after vaccination_to %s", c.VaccinationFrom, c.VaccinationTo)
	}
	if _, err := loadLocation(c.TimeZone); err != nil {
		add("time zone %q does not load: %v", c.TimeZone, err)
	}
	switch c.RegistryPolicy {
	case "", FailClosed, Provisional:
	default:
		add("unknown registry policy %q", c.RegistryPolicy)
	}
	if c.OpenUntil.IsZero() {
		add("open_until is not set")
	}
	if len(c.Phases) == 0 {
		add("no booking phases")
	}
	before := len(probs)
	for i := range c.Phases {
		validatePhase(c, i, add)
	}
	if len(probs) == before && len(c.Phases) > 0 && !c.OpenUntil.IsZero() {
		validateWindows(c, add)
	}
	if len(probs) > 0 {
		return Errorf(EINVALID, "campaign %q: %s", c.ID, strings.Join(probs, "; "))
	}
	return nil
}

func validatePhase(c *Campaign, i int, add func(string, ...any)) {
	p := &c.Phases[i]
	if p.Starts.IsZero() {
		add("phase %d has no start date", i)
	}
	if p.Opens < 0 {
		add("phase %d opens before midnight (%v)", i, p.Opens)
	}
	if p.Kind != PhaseRotation && (p.Days != 0 || p.Digits != nil) {
		add("phase %d (%s) has days or digits, which only rotation phases use", i, p.Kind)
	}
	if p.Kind != PhaseCatchUp && (!p.BornFrom.IsZero() || !p.BornTo.IsZero()) {
		add("phase %d (%s) has a birth range, which only catch-up phases use", i, p.Kind)
	}
	switch p.Kind {
	case PhaseRotation:
		if p.Days < 0 || p.Days > 31 {
			add("phase %d: days %d is outside 1..31", i, p.Days)
			return
		}
		n := p.rotationDays()
		if p.Digits != nil {
			if len(p.Digits) != n {
				add("phase %d: %d digits for %d days", i, len(p.Digits), n)
			}
			for k, d := range p.Digits {
				if d < 0 || d > 9 {
					add("phase %d: digit %d of day %d is outside 0..9", i, d, k)
				}
			}
		} else if n%10 != 0 {
			add("phase %d: without a digit table a rotation must last a multiple of 10 days so every digit is served exactly once per 10 days (days %d)", i, n)
		}
		if p.Closes <= p.Opens {
			add("phase %d: closes %v is not after opens %v", i, p.Closes, p.Opens)
		} else if p.Closes-p.Opens > 24*time.Hour {
			add("phase %d: a rotation window longer than 24h overlaps the next day's", i)
		}
	case PhaseCatchUp:
		if p.Closes <= p.Opens {
			add("phase %d: closes %v is not after opens %v", i, p.Closes, p.Opens)
		}
		if !p.BornFrom.IsZero() && !p.BornTo.IsZero() && p.BornTo.Before(p.BornFrom) {
			add("phase %d: born_from %s is after born_to %s", i, p.BornFrom, p.BornTo)
		}
	case PhaseOpen:
		if i != len(c.Phases)-1 {
			add("phase %d: the open phase must be the last", i)
		}
	default:
		add("phase %d has unknown kind %q", i, p.Kind)
	}
}

// validateWindows checks the order of the windows once every phase is sound.
func validateWindows(c *Campaign, add func(string, ...any)) {
	ws := c.windows()
	for j := range ws {
		w := &ws[j]
		if !w.end.After(w.start) {
			add("phase %d: window starting %s does not end after it starts (open_until %s)", w.phase, w.start.Format(time.RFC3339), c.OpenUntil.Format(time.RFC3339))
		} else if w.end.After(c.OpenUntil) {
			add("phase %d: window ending %s ends after open_until %s", w.phase, w.end.Format(time.RFC3339), c.OpenUntil.Format(time.RFC3339))
		}
		if j > 0 && w.start.Before(ws[j-1].end) {
			if w.phase == ws[j-1].phase {
				add("phase %d: windows overlap", w.phase)
			} else {
				add("phase %d starts before phase %d ends (phases must be in order and not overlap)", w.phase, ws[j-1].phase)
			}
		}
	}
}

// AgeOn returns the international age (만 나이) on date on of a person born
// on birth: the number of birthdays they have had. A person born on 29
// February has their birthday on 1 March in non-leap years (the rule of
// Korean and most civil law: the age is reached when the day after 28
// February begins). It is negative when birth is after on.
func AgeOn(birth, on Date) int {
	age := on.Year - birth.Year
	bm, bd := birth.Month, birth.Day
	if bm == time.February && bd == 29 && !isLeap(on.Year) {
		bm, bd = time.March, 1
	}
	if on.Month < bm || (on.Month == bm && on.Day < bd) {
		age--
	}
	return age
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// CohortForAges converts an age band to a birth-date range: everyone whose
// international age (AgeOn) on asOf is in [minAge, maxAge] was born in
// [bornFrom, bornTo], both inclusive. Leap-day births follow AgeOn (the
// birthday falls on 1 March in non-leap years).
func CohortForAges(minAge, maxAge int, asOf Date) (bornFrom, bornTo Date) {
	// AgeOn is non-increasing in birth: start near the answer and step.
	bornTo = Date{asOf.Year - minAge, asOf.Month, 1}.AddDays(asOf.Day - 1)
	for AgeOn(bornTo, asOf) < minAge {
		bornTo = bornTo.AddDays(-1)
	}
	for AgeOn(bornTo.AddDays(1), asOf) >= minAge {
		bornTo = bornTo.AddDays(1)
	}
	bornFrom = Date{asOf.Year - maxAge - 1, asOf.Month, 1}.AddDays(asOf.Day - 1)
	for AgeOn(bornFrom, asOf) > maxAge {
		bornFrom = bornFrom.AddDays(1)
	}
	for AgeOn(bornFrom.AddDays(-1), asOf) <= maxAge {
		bornFrom = bornFrom.AddDays(-1)
	}
	return bornFrom, bornTo
}
