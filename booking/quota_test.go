package booking_test

import (
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/yeyak/yeyak/booking"
)

func TestShares(t *testing.T) {
	tests := []struct {
		total, waves, start int
		want                []int
	}{
		{100, 11, 0, []int{10, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9}},
		{100, 11, 5, []int{9, 9, 9, 9, 9, 10, 9, 9, 9, 9, 9}},
		{13, 5, 3, []int{3, 2, 2, 3, 3}},  // remainder 3 wraps around: waves 3, 4, 0
		{13, 5, -2, []int{3, 2, 2, 3, 3}}, // negative start counts from the end
		{5, 10, 8, []int{1, 1, 1, 0, 0, 0, 0, 0, 1, 1}},
		{0, 3, 1, []int{0, 0, 0}},
		{-4, 2, 0, []int{0, 0}},
		{7, 1, 9, []int{7}},
		{7, 0, 0, nil},
	}
	for _, tt := range tests {
		if got := booking.Shares(tt.total, tt.waves, tt.start); !slices.Equal(got, tt.want) {
			t.Errorf("Shares(%d, %d, %d) = %v, want %v", tt.total, tt.waves, tt.start, got, tt.want)
		}
	}
}

func TestSharesProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		total := rapid.IntRange(0, 2_000_000).Draw(t, "total")
		waves := rapid.IntRange(1, 64).Draw(t, "waves")
		start := rapid.Int().Draw(t, "start")
		s := booking.Shares(total, waves, start)
		if len(s) != waves {
			t.Fatalf("len = %d, want %d", len(s), waves)
		}
		sum := 0
		for _, v := range s {
			sum += v
		}
		if sum != total {
			t.Fatalf("sum = %d, want %d", sum, total)
		}
		if slices.Max(s)-slices.Min(s) > 1 {
			t.Fatalf("shares %v differ by more than 1", s)
		}
		if !slices.Equal(s, booking.Shares(total, waves, start)) {
			t.Fatal("not deterministic")
		}
		// The remainder goes to start, start+1, … (mod waves).
		base, rem := total/waves, total%waves
		first := ((start % waves) + waves) % waves
		for i := range waves {
			want := base
			if (i-first+waves)%waves < rem {
				want++
			}
			if s[i] != want {
				t.Fatalf("wave %d has %d, want %d (start %d, remainder %d)", i, s[i], want, first, rem)
			}
		}
	})
}

func TestSplitSupply(t *testing.T) {
	c := booking.Campaign2021()
	s := booking.Supply{CampaignID: c.ID, ClinicID: "clinic-1", Date: d("2021-09-01"), Product: "pfizer", Dose: 1, Doses: 105}
	qs := booking.SplitSupply(c, s)
	if len(qs) != c.Waves() {
		t.Fatalf("%d rows, want %d", len(qs), c.Waves())
	}
	sum, extra := 0, []int{}
	for w, q := range qs {
		if q.Wave != w || q.CampaignID != c.ID || q.ClinicID != "clinic-1" || q.Date != s.Date || q.Product != "pfizer" || q.Dose != 1 || q.Booked != 0 {
			t.Errorf("row %d = %+v", w, q)
		}
		sum += q.Capacity
		if q.Capacity == 10 {
			extra = append(extra, w)
		} else if q.Capacity != 9 {
			t.Errorf("wave %d capacity %d, want 9 or 10", w, q.Capacity)
		}
	}
	if sum != 105 || len(extra) != 6 {
		t.Errorf("sum %d, extra doses on waves %v; want 105 with 6 waves holding 10", sum, extra)
	}
	// Stable for the same supply; different clinics get the remainder elsewhere.
	if !slices.Equal(qs, booking.SplitSupply(c, s)) {
		t.Error("SplitSupply is not deterministic")
	}
	starts := map[int]bool{}
	for i := range 40 {
		s2 := s
		s2.ClinicID = "clinic-" + string(rune('A'+i))
		s2.Doses = 12 // remainder 1: the start wave is the only one with 2
		for _, q := range booking.SplitSupply(c, s2) {
			if q.Capacity == 2 {
				starts[q.Wave] = true
			}
		}
	}
	if len(starts) < 4 {
		t.Errorf("remainder landed on only %d distinct waves over 40 clinics: %v", len(starts), starts)
	}

	// An unvalidated campaign with nonsense days still splits without panicking.
	bad := booking.Campaign2021()
	bad.Phases[0].Days = -40
	if qs := booking.SplitSupply(bad, s); len(qs) != 1 || qs[0].Capacity != 105 {
		t.Errorf("split with negative days = %+v, want one row of 105", qs)
	}
	if got := booking.CanBook(bad, older9, kst("2021-08-19 21:00")); !got.OK {
		t.Errorf("CanBook on an unvalidated campaign = %+v", got)
	}

	// Second-dose supply is one pool in the open wave.
	s.Dose, s.Doses = 2, 77
	if qs := booking.SplitSupply(c, s); len(qs) != 1 || qs[0].Wave != booking.OpenWave || qs[0].Capacity != 77 || qs[0].Dose != 2 {
		t.Errorf("dose-2 split = %+v, want one open-wave row of 77", qs)
	}
}

