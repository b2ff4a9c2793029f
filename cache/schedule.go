package cache

import (
	"context"
	"time"

	"github.com/yeyak/yeyak/booking"
)

// NextWarmDigit returns the digit of the campaign's next rotation window to
// open after now, and when it opens; ok is false when no rotation window
// opens after now (the rotation phases are over, or the campaign has none).
func NextWarmDigit(c *booking.Campaign, now time.Time) (digit int, opensAt time.Time, ok bool) {
	loc := c.Location()
	for i := range c.Phases {
		p := &c.Phases[i]
		if p.Kind != booking.PhaseRotation {
			continue
		}
		days := p.Days
		if days == 0 {
			days = booking.DefaultRotationDays
		}
		for k := range days {
			if p.Digits != nil && k >= len(p.Digits) {
				break // invalid campaign; Validate reports it
			}
			start := p.Starts.AddDays(k).In(loc).Add(p.Opens)
			if start.After(now) && (!ok || start.Before(opensAt)) {
				digit, opensAt, ok = p.RotationDigit(k), start, true
			}
		}
	}
	return digit, opensAt, ok
}

// WarmBefore is one step of the warm schedule: when the campaign's next
// rotation window opens within lead of now, it starts warming that window's
// digit group from the beginning (pausing a run for another digit), once per
// window. It reports the digit and whether it started a run now.
func (w *Warmer) WarmBefore(ctx context.Context, c *booking.Campaign, now time.Time, lead time.Duration) (digit int, started bool, err error) {
	digit, opens, ok := NextWarmDigit(c, now)
	if !ok || opens.Sub(now) > lead {
		return digit, false, nil
	}
	w.mu.Lock()
	already := w.scheduledFor.Equal(opens)
	running := w.st.State == WarmerRunning && w.st.Digit != digit
	w.mu.Unlock()
	if already {
		// This window's run was started before; if a restart interrupted
		// it, continue it where it stopped.
		started, err := w.Resume(ctx)
		return digit, started, err
	}
	if running {
		w.Pause() // the next window matters more than the last one's tail
	}
	if err := w.start(ctx, digit, true); err != nil {
		return digit, false, err
	}
	w.mu.Lock()
	w.scheduledFor = opens
	w.save()
	w.mu.Unlock()
	w.log.Info("warm schedule started a digit group", "digit", digit, "opens_at", opens, "lead", lead)
	return digit, true, nil
}

// RunSchedule first resumes a run a restart interrupted (Resume), then
// calls WarmBefore for the campaign every interval (0 means one minute)
// until ctx ends, so each rotation day's group is warmed in the
// lead hours before its window opens. It blocks: the caller owns it (run it
// on a goroutine it stops with ctx). campaign is called each time so that
// campaign changes are seen.
func (w *Warmer) RunSchedule(ctx context.Context, campaign func() *booking.Campaign, lead, interval time.Duration) {
	if interval <= 0 {
		interval = time.Minute
	}
	if _, err := w.Resume(ctx); err != nil {
		w.log.Warn("warm schedule could not resume the interrupted run", "err", err)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if c := campaign(); c != nil {
			if _, _, err := w.WarmBefore(ctx, c, w.c.cfg.Now(), lead); err != nil {
				w.log.Warn("warm schedule could not start the warmer", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
