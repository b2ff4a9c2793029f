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
