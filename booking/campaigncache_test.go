package booking_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
)

// countingStore counts campaign reads.
type countingStore struct {
	*memStore
	reads atomic.Int64
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
