package httpapi_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/httpapi"
)

// countingSource counts the snapshot's reads.
type countingSource struct {
	httpapi.SnapshotSource
	campaigns, changes atomic.Int64
}

func (c *countingSource) Campaigns(ctx context.Context) ([]*booking.Campaign, error) {
	c.campaigns.Add(1)
	return c.SnapshotSource.Campaigns(ctx)
}

func (c *countingSource) QuotasChangedSince(ctx context.Context, id string, v int64) ([]booking.Quota, int64, error) {
	c.changes.Add(1)
	return c.SnapshotSource.QuotasChangedSince(ctx, id, v)
}

// TestSnapshotPokesRefreshButDoNotReload: every poke (a booking on this
// instance) refreshes the quota rows, but campaigns and clinics are
// reloaded by time only — a busy instance must not reread every clinic
// many times a second.
func TestSnapshotPokesRefreshButDoNotReload(t *testing.T) {
	e := newEnv(t, backends[0].dsn(t), nil)
	src := &countingSource{SnapshotSource: e.db}
	snap := httpapi.NewSnapshot(src, httpapi.SnapshotConfig{Interval: time.Hour, ReloadEvery: 2})
	if err := snap.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	loads := src.campaigns.Load()
	for i := range 50 {
		before := src.changes.Load()
		snap.Poke()
		deadline := time.Now().Add(5 * time.Second)
		for src.changes.Load() == before {
			if time.Now().After(deadline) {
				t.Fatalf("poke %d did not refresh", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if got := src.campaigns.Load(); got != loads {
		t.Fatalf("50 pokes reloaded campaigns %d times", got-loads)
	}
}
