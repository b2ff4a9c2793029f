package booking_test

import (
	"context"
	"errors"
	"iter"
	"slices"
	"testing"

	"github.com/yeyak/yeyak/booking"
)

func TestSecondDoseDates(t *testing.T) {
	p := booking.Product{ID: "pfizer", Doses: 2, IntervalDays: 42, ToleranceDays: 2}
	got := booking.SecondDoseDates(p, d("2021-09-01"))
	want := []booking.Date{d("2021-10-13"), d("2021-10-12"), d("2021-10-14"), d("2021-10-11"), d("2021-10-15")}
	if !slices.Equal(got, want) {
		t.Errorf("SecondDoseDates = %v, want %v (interval date, then nearest, earlier first)", got, want)
	}
	p.ToleranceDays = 0
	if got := booking.SecondDoseDates(p, d("2021-09-01")); !slices.Equal(got, want[:1]) {
		t.Errorf("no tolerance = %v", got)
	}
	if got := booking.SecondDoseDates(booking.Product{ID: "janssen"}, d("2021-09-01")); got != nil {
		t.Errorf("single dose = %v, want nil", got)
	}
}

// candidates yields slots and counts how many were pulled.
type candidates struct {
	slots  []booking.Slot
	pulled int
}

func (c *candidates) seq() iter.Seq[booking.Slot] {
	return func(yield func(booking.Slot) bool) {
		for _, s := range c.slots {
			c.pulled++
			if !yield(s) {
				return
			}
		}
	}
}

func TestAssign(t *testing.T) {
	ctx := context.Background()
	slot := func(clinic, date, product string) booking.Slot {
		return booking.Slot{ClinicID: clinic, Date: d(date), Product: product}
	}
	t.Run("first with stock wins, the rest is not read", func(t *testing.T) {
		f := newFixture(t, booking.FailClosed)
		c := &candidates{slots: []booking.Slot{
			slot("c2", "2021-09-02", "pfizer"), // no quota that day: sold out
			slot("c1", "2021-09-01", "pfizer"),
			slot("c2", "2021-09-01", "pfizer"),
		}}
		b, err := f.svc.Assign(ctx, booking.AssignRequest{PersonID: "p9", CampaignID: f.c.ID, Candidates: c.seq()})
		if err != nil || b.ClinicID != "c1" || b.LinkedID == "" {
			t.Fatalf("Assign = %+v, %v", b, err)
		}
		if c.pulled != 2 {
			t.Errorf("pulled %d candidates, want 2", c.pulled)
		}
		if f.booked("c1", 1) != 1 || f.booked("c2", 1) != 0 {
			t.Errorf("booked c1 %d, c2 %d", f.booked("c1", 1), f.booked("c2", 1))
		}
	})
	t.Run("filters by product and dates", func(t *testing.T) {
		f := newFixture(t, booking.FailClosed)
		c := &candidates{slots: []booking.Slot{
			slot("c3", "2021-09-01", "moderna"),
			slot("c1", "2021-09-01", "pfizer"),
			slot("c2", "2021-09-01", "pfizer"),
		}}
		b, err := f.svc.Assign(ctx, booking.AssignRequest{PersonID: "p9", CampaignID: f.c.ID, Product: "pfizer",
			Dates: []booking.Date{vaxDate}, Candidates: c.seq()})
		if err != nil || b.ClinicID != "c1" {
			t.Fatalf("Assign = %+v, %v", b, err)
		}
		b, err = f.svc.Assign(ctx, booking.AssignRequest{PersonID: "p9b", CampaignID: f.c.ID, Dates: []booking.Date{d("2021-09-05")}, Candidates: c.seq()})
		if booking.ErrorCode(err) != booking.ESOLDOUT || b != nil {
			t.Fatalf("no candidate on the dates = %+v, %v; want sold_out", b, err)
		}
	})
	t.Run("sold out only when none had stock", func(t *testing.T) {
		f := newFixture(t, booking.FailClosed)
		c := &candidates{slots: []booking.Slot{slot("c2", "2021-09-02", "pfizer"), slot("c2", "2021-09-03", "pfizer")}}
		before := len(f.store.allEvents())
		_, err := f.svc.Assign(ctx, booking.AssignRequest{PersonID: "p9", CampaignID: f.c.ID, Candidates: c.seq()})
		wantCode(t, err, booking.ESOLDOUT)
		if c.pulled != 2 || len(f.store.allEvents()) != before {
			t.Errorf("pulled %d, wrote %d events", c.pulled, len(f.store.allEvents())-before)
		}
		_, err = f.svc.Assign(ctx, booking.AssignRequest{PersonID: "p9", CampaignID: f.c.ID, Candidates: (&candidates{}).seq()})
		wantCode(t, err, booking.ESOLDOUT)
	})
	t.Run("dose 2 gone: next candidate", func(t *testing.T) {
		f := newFixture(t, booking.FailClosed)
		// c2 has dose 1 on 09-02 but no dose 2 within 10-14 ± 3.
		if err := f.store.SetQuotas(ctx, booking.SplitSupply(f.c, booking.Supply{CampaignID: f.c.ID, ClinicID: "c2", Date: d("2021-09-02"), Product: "pfizer", Dose: 1, Doses: 11})); err != nil {
			t.Fatal(err)
		}
		if err := f.store.SetQuotas(ctx, []booking.Quota{{CampaignID: f.c.ID, ClinicID: "c2", Date: dose2Date, Product: "pfizer", Dose: 2, Capacity: 0}}); err != nil {
			t.Fatal(err)
		}
		c := &candidates{slots: []booking.Slot{slot("c2", "2021-09-02", "pfizer"), slot("c1", "2021-09-01", "pfizer")}}
		b, err := f.svc.Assign(ctx, booking.AssignRequest{PersonID: "p9", CampaignID: f.c.ID, Candidates: c.seq()})
		if err != nil || b.ClinicID != "c1" {
			t.Fatalf("Assign = %+v, %v; want the second candidate", b, err)
		}
	})
	t.Run("other errors stop", func(t *testing.T) {
		f := newFixture(t, booking.FailClosed)
		if _, err := f.svc.Book(ctx, f.req("p9")); err != nil {
			t.Fatal(err)
		}
		c := &candidates{slots: []booking.Slot{slot("c1", "2021-09-01", "pfizer"), slot("c2", "2021-09-01", "pfizer")}}
		_, err := f.svc.Assign(ctx, booking.AssignRequest{PersonID: "p9", CampaignID: f.c.ID, Candidates: c.seq()})
		wantCode(t, err, booking.EALREADYBOOKED)
		if c.pulled != 1 {
			t.Errorf("went on after already_booked: pulled %d", c.pulled)
		}
		c = &candidates{slots: []booking.Slot{slot("c404", "2021-09-01", "pfizer"), slot("c1", "2021-09-01", "pfizer")}}
		_, err = f.svc.Assign(ctx, booking.AssignRequest{PersonID: "p9b", CampaignID: f.c.ID, Candidates: c.seq()})
		wantCode(t, err, booking.EINVALID)
		// Refusals come before any candidate is read.
		c = &candidates{slots: []booking.Slot{slot("c1", "2021-09-01", "pfizer")}}
		_, err = f.svc.Assign(ctx, booking.AssignRequest{PersonID: "p0", CampaignID: f.c.ID, Candidates: c.seq()})
		wantCode(t, err, booking.ENOTYOURDAY)
		_, err = f.svc.Assign(ctx, booking.AssignRequest{PersonID: "done", CampaignID: f.c.ID, Product: "pfizer", Candidates: c.seq()})
		wantCode(t, err, booking.ENOTELIGIBLE)
		if c.pulled != 0 {
			t.Errorf("candidates read for a refused person: %d", c.pulled)
		}
		_, err = f.svc.Assign(ctx, booking.AssignRequest{PersonID: "done", CampaignID: f.c.ID, Candidates: c.seq()})
		wantCode(t, err, booking.ENOTELIGIBLE) // every candidate's product is done
		_, err = f.svc.Assign(ctx, booking.AssignRequest{PersonID: "p9b", CampaignID: f.c.ID})
		wantCode(t, err, booking.EINVALID)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		c = &candidates{slots: []booking.Slot{slot("c1", "2021-09-01", "pfizer")}}
		if _, err := f.svc.Assign(cctx, booking.AssignRequest{PersonID: "p9b", CampaignID: f.c.ID, Candidates: c.seq()}); !errors.Is(err, context.Canceled) {
			t.Errorf("Assign with a dead context = %v", err)
		}
	})
}

