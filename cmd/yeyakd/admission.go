package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/admission"
	"github.com/yeyak/yeyak/booking/httpapi"
)

// parseAdmissionKeys reads --admission-keys: id:secret[,id:secret…]. An
// empty value gives no keys (the caller makes a random one).
func parseAdmissionKeys(v string) ([]admission.Key, error) {
	var keys []admission.Key
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, secret, ok := strings.Cut(part, ":")
		if !ok || id == "" {
			return nil, errors.New("--admission-keys: want id:secret[,id:secret…]")
		}
		if len(secret) < 16 {
			return nil, fmt.Errorf("--admission-keys: the secret of key %q must be at least 16 bytes", id)
		}
		keys = append(keys, admission.Key{ID: id, Secret: []byte(secret)})
	}
	return keys, nil
}

// redisOptions parses --redis.
func redisOptions(url string) (*redis.Options, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("--redis: %w", err)
	}
	// Every user of the client bounds its own calls; keep dials short so
	// a Redis outage degrades to the in-process tiers quickly.
	o.DialTimeout = 500 * time.Millisecond
	o.ReadTimeout = 500 * time.Millisecond
	o.WriteTimeout = 500 * time.Millisecond
	return o, nil
}

// newAdmission builds the waiting room from the configuration; the
// openings are those of every campaign in the store at start.
func newAdmission(cfg *config, campaigns []*booking.Campaign, v httpapi.Verifier, rdb redis.UniversalClient,
	reg prometheus.Registerer, now func() time.Time, log *slog.Logger) (*admission.Controller, error) {
	keys, err := parseAdmissionKeys(cfg.AdmissionKeys)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		secret := make([]byte, 32)
		_, _ = rand.Read(secret)
		keys = []admission.Key{{ID: "local", Secret: secret}}
		if !cfg.Demo {
			log.Warn("admission: no --admission-keys: a random key per process; passes do not survive a restart nor cross instances")
		}
	}
	var openings []time.Time
	for _, c := range campaigns {
		openings = append(openings, admission.OpeningsOf(c)...)
	}
	openings = spreadOpenings(openings, cfg.AdmissionPreOpen)
	acfg := admission.Config{
		Keys: keys, PersonFunc: httpapi.PersonOf(v),
		Floor: cfg.AdmissionFloor, Ceiling: cfg.AdmissionCeiling, Initial: cfg.AdmissionInitial,
		PassTTL: cfg.AdmissionPassTTL, PreOpening: cfg.AdmissionPreOpen, Openings: openings,
		Law: admissionLaw(cfg), Now: now, Registerer: reg, Logger: log,
	}
	if rdb != nil {
		acfg.Store = admission.NewRedisStore(rdb, cfg.RedisPrefix+"queue:")
	}
	adm, err := admission.New(acfg)
	if err != nil {
		return nil, err
	}
	log.Info("admission on", "floor", cfg.AdmissionFloor, "ceiling", cfg.AdmissionCeiling, "openings", len(openings),
		"store", map[bool]string{true: "redis", false: "memory"}[rdb != nil])
	return adm, nil
}

// admissionLaw is the control law's settings from the flags (the rest
// are the admission package's defaults).
func admissionLaw(cfg *config) admission.Law {
	return admission.Law{TargetP90: cfg.AdmissionP90, TargetP99: cfg.AdmissionP99, MaxSchedLatency: cfg.AdmissionMaxSched}
}

// spreadOpenings keeps the openings at least preOpening apart (several
// campaigns may open at the same hour, or a campaign's windows may be
// closer than the shuffle window): of two that are too close, the later
// one is dropped, so its arrivals queue first-come-first-served.
func spreadOpenings(ts []time.Time, preOpening time.Duration) []time.Time {
	sorted := make([]time.Time, len(ts))
	copy(sorted, ts)
	for i := 1; i < len(sorted); i++ {
		for j := i; j > 0 && sorted[j].Before(sorted[j-1]); j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	var out []time.Time
	for _, t := range sorted {
		if len(out) > 0 && t.Sub(out[len(out)-1]) <= preOpening {
			continue
		}
		out = append(out, t)
	}
	return out
}

// admissionObserver is what observeAdmission feeds (*admission.Controller).
type admissionObserver interface {
	Observe(latency time.Duration, failed bool)
	ObserveWrite(latency time.Duration, failed bool)
}

// observeAdmission feeds the waiting room's control law from the booking
// flow's responses: the writes (book, assign, change, cancel) as writes,
// judged on their own, the reads as reads. An answer that the registry is
// unavailable is not the booking path's health but the cache's and the
// breaker's business: it must not shrink admission for everyone (nor
// count its wait on the registry's deadline), so it is left out.
func observeAdmission(adm admissionObserver) func(route string, status int, code booking.Code, elapsed time.Duration) {
	return func(route string, status int, code booking.Code, elapsed time.Duration) {
		if code == booking.EREGISTRYDOWN {
			return
		}
		if strings.HasPrefix(route, "POST ") || strings.HasPrefix(route, "DELETE ") {
			adm.ObserveWrite(elapsed, status >= 500)
			return
		}
		adm.Observe(elapsed, status >= 500)
	}
}

// watchHost feeds the admission law with what the process sees of its
// host, each second: the database pool's wait (the mean wait of the
// requests that had to wait for a connection, zero when none did) and the
// p99 of the goroutines' scheduling latency (runnable, waiting for a CPU).
func watchHost(ctx context.Context, db *sqlx.DB, adm *admission.Controller) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := db.Stats()
	sched := admission.NewSchedSampler(0.99)
	sched.Sample()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := db.Stats()
		var mean time.Duration
		if n := st.WaitCount - last.WaitCount; n > 0 {
			mean = (st.WaitDuration - last.WaitDuration) / time.Duration(n)
		}
		adm.ObservePoolWait(mean)
		adm.ObserveSchedLatency(sched.Sample())
		last = st
	}
}

// bounded serves h with at most n requests at work at once; the others wait
// their turn (or their client's patience). The waiting room's joins and
// polls (and the demo's sign-ins) arrive by the tens of thousands in a
// surge, each costing a token verification: bounded, they cannot take the
// CPU the admitted people's bookings need.
func bounded(h http.Handler, n int) http.Handler { return newLane(n).bound(h) }

// lane is a bound on requests at work at once, shared by every handler
// bound to it.
type lane chan struct{}

// newLane returns a lane of n requests at once.
func newLane(n int) lane { return make(lane, n) }

// bound serves h within the lane: a request waits its turn (or until its
// client leaves, when nothing is done).
func (sem lane) bound(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case sem <- struct{}{}:
		case <-r.Context().Done():
			return // the client left; nothing was done
		}
		defer func() { <-sem }()
		h.ServeHTTP(w, r)
	})
}
