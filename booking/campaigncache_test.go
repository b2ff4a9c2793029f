package booking_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
)

// countingStore counts campaign and clinic reads.
type countingStore struct {
	*memStore
	reads, clinicReads atomic.Int64
}

func (c *countingStore) Clinic(ctx context.Context, id string) (*booking.Clinic, error) {
	c.clinicReads.Add(1)
	return c.memStore.Clinic(ctx, id)
}

func (c *countingStore) Campaign(ctx context.Context, id string) (*booking.Campaign, error) {
	c.reads.Add(1)
	return c.memStore.Campaign(ctx, id)
}

// TestCampaignCache: a campaign is read from the store once per
// CampaignTTL (every booking and eligibility call needs it), a changed
// campaign takes effect after the TTL, and a negative TTL reads every time.
func TestCampaignCache(t *testing.T) {
	ctx := context.Background()
	st := &countingStore{memStore: newMemStore()}
	c := booking.Campaign2021()
	if err := st.PutCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	svc, err := booking.NewService(booking.ServiceConfig{Store: st, People: &people{}, CampaignTTL: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := svc.Campaign(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.reads.Load(); n != 1 {
		t.Fatalf("10 lookups read the store %d times, want 1", n)
	}
	changed := booking.Campaign2021()
	changed.Name = "renamed"
	if err := st.PutCampaign(ctx, changed); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := svc.Campaign(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name == "renamed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a changed campaign was not seen after its TTL")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := svc.Campaign(ctx, "nope"); booking.ErrorCode(err) != booking.ENOTFOUND {
		t.Fatalf("unknown campaign: %v", err)
	}

	off, _ := booking.NewService(booking.ServiceConfig{Store: st, People: &people{}, CampaignTTL: -1})
	before := st.reads.Load()
	for range 3 {
		_, _ = off.Campaign(ctx, c.ID)
	}
	if n := st.reads.Load() - before; n != 3 {
		t.Fatalf("with the cache off 3 lookups read the store %d times", n)
	}
}

// TestClinicCache: booking reads its clinic once per CampaignTTL.
func TestClinicCache(t *testing.T) {
	f := newFixture(t, booking.FailClosed)
	st := &countingStore{memStore: f.store}
	svc, err := booking.NewService(booking.ServiceConfig{Store: st, People: f.people, Now: f.clock.Now, CampaignTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, p := range []string{"p9", "p9b"} {
		if _, err := svc.Book(ctx, booking.BookRequest{PersonID: p, CampaignID: f.c.ID, ClinicID: "c1", Date: vaxDate, Product: "pfizer"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.clinicReads.Load(); n != 1 {
		t.Fatalf("two bookings at one clinic read it %d times, want 1", n)
	}
}

// TestCalendarRefusalNeedsNoRegistry: a token whose birth date the
// calendar refuses now is answered without the registry (here down): not
// their rotation day, with when their window opens; a token the calendar
// lets through still needs the registry (fail closed: registry down).
func TestCalendarRefusalNeedsNoRegistry(t *testing.T) {
	f := newFixture(t, booking.FailClosed)
	f.people.mu.Lock()
	f.people.down = true
	f.people.mu.Unlock()
	ctx := context.Background()
	d, err := f.svc.Eligibility(ctx, "p0", f.c.ID, younger0)
	if err != nil || d.OK || d.Reason != booking.ENOTYOURDAY || d.OpensAt.IsZero() {
		t.Fatalf("wrong-day eligibility with the registry down: %+v %v", d, err)
	}
	_, err = f.svc.Book(ctx, booking.BookRequest{PersonID: "p0", CampaignID: f.c.ID, ClinicID: "c1", Date: vaxDate, Product: "pfizer", BirthDate: younger0})
	if booking.ErrorCode(err) != booking.ENOTYOURDAY {
		t.Fatalf("wrong-day booking with the registry down: %v", err)
	}
	if _, err := f.svc.Eligibility(ctx, "p9", f.c.ID, older9); booking.ErrorCode(err) != booking.EREGISTRYDOWN {
		t.Fatalf("right-day eligibility with the registry down: %v, want registry_unavailable", err)
	}
	// Without a birth date in the token the registry is needed to refuse.
	if _, err := f.svc.Eligibility(ctx, "p0", f.c.ID, booking.Date{}); booking.ErrorCode(err) != booking.EREGISTRYDOWN {
		t.Fatalf("no token birth date, registry down: %v", err)
	}
}
