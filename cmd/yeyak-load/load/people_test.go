package load

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/mocks/population"
)

func TestPickerEachPersonOnceByClass(t *testing.T) {
	pop := population.Config{Seed: 2021, People: 5000}
	p := newPicker(pop, 7, 3, nil, 0, nil)
	seen := map[string]bool{}
	today, other := 0, 0
	for {
		x, err := p.nextLocked(classToday)
		if err != nil {
			break
		}
		if x.Digit() != 3 || seen[x.ID] {
			t.Fatalf("today's class gave %s digit %d (seen %v)", x.ID, x.Digit(), seen[x.ID])
		}
		seen[x.ID] = true
		today++
	}
	for {
		x, err := p.nextLocked(classOther)
		if err != nil {
			break
		}
		if x.Digit() == 3 || seen[x.ID] {
			t.Fatalf("other class gave %s digit %d (seen %v)", x.ID, x.Digit(), seen[x.ID])
		}
		seen[x.ID] = true
		other++
	}
	if today+other != 5000 {
		t.Fatalf("walked %d + %d people of 5000", today, other)
	}
	if today < 350 || today > 650 {
		t.Errorf("%d people of digit 3 in 5000: the permutation skips people", today)
	}
	// Exhausted: next falls back to the other class, then reports none.
	if _, err := p.next(classToday); err != errNoPeople {
		t.Errorf("next after exhaustion: %v", err)
	}
}

func TestPickerSeedsAndSkip(t *testing.T) {
	pop := population.Config{Seed: 2021, People: 1000}
	first := func(p *picker, n int) []string {
		var ids []string
		for range n {
			x, err := p.next(classToday)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, x.ID)
		}
		return ids
	}
	a := first(newPicker(pop, 1, 5, nil, 0, nil), 20)
	b := first(newPicker(pop, 1, 5, nil, 0, nil), 20)
	c := first(newPicker(pop, 2, 5, nil, 0, nil), 20)
	if a[0] != b[0] || a[19] != b[19] {
		t.Error("the same seed gave different people")
	}
	if a[0] == c[0] && a[1] == c[1] {
		t.Error("another seed gave the same people")
	}
	// Skip continues where an earlier run stopped.
	d := first(newPicker(pop, 1, 5, nil, 10, nil), 10)
	for i := range d {
		if d[i] != a[10+i] {
			t.Fatalf("skip 10: %v, want %v", d, a[10:])
		}
	}
}

func TestPickerFilter(t *testing.T) {
	pop := population.Config{Seed: 2021, People: 3000}
	known := func(x population.Person) bool { return !x.Unknown }
	p := newPicker(pop, 1, 2, nil, 0, known)
	n, unknownInPop := 0, 0
	for {
		x, err := p.nextLocked(classToday)
		if err != nil {
			break
		}
		if x.Unknown {
			t.Fatalf("the filter let %s through", x.ID)
		}
		n++
	}
	for x := range population.People(pop) {
		if x.Digit() == 2 && x.Unknown {
			unknownInPop++
		}
	}
	if unknownInPop == 0 || n == 0 {
		t.Fatalf("%d people, %d unknown ones of digit 2 in the population: the test shows nothing", n, unknownInPop)
	}
}

func TestPickerNoRotationAndExplicit(t *testing.T) {
	pop := population.Config{Seed: 2021, People: 300}
	p := newPicker(pop, 1, -1, nil, 0, nil)
	n := 0
	for {
		if _, err := p.next(classOther); err != nil {
			break
		}
		n++
	}
	if n != 300 {
		t.Errorf("no rotation today: %d people, want everyone", n)
	}
	p = newPicker(pop, 1, 4, []int{7, 3, 7}, 0, nil)
	var ids []string
	for {
		x, err := p.next(classOther)
		if err != nil {
			break
		}
		ids = append(ids, x.ID)
	}
	if len(ids) != 3 || ids[0] != population.ID(7) || ids[1] != population.ID(3) {
		t.Errorf("explicit people: %v", ids)
	}
}

func TestDigitOn(t *testing.T) {
	c := &campaignInfo{}
	if d := c.digitOn(booking.MustDate("2026-01-01")); d != -1 {
		t.Errorf("no rotation: %d", d)
	}
	c.Rotation = &struct {
		Starts booking.Date `json:"starts"`
		Days   int          `json:"days"`
		Digits []int        `json:"digits"`
	}{booking.MustDate("2026-01-10"), 3, []int{0, 1, 2}}
	for day, want := range map[string]int{"2026-01-09": -1, "2026-01-10": 0, "2026-01-12": 2, "2026-01-13": -1} {
		if d := c.digitOn(booking.MustDate(day)); d != want {
			t.Errorf("digitOn(%s) = %d, want %d", day, d, want)
		}
	}
}

// TestTodayDigit reads whose day it is from the target's campaign.
func TestTodayDigit(t *testing.T) {
	now := time.Date(2030, 3, 5, 12, 0, 0, 0, time.UTC) // 21:00 in Seoul, the same day
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"campaigns":[{"id":"demo","products":[{"id":"pfizer"}],"time_zone":"Asia/Seoul",
			"vaccination":{"from":"2030-03-06","to":"2030-03-20"},
			"rotation":{"starts":"2030-03-04","days":3,"digits":[1,6,2]}}]}`))
	}))
	defer srv.Close()
	ctx := context.Background()
	if d, err := TodayDigit(ctx, srv.URL, "demo", now); err != nil || d != 6 {
		t.Errorf("digit %d %v, want 6 (the second rotation day)", d, err)
	}
	if d, err := TodayDigit(ctx, srv.URL, "demo", now.AddDate(0, 0, 5)); err != nil || d != -1 {
		t.Errorf("after the rotation: digit %d %v, want -1", d, err)
	}
	if _, err := TodayDigit(ctx, srv.URL, "nope", now); err == nil {
		t.Error("an unknown campaign was accepted")
	}
}