// A rotation of 10 days from any start date gives every digit exactly one
// window, and a person of the cohort may book exactly inside their window.
func TestRotationProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		start := booking.Date{Year: 2000, Month: time.January, Day: 1}.AddDays(rapid.IntRange(0, 40*366).Draw(t, "start"))
		opens := time.Duration(rapid.IntRange(0, 24*60-1).Draw(t, "opensMin")) * time.Minute
		length := time.Duration(rapid.IntRange(1, 24*60).Draw(t, "lengthMin")) * time.Minute
		c := rotationCampaign(start, 10)
		c.Phases[0].Opens, c.Phases[0].Closes = opens, opens+length
		c.OpenUntil = start.AddDays(12).In(seoul)
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		birth := booking.Date{Year: 1950, Month: time.January, Day: 1}.AddDays(rapid.IntRange(0, 40*365).Draw(t, "birth"))
		digit := birth.Day % 10

		// Every digit is served by exactly one day.
		days := map[int]int{}
		for k := range 10 {
			days[c.Phases[0].RotationDigit(k)]++
		}
		for dg := range 10 {
			if days[dg] != 1 {
				t.Fatalf("digit %d served on %d days", dg, days[dg])
			}
		}

		// Probed at each day's opening, exactly one window admits the person.
		admitted := 0
		for k := range 10 {
			if booking.CanBook(c, birth, start.AddDays(k).In(seoul).Add(opens)).OK {
				admitted++
			}
		}
		if admitted != 1 {
			t.Fatalf("born %s: admitted in %d windows, want 1", birth, admitted)
		}

		// At any instant of the rotation span, OK iff inside the person's window.
		at := start.In(seoul).Add(time.Duration(rapid.Int64Range(0, int64(12*24*time.Hour)-1).Draw(t, "at")))
		inOwn := false
		for k := range 10 {
			day := start.AddDays(k).In(seoul)
			if c.Phases[0].RotationDigit(k) == digit && !at.Before(day.Add(opens)) && at.Before(day.Add(opens+length)) {
				inOwn = true
			}
		}
		got := booking.CanBook(c, birth, at)
		if got.OK != inOwn {
			t.Fatalf("CanBook(%s, %v) = %+v, inside own window: %v", birth, at, got, inOwn)
		}
		if !got.OK && !got.OpensAt.IsZero() {
			// OpensAt is the person's window, and it is in the future.
			if !got.OpensAt.After(at) || !booking.CanBook(c, birth, got.OpensAt).OK {
				t.Fatalf("OpensAt %v is not a future window of theirs (now %v)", got.OpensAt, at)
			}
			if booking.CanBook(c, birth, got.OpensAt.Add(-time.Nanosecond)).OK {
				t.Fatalf("OpensAt %v is not the start of the window", got.OpensAt)
			}
		}
	})
}

// capsOf is SplitSupply's capacities, wave by wave.
func capsOf(qs []booking.Quota) []int {
	out := make([]int, len(qs))
	for i, q := range qs {
		out[i] = q.Capacity
	}
	return out
}