func TestBookSecondDoseRules(t *testing.T) {
	ctx := context.Background()
	t.Run("nothing held without dose 2", func(t *testing.T) {
		f := newFixture(t, booking.FailClosed)
		r := f.req("p9")
		r.Date = d("2021-09-02") // c1 has dose 1 there but no dose 2 on 10-14 ± 3
		if err := f.store.SetQuotas(ctx, booking.SplitSupply(f.c, booking.Supply{CampaignID: f.c.ID, ClinicID: "c1", Date: r.Date, Product: "pfizer", Dose: 1, Doses: 11})); err != nil {
			t.Fatal(err)
		}
		// 10-13 (one day early, within the tolerance) is full.
		k := quotaKey{f.c.ID, "c1", dose2Date, "pfizer", 2, booking.OpenWave}
		if err := f.store.SetQuotas(ctx, []booking.Quota{{CampaignID: f.c.ID, ClinicID: "c1", Date: dose2Date, Product: "pfizer", Dose: 2, Capacity: 0}}); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.Book(ctx, r)
		wantCode(t, err, booking.ESECONDDOSE)
		if q := f.store.quota(quotaKeyOf(f.c.ID, "c1", r.Date, 1, 1)); q.Booked != 0 || f.store.quota(k).Booked != 0 || len(f.store.allEvents()) != 0 {
			t.Fatalf("second_dose_unavailable held a dose: %+v", q)
		}
	})
	t.Run("a later dose alone, up to the dose-2 dates", func(t *testing.T) {
		f := newFixture(t, booking.FailClosed)
		r := f.req("onedose")
		r.Date = dose2Date
		b, err := f.svc.Book(ctx, r)
		if err != nil || b.Dose != 2 || b.LinkedID != "" || b.Wave != booking.OpenWave {
			t.Fatalf("dose 2 alone = %+v, %v", b, err)
		}
		r = f.req("p9")
		r.Date = dose2Date // beyond the vaccination dates for a dose 1
		_, err = f.svc.Book(ctx, r)
		wantCode(t, err, booking.EINVALID)
	})
}

func quotaKeyOf(campaign, clinic string, date booking.Date, dose, wave int) quotaKey {
	return quotaKey{campaign, clinic, date, "pfizer", dose, wave}
}
