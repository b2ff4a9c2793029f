package main

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/httpapi"
	"github.com/yeyak/yeyak/booking/httpapi/guard"
)

// newGuards builds the abuse limits (per address at the edge, per person
// and one session per person in the booking flow) from the configuration.
func newGuards(cfg *config, rdb redis.UniversalClient, rotation *rotationClock, reg prometheus.Registerer, now func() time.Time,
	log *slog.Logger) (*guard.Guard, *guard.Sessions, error) {
	var proxies []string
	for p := range strings.SplitSeq(cfg.TrustedProxies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			proxies = append(proxies, p)
		}
	}
	g, err := guard.New(guard.Config{
		TrustedProxies: proxies,
		PersonRate:     cfg.RatePerson, PersonBurst: cfg.RatePersonBurst,
		AddrRate: cfg.RateAddr, AddrBurst: cfg.RateAddrBurst, MaxInFlightPerAddr: cfg.AddrInFlight,
		Registerer: reg, Logger: log, Now: now,
	})
	if err != nil {
		return nil, nil, err
	}
	if cfg.Sessions == "off" {
		log.Warn("one-active-session rule off (--sessions off)")
		return g, nil, nil
	}
	scfg := guard.SessionConfig{Window: cfg.SessionWindow, HashKey: []byte(cfg.PersonKey), Registerer: reg, Logger: log, Now: now}
	if cfg.Sessions == "rotation" {
		scfg.Enforce = rotation.during
	}
	if rdb != nil {
		st, err := guard.NewRedisSessionStore(guard.RedisStoreConfig{Client: rdb, KeyPrefix: cfg.RedisPrefix})
		if err != nil {
			return nil, nil, err
		}
		scfg.Store = st
	}
	s, err := guard.NewSessions(scfg)
	if err != nil {
		return nil, nil, err
	}
	return g, s, nil
}

// rotationClock answers "is a rotation window of some campaign open now?"
// from the campaigns, re-read every minute.
type rotationClock struct {
	windows atomic.Pointer[[]booking.WaveWindow]
}

func (r *rotationClock) set(cs []*booking.Campaign) {
	var ws []booking.WaveWindow
	for _, c := range cs {
		ws = append(ws, c.RotationWaves()...)
	}
	r.windows.Store(&ws)
}

func (r *rotationClock) during(now time.Time) bool {
	ws := r.windows.Load()
	if ws == nil {
		return false
	}
	for _, w := range *ws {
		if !now.Before(w.Opens) && now.Before(w.Closes) {
			return true
		}
	}
	return false
}

// follow re-reads the campaigns every minute until ctx ends.
func (r *rotationClock) follow(ctx context.Context, campaigns func(context.Context) ([]*booking.Campaign, error), log *slog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cs, err := campaigns(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("re-read campaigns for the session rule", "err", err)
			}
			continue
		}
		r.set(cs)
	}
}

// identityOf reads the verified identity the API put in the context.
var identityOf guard.IdentityFunc = httpapi.IdentityFrom

// withFlow adds the per-person limit and the session rule to the API's
// booking flow, ahead of the waiting room.
func withFlow(acfg *httpapi.Config, g *guard.Guard, s *guard.Sessions) {
	flow := []func(http.Handler) http.Handler{g.PersonLimit(identityOf)}
	if s != nil {
		flow = append(flow, s.Middleware(identityOf))
		acfg.EndSession = s.End
	}
	acfg.Flow = append(flow, acfg.Flow...)
	acfg.Edge = g.Edge
}
