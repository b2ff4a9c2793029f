package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/adapter/oracle"
	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/cache"
	"github.com/yeyak/yeyak/mocks/population"
)

// warmRoster picks who the pre-warmer loads (--warm-roster): nil when off.
func warmRoster(cfg *config, reg adapter.Registry, d *demo, campaigns []*booking.Campaign) (cache.Roster, string, error) {
	switch v := cfg.WarmRoster; {
	case v == "off":
		return nil, "off", nil
	case v == "registry" || v == "" && strings.HasPrefix(cfg.Registry, "oracle"):
		o, ok := reg.(*oracle.Registry)
		if !ok {
			return nil, "", fmt.Errorf("--warm-roster registry needs --registry oracle:…")
		}
		var rc oracle.RosterConfig
		if len(campaigns) > 0 { // the union of the cohorts
			rc.BornFrom, rc.BornTo = campaigns[0].BornFrom, campaigns[0].BornTo
			for _, c := range campaigns[1:] {
				rc.BornFrom, rc.BornTo = minDate(rc.BornFrom, c.BornFrom), maxDate(rc.BornTo, c.BornTo)
			}
		}
		return o.Roster(rc), "registry person master", nil
	case v == "" && d != nil:
		ids := make([]string, 0, d.pop.Size())
		for p := range population.People(d.pop) {
			ids = append(ids, p.ID)
		}
		return cache.NewSliceRoster(ids, func(id string) int {
			i, _ := population.IndexOf(id)
			return population.PersonAt(d.pop, i).Digit()
		}), "demo population", nil
	case v == "":
		return nil, "off (no roster: give --warm-roster FILE)", nil
	default:
		r, err := cache.OpenRosterFile(v)
		if err != nil {
			return nil, "", fmt.Errorf("--warm-roster: %w", err)
		}
		return r, "file " + v, nil
	}
}

func minDate(a, b booking.Date) booking.Date {
	if b.Before(a) {
		return b
	}
	return a
}

func maxDate(a, b booking.Date) booking.Date {
	if b.After(a) {
		return b
	}
	return a
}

// startWarmer attaches the pre-warmer to the cache and runs its schedule:
// before each rotation window opens (--warm-lead), the digit group it
// serves is loaded in bulk at --warm-rate. Ops start, pause and inspect it
// at /ops/warmer. It stops with ctx.
func startWarmer(ctx context.Context, wg *sync.WaitGroup, cfg *config, people *cache.Cache, roster cache.Roster,
	campaigns func(context.Context) ([]*booking.Campaign, error), now func() time.Time, log *slog.Logger) error {
	w, err := cache.NewWarmer(people, cache.WarmerConfig{Roster: roster, ChunksPerSecond: cfg.WarmRate, StateFile: cfg.WarmState, Logger: log})
	if err != nil {
		return err
	}
	var next atomic.Pointer[booking.Campaign]
	pick := func() {
		cs, err := campaigns(ctx)
		if err != nil {
			log.Warn("warm schedule: campaigns", "err", err)
			return
		}
		var best *booking.Campaign
		var bestAt time.Time
		for _, c := range cs {
			if _, at, ok := cache.NextWarmDigit(c, now()); ok && (best == nil || at.Before(bestAt)) {
				best, bestAt = c, at
			}
		}
		next.Store(best)
	}
	pick()
	wg.Go(func() {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				pick()
			}
		}
	})
	wg.Go(func() { w.RunSchedule(ctx, next.Load, cfg.WarmLead, time.Minute) })
	return nil
}
