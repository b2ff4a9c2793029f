package booking

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// RollOverResult is what rolling one rotation wave over did.
type RollOverResult struct {
	CampaignID string
	Wave       int
	// Already is true when the wave had rolled over before: nothing moved
	// now, and RolledAt, QuotaRows and Doses describe that roll-over.
	Already  bool
	RolledAt time.Time
	// QuotaRows is the number of the wave's rows that had doses left.
	QuotaRows int
	// Doses is the number of unbooked doses moved to OpenWave.
	Doses int64
}

// RollOverStore is what a Roller needs; *sqlstore.DB implements it.
type RollOverStore interface {
	// Campaign returns ENOTFOUND if the campaign does not exist.
	Campaign(ctx context.Context, id string) (*Campaign, error)
	// Campaigns lists all campaigns.
	Campaigns(ctx context.Context) ([]*Campaign, error)
	// RollOverWave moves the unbooked doses of every first-dose quota row
	// of rotation wave (≥ 1) to the OpenWave row of the same clinic, date
	// and product (the row's capacity becomes what it has booked), and
	// records that the wave rolled over, in one transaction: a wave rolls
	// over exactly once, however often and concurrently it is asked, and
	// a failure before the commit moves nothing. Asked again, it returns
	// the first roll-over with Already set. Once a wave has rolled over, a
	// dose later returned to it (a cancellation) goes to OpenWave too, and
	// ApplySupply gives the wave no more than it has booked.
	RollOverWave(ctx context.Context, campaignID string, wave int, at time.Time) (RollOverResult, error)
}

// RollerConfig configures a Roller. Store is required.
type RollerConfig struct {
	// Store lists campaigns and rolls waves over.
	Store RollOverStore
	// Interval is how often Run looks for closed windows; 0 means one
	// minute.
	Interval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives one line per wave rolled over and per failure; nil
	// means slog.Default().
	Logger *slog.Logger
}

// Roller rolls rotation waves over: when a rotation day's booking window
// closes, the doses its wave did not book move to the open wave's pool,
// where the catch-up and open phases book them. It is safe to run in
// several processes at once and to run again after a crash: the store
// moves a wave's doses and records it in one transaction.
//
//	r, err := booking.NewRoller(booking.RollerConfig{Store: db})
//	go r.Run(ctx) // every minute until ctx ends
type Roller struct {
	store    RollOverStore
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger

	mu   sync.Mutex
	done map[rolledKey]bool // waves known to have rolled over: not asked again
}

type rolledKey struct {
	campaign string
	wave     int
}

// NewRoller returns a Roller, or an error if Store is missing.
func NewRoller(cfg RollerConfig) (*Roller, error) {
	if cfg.Store == nil {
		return nil, errors.New("booking: NewRoller: Store is required")
	}
	r := &Roller{store: cfg.Store, interval: cfg.Interval, now: cfg.Now, log: cfg.Logger, done: map[rolledKey]bool{}}
	if r.interval <= 0 {
		r.interval = time.Minute
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	r.log = r.log.With("component", "rollover")
	return r, nil
}

// RollOver rolls over every rotation wave of the campaign whose window
// has closed by now (Campaign.RotationWaves), in wave order, and returns
// what each did, including waves that had rolled over before (Already).
// It stops at the first error. Returns ENOTFOUND for an unknown campaign.
func (r *Roller) RollOver(ctx context.Context, campaignID string) ([]RollOverResult, error) {
	c, err := r.store.Campaign(ctx, campaignID)
	if err != nil {
		return nil, fmt.Errorf("get campaign %s: %w", campaignID, err)
	}
	return r.rollOver(ctx, c, true)
}

// rollOver rolls c's closed waves over; all=false skips the waves this
// Roller already saw rolled over.
func (r *Roller) rollOver(ctx context.Context, c *Campaign, all bool) ([]RollOverResult, error) {
	now := r.now()
	var out []RollOverResult
	for _, w := range c.RotationWaves() {
		if now.Before(w.Closes) {
			continue
		}
		k := rolledKey{c.ID, w.Wave}
		r.mu.Lock()
		known := r.done[k]
		r.mu.Unlock()
		if known && !all {
			continue
		}
		res, err := r.store.RollOverWave(ctx, c.ID, w.Wave, now)
		if err != nil {
			return out, fmt.Errorf("roll over campaign %s wave %d: %w", c.ID, w.Wave, err)
		}
		r.mu.Lock()
		r.done[k] = true
		r.mu.Unlock()
		if !res.Already {
			r.log.InfoContext(ctx, "wave rolled over", "campaign_id", c.ID, "wave", w.Wave,
				"quota_rows", res.QuotaRows, "doses", res.Doses, "closed_at", w.Closes)
		}
		out = append(out, res)
	}
	return out, nil
}

// RollOverAll does RollOver for every campaign and returns the waves that
// rolled over in this call (not those that had before). A failing
// campaign does not stop the others; the errors are joined.
func (r *Roller) RollOverAll(ctx context.Context) ([]RollOverResult, error) {
	cs, err := r.store.Campaigns(ctx)
	if err != nil {
		return nil, fmt.Errorf("list campaigns: %w", err)
	}
	var (
		out  []RollOverResult
		errs []error
	)
	for _, c := range cs {
		res, err := r.rollOver(ctx, c, false)
		for _, x := range res {
			if !x.Already {
				out = append(out, x)
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// Run calls RollOverAll now and then every Interval until ctx is done,
// logging failures (they are tried again at the next tick). It returns
// nil when ctx ends.
func (r *Roller) Run(ctx context.Context) error {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		if _, err := r.RollOverAll(ctx); err != nil && ctx.Err() == nil {
			r.log.ErrorContext(ctx, "roll-over failed; retrying at the next tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