func TestRedistribute(t *testing.T) {
	c := booking.Campaign2021() // 11 waves
	s := booking.Supply{CampaignID: c.ID, ClinicID: "clinic-1", Date: d("2021-09-01"), Product: "pfizer", Dose: 1}
	at := func(doses int) booking.Supply { s2 := s; s2.Doses = doses; return s2 }
	rolled := func(ws ...int) func(int) bool {
		return func(w int) bool { return slices.Contains(ws, w) }
	}

	// Nothing booked, nothing rolled: the equal shares of SplitSupply.
	got, ok := booking.Redistribute(c, at(121), nil, nil)
	if !ok || !slices.Equal(got, capsOf(booking.SplitSupply(c, at(121)))) {
		t.Fatalf("fresh = %v, %v; want SplitSupply's shares", got, ok)
	}

	// 121 doses, 11 each. Waves 1–3 rolled over having booked 8, 10 and 5:
	// their unbooked 3+1+6 = 10 are in the open wave; the rest keep 11.
	booked := []int{4, 8, 10, 5, 2}
	got, ok = booking.Redistribute(c, at(121), booked, rolled(1, 2, 3))
	want := []int{21, 8, 10, 5, 11, 11, 11, 11, 11, 11, 11}
	if !ok || !slices.Equal(got, want) {
		t.Fatalf("rolled = %v, %v; want %v", got, ok, want)
	}

	// Cut to 55 (5 a wave): wave 2 keeps its 10 booked although its share
	// is 5; its shortfall and the others' come out of the waves with most
	// left, the later first, never below what they booked.
	got, ok = booking.Redistribute(c, at(55), booked, rolled(1, 2, 3))
	if !ok || sum(got) != 55 {
		t.Fatalf("cut = %v, %v; want 55 in total", got, ok)
	}
	for w := range got {
		b := 0
		if w < len(booked) {
			b = booked[w]
		}
		if got[w] < b || (w >= 1 && w <= 3 && got[w] != b) {
			t.Fatalf("cut: wave %d holds %d with %d booked: %v", w, got[w], b, got)
		}
	}
	// Left to book: open 0 (4 booked… gets leftovers), waves 4–10 level within 1.
	left := []int{}
	for w := 4; w < len(got); w++ {
		b := 0
		if w < len(booked) {
			b = booked[w]
		}
		left = append(left, got[w]-b)
	}
	if slices.Max(left)-slices.Min(left) > 1 {
		t.Errorf("cut: what waves 4–10 have left to book is not level: %v (caps %v)", left, got)
	}

	// Exactly what is booked is fine; one less is refused.
	if got, ok := booking.Redistribute(c, at(29), booked, nil); !ok || !slices.Equal(got[:5], booked) || sum(got) != 29 {
		t.Errorf("down to booked = %v, %v", got, ok)
	}
	if got, ok := booking.Redistribute(c, at(28), booked, nil); ok || got != nil {
		t.Errorf("below booked = %v, %v; want refused", got, ok)
	}

	// Second-dose supply is one row.
	s2 := at(30)
	s2.Dose = 2
	if got, ok := booking.Redistribute(c, s2, []int{30}, nil); !ok || !slices.Equal(got, []int{30}) {
		t.Errorf("dose 2 = %v, %v", got, ok)
	}
	if _, ok := booking.Redistribute(c, s2, []int{31}, nil); ok {
		t.Error("dose 2 below booked accepted")
	}
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// Redistribute keeps every wave at or above its bookings, rolled waves at
// exactly their bookings, the total at the supply, and what is left to
// book as level as the bookings allow.
func TestRedistributeProperties(t *testing.T) {
	c := booking.Campaign2021()
	waves := c.Waves()
	rapid.Check(t, func(t *rapid.T) {
		booked := make([]int, waves)
		isRolled := make([]bool, waves)
		total := 0
		for w := range booked {
			booked[w] = rapid.IntRange(0, 50).Draw(t, "booked")
			total += booked[w]
			isRolled[w] = w > 0 && rapid.Bool().Draw(t, "rolled")
		}
		doses := rapid.IntRange(0, 1000).Draw(t, "doses")
		s := booking.Supply{CampaignID: c.ID, ClinicID: rapid.StringMatching(`[A-Z][0-9]{3}`).Draw(t, "clinic"), Date: d("2021-09-01"), Product: "pfizer", Dose: 1, Doses: doses}
		got, ok := booking.Redistribute(c, s, booked, func(w int) bool { return isRolled[w] })
		if doses < total {
			if ok {
				t.Fatalf("%d doses below %d booked accepted: %v", doses, total, got)
			}
			return
		}
		if !ok || len(got) != waves || sum(got) != doses {
			t.Fatalf("Redistribute = %v, %v; want %d waves summing to %d", got, ok, waves, doses)
		}
		for w := range got {
			if got[w] < booked[w] || (isRolled[w] && got[w] != booked[w]) {
				t.Fatalf("wave %d: capacity %d, booked %d, rolled %v (%v)", w, got[w], booked[w], isRolled[w], got)
			}
		}
		// A wave that gave doses away (below its share, above its bookings)
		// has no more left to book than any other open wave, plus one.
		shares := capsOf(booking.SplitSupply(c, s))
		for w := range got {
			if isRolled[w] || w == booking.OpenWave || got[w] >= shares[w] || got[w] == booked[w] {
				continue
			}
			for v := 1; v < waves; v++ {
				if !isRolled[v] && got[v]-booked[v] > got[w]-booked[w]+1 {
					t.Fatalf("wave %d gave doses (cap %d, share %d) while wave %d has %d left: %v booked %v", w, got[w], shares[w], v, got[v]-booked[v], got, booked)
				}
			}
		}
		again, _ := booking.Redistribute(c, s, booked, func(w int) bool { return isRolled[w] })
		if !slices.Equal(got, again) {
			t.Fatal("not deterministic")
		}
	})
}

func TestRotationWaves(t *testing.T) {
	c := booking.Campaign2021()
	ws := c.RotationWaves()
	if len(ws) != 10 || len(ws) != c.Waves()-1 {
		t.Fatalf("%d rotation waves, want 10", len(ws))
	}
	for k, w := range ws {
		if w.Wave != k+1 || w.Digit != (9+k)%10 ||
			!w.Opens.Equal(kst("2021-08-09 20:00").AddDate(0, 0, k)) || !w.Closes.Equal(kst("2021-08-10 18:00").AddDate(0, 0, k)) {
			t.Errorf("wave %d = %+v", k+1, w)
		}
	}
	// A window is never said to close after the campaign's booking end.
	c.OpenUntil = kst("2021-08-12 12:00")
	c.Phases = c.Phases[:1]
	if w := c.RotationWaves()[2]; !w.Closes.Equal(c.OpenUntil) {
		t.Errorf("wave 3 closes %v, want OpenUntil %v", w.Closes, c.OpenUntil)
	}
}
