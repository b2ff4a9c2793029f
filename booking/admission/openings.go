package admission

import (
	"slices"
	"time"

	"github.com/yeyak/yeyak/booking"
)

// OpeningsOf returns the times the campaign's booking windows open: each
// rotation day's window, each catch-up window and the open phase, in order
// and without duplicates, for Config.Openings.
func OpeningsOf(c *booking.Campaign) []time.Time {
	loc := c.Location()
	var out []time.Time
	for i := range c.Phases {
		p := &c.Phases[i]
		switch p.Kind {
		case booking.PhaseRotation:
			days := p.Days
			if days == 0 {
				days = booking.DefaultRotationDays
			}
			if p.Digits != nil {
				days = min(days, len(p.Digits))
			}
			for k := range days {
				out = append(out, p.Starts.AddDays(k).In(loc).Add(p.Opens))
			}
		default:
			out = append(out, p.Starts.In(loc).Add(p.Opens))
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return slices.CompactFunc(out, func(a, b time.Time) bool { return a.Equal(b) })
}
