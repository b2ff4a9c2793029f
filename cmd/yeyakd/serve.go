package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/adapter/gateway"
	"github.com/yeyak/yeyak/adapter/oracle"
	"github.com/yeyak/yeyak/adapter/registrysync"
	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/admission"
	"github.com/yeyak/yeyak/booking/httpapi"
	"github.com/yeyak/yeyak/booking/httpapi/auth"
	"github.com/yeyak/yeyak/booking/httpapi/guard"
	"github.com/yeyak/yeyak/booking/sqlstore"
	"github.com/yeyak/yeyak/cache"
	"github.com/yeyak/yeyak/mocks/registry"
	"github.com/yeyak/yeyak/outbox"
)

func migrate(ctx context.Context, cfg *config, stdout io.Writer) error {
	db, err := sqlstore.Open(ctx, cfg.DB, sqlstore.Options{})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer db.Close()
	if err := db.Ping(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}

// sqlIdempotency adapts *sqlstore.DB to httpapi.IdempotencyStore.
type sqlIdempotency struct{ db *sqlstore.DB }

func (s sqlIdempotency) Claim(ctx context.Context, personID, key, hash string) (*httpapi.IdempotencyRecord, bool, error) {
	rec, claimed, err := s.db.ClaimIdempotencyKey(ctx, personID, key, hash)
	if err != nil || claimed {
		return nil, claimed, err
	}
	return &httpapi.IdempotencyRecord{RequestHash: rec.RequestHash, Status: rec.StatusCode, Body: rec.ResponseBody}, false, nil
}

func (s sqlIdempotency) Complete(ctx context.Context, personID, key string, status int, body []byte) error {
	return s.db.CompleteIdempotencyKey(ctx, personID, key, status, body)
}

func (s sqlIdempotency) Release(ctx context.Context, personID, key string) error {
	return s.db.ReleaseIdempotencyKey(ctx, personID, key)
}

// openRegistry builds the legacy registry port from --registry.
func openRegistry(cfg *config, d *demo, log *slog.Logger) (adapter.Registry, error) {
	switch {
	case cfg.Registry == "mock":
		if d != nil {
			return d.registry, nil
		}
		log.Warn("using the in-memory mock registry (synthetic population); production needs --registry gateway:URL or oracle:DSN")
		return registry.New(registry.Config{Logger: log}), nil
	case strings.HasPrefix(cfg.Registry, "gateway:"):
		return gateway.New(gateway.Config{BaseURL: strings.TrimPrefix(cfg.Registry, "gateway:"), Logger: log})
	case strings.HasPrefix(cfg.Registry, "oracle:"):
		return oracle.Open(oracle.Config{DSN: strings.TrimPrefix(cfg.Registry, "oracle:")})
	case strings.HasPrefix(cfg.Registry, "oracle+pgx:"):
		// The same adapter and SQL on the PostgreSQL copy of the legacy
		// schema (registry-mock --sql): how the adapter is tested here.
		return oracle.Open(oracle.Config{Driver: "pgx", DSN: strings.TrimPrefix(cfg.Registry, "oracle+pgx:")})
	}
	return nil, fmt.Errorf("--registry %q: want mock, gateway:URL, oracle:DSN or oracle+pgx:DSN", cfg.Registry)
}

// closeRegistry closes reg if it holds resources (a database pool).
func closeRegistry(reg adapter.Registry, log *slog.Logger) {
	if c, ok := reg.(io.Closer); ok {
		if err := c.Close(); err != nil {
			log.Warn("close registry", "err", err)
		}
	}
}

// serve runs the configured roles until ctx is done, then shuts down:
// stop accepting, let in-flight requests finish (bounded), stop the
// background roles, close the database.
func serve(ctx context.Context, cfg *config, log *slog.Logger, stdout io.Writer) error {
	now := cfg.clock()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	db, err := sqlstore.Open(ctx, cfg.DB, sqlstore.Options{OutboxNotify: sqlstore.NotifyMode(cfg.OutboxNotify), MaxOpenConns: cfg.DBMaxConns})
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			log.Error("close database", "err", err)
		}
	}()

	var d *demo
	if cfg.Demo {
		if d, err = newDemo(ctx, cfg, db, now, log); err != nil {
			return err
		}
	}
	reg0, err := openRegistry(cfg, d, log)
	if err != nil {
		return err
	}
	defer closeRegistry(reg0, log)
	var rdb *redis.Client
	if cfg.Redis != "" {
		opts, _ := redisOptions(cfg.Redis) // validated with the config
		rdb = redis.NewClient(opts)
		defer rdb.Close()
		if err := rdb.Ping(ctx).Err(); err != nil {
			// Every Redis user degrades to its in-process tier; say so once.
			log.Warn("redis unreachable at start; running on in-process state until it answers", "err", err)
		}
	}
	fcfg := adapter.FacadeConfig{Registerer: reg, Logger: log}
	if rdb != nil {
		fcfg.Shared = &adapter.SharedConfig{Client: rdb, KeyPrefix: cfg.RedisPrefix + "breaker:"}
	}
	facade, err := adapter.NewFacade(reg0, fcfg)
	if err != nil {
		return fmt.Errorf("registry facade: %w", err)
	}
	defer facade.Close()
	ccfg := cache.Config{Registerer: reg, Logger: log, Now: now}
	if rdb != nil {
		ccfg.Redis, ccfg.KeyPrefix = rdb, cfg.RedisPrefix
	}
	people, err := cache.New(facade, ccfg)
	if err != nil {
		return fmt.Errorf("eligibility cache: %w", err)
	}
	defer people.Close()
	svc, err := booking.NewService(booking.ServiceConfig{Store: db, People: people, Now: now, Logger: log})
	if err != nil {
		return err
	}

	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	defer func() { stopBG(); wg.Wait() }()

	// The pre-warmer: each rotation day's digit group, loaded before it opens.
	if cfg.Role == "all" || cfg.Role == "api" {
		cs, err := svc.Campaigns(ctx)
		if err != nil {
			return err
		}
		roster, what, err := warmRoster(cfg, reg0, d, cs)
		if err != nil {
			return err
		}
		if roster != nil {
			if err := startWarmer(bg, &wg, cfg, people, roster, svc.Campaigns, now, log); err != nil {
				return fmt.Errorf("pre-warmer: %w", err)
			}
		}
		log.Info("pre-warmer", "roster", what, "lead", cfg.WarmLead.String(), "chunks_per_second", cfg.WarmRate)
	}

	// Kafka, the relay and the sync consumer.
	var brokers []string
	if cfg.Kafka == "embedded" {
		if !cfg.Demo {
			log.Warn("--kafka embedded keeps nothing across restarts: events published but not yet applied to the registry are lost with the process; use a Kafka cluster in production")
		}
		var stopKafka func()
		brokers, stopKafka, err = outbox.StartEmbeddedKafka(ctx, []string{outbox.DefaultTopic, outbox.DefaultTopic + outbox.DeadLetterSuffix}, 0)
		if err != nil {
			return fmt.Errorf("embedded kafka: %w", err)
		}
		defer stopKafka()
	} else {
		brokers = strings.Split(cfg.Kafka, ",")
	}
	var relay *outbox.Relay
	var consumers []func() outbox.ConsumerStats
	republish := outbox.NewWriter(brokers, "", outbox.WriterConfig{})
	defer republish.Close()
	if cfg.Role == "all" || cfg.Role == "relay" {
		w := outbox.NewWriter(brokers, outbox.DefaultTopic, outbox.WriterConfig{})
		defer w.Close()
		rm := outbox.NewRelayMetrics()
		if err := rm.Register(reg); err != nil {
			return err
		}
		if relay, err = outbox.NewRelay(db.DB(), string(db.Dialect()), w, outbox.RelayConfig{Metrics: rm, Logger: log}); err != nil {
			return fmt.Errorf("relay: %w", err)
		}
		wg.Go(func() {
			if err := relay.Run(bg); err != nil && bg.Err() == nil {
				log.Error("relay stopped", "err", err)
			}
		})
	}
	if cfg.Role == "all" || cfg.Role == "sync" {
		h, err := registrysync.New(registrysync.Config{Registry: facade, Verifier: svc, Invalidate: people.Invalidate, Logger: log})
		if err != nil {
			return err
		}
		cm := outbox.NewConsumerMetrics("registry-sync")
		if err := cm.Register(reg); err != nil {
			return err
		}
		dl := outbox.NewWriter(brokers, outbox.DefaultTopic+outbox.DeadLetterSuffix, outbox.WriterConfig{})
		defer dl.Close()
		c, err := outbox.NewConsumer(outbox.ConsumerConfig{
			Brokers: brokers, GroupID: "registry-sync", Handler: h.Handle,
			DB: db.DB(), Dialect: string(db.Dialect()), DeadLetters: dl, Metrics: cm, Logger: log,
		})
		if err != nil {
			return fmt.Errorf("sync consumer: %w", err)
		}
		consumers = append(consumers, c.Stats)
		wg.Go(func() {
			if err := c.Run(bg); err != nil && bg.Err() == nil {
				log.Error("sync consumer stopped", "err", err)
			}
		})
	}

	// Roll-over: a closed rotation day's unbooked doses move to the open
	// wave, exactly once (safe in every instance at once).
	roller, err := booking.NewRoller(booking.RollerConfig{Store: db, Now: now, Logger: log})
	if err != nil {
		return err
	}
	wg.Go(func() {
		if err := roller.Run(bg); err != nil && bg.Err() == nil {
			log.Error("roll-over stopped", "err", err)
		}
	})
	supply, err := booking.NewSupplyLoader(booking.SupplyLoaderConfig{Store: db, Now: now, Logger: log})
	if err != nil {
		return err
	}

	// The ops listener runs in every role.
	ops := httpapi.NewOpsHandler(httpapi.OpsConfig{Gatherer: reg, Mounts: map[string]http.Handler{
		"/ops/supply":      httpapi.SupplyOpsHandler(supply, cfg.OpsToken, log),
		"/ops/breakers":    facade.OpsHandler(cfg.OpsToken),
		"/ops/cache":       people.OpsHandler(cfg.OpsToken),
		"/ops/warmer":      people.OpsHandler(cfg.OpsToken),
		"/ops/outbox":      outbox.OpsHandler(db.DB(), outbox.OpsConfig{Dialect: string(db.Dialect()), Token: cfg.OpsToken, Relay: relay, Consumers: consumers, Republish: republish, Logger: log}),
		"/ops/deadletters": outbox.OpsHandler(db.DB(), outbox.OpsConfig{Dialect: string(db.Dialect()), Token: cfg.OpsToken, Relay: relay, Consumers: consumers, Republish: republish, Logger: log}),
	}})
	if cfg.Pprof {
		ops = withPprof(ops)
		log.Warn("profiler on at /debug/pprof/ on the ops listener")
	}
	servers := []*http.Server{newHTTPServer(cfg.OpsListen, ops, log)}

	if cfg.Role == "all" || cfg.Role == "api" {
		api, snap, adm, err := newAPI(ctx, bg, cfg, db, svc, people, d, rdb, reg, now, log)
		if err != nil {
			return err
		}
		defer snap.Close()
		if adm != nil {
			wg.Go(func() { watchHost(bg, db.DB(), adm) })
		}
		wg.Go(func() { purgeIdempotencyKeys(bg, db, cfg.IdempotencyMaxAge, log) })
		servers = append(servers, newHTTPServer(cfg.Listen, api, log))
	}

	// Bind every listener before announcing readiness.
	errc := make(chan error, len(servers))
	for _, srv := range servers {
		ln, err := net.Listen("tcp", srv.Addr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", srv.Addr, err)
		}
		log.Info("listening", "addr", ln.Addr().String())
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	if d != nil && len(servers) > 1 {
		d.printTour(stdout, cfg.Listen)
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down", "grace", cfg.ShutdownTimeout.String())
	case err = <-errc:
		log.Error("server failed; shutting down", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	for _, srv := range servers {
		if serr := srv.Shutdown(sctx); serr != nil {
			log.Warn("shutdown: in-flight requests cut off", "addr", srv.Addr, "err", serr)
		}
	}
	log.Info("stopped accepting; stopping background roles")
	return err
}

// newHTTPServer is a server with the slow-client limits of
// guard.ServerTimeouts (header, body, write and idle timeouts, 16 KiB of
// headers).
func newHTTPServer(addr string, h http.Handler, log *slog.Logger) *http.Server {
	return guard.ServerTimeouts(&http.Server{
		Addr:     addr,
		Handler:  h,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}, guard.ServerLimits{})
}

// newAPI builds the public handler: verifier, snapshot, idempotency, the
// waiting room, and in demo mode the mock identity provider and /demo
// endpoints.
func newAPI(ctx, bg context.Context, cfg *config, db *sqlstore.DB, svc *booking.Service, people booking.PersonSource,
	d *demo, rdb *redis.Client, reg prometheus.Registerer, now func() time.Time, log *slog.Logger) (http.Handler, *httpapi.Snapshot, *admission.Controller, error) {
	var provs []auth.ProviderConfig
	for _, spec := range cfg.Issuers {
		pc, err := auth.ParseProviderSpec(spec)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("--issuer: %w", err)
		}
		provs = append(provs, pc)
	}
	extra := map[string]http.Handler{}
	// The crowd's lane: the waiting room's joins and polls and the demo's
	// sign-ins share --queue-workers, so together they take at most that
	// many cores from the admitted people's bookings.
	crowd := newLane(queueWorkers(cfg))
	if d != nil {
		provs = append(provs, d.provider())
		for pattern, h := range d.handlers() {
			if pattern == demoSignInPattern {
				extra[pattern] = crowd.bound(h)
				continue
			}
			extra[pattern] = bounded(h, queueWorkers(cfg))
		}
	}
	v, err := auth.NewVerifier(auth.Config{Providers: provs, Now: now, Logger: log})
	if err != nil {
		return nil, nil, nil, err
	}
	go func() { <-bg.Done(); v.Close() }()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := v.Prefetch(pctx); err != nil {
		log.Warn("identity providers' keys not fetched at start; fetching on first use", "err", err)
	}
	cancel()
	acfg := httpapi.Config{
		Service: svc, Verifier: v, Idempotency: sqlIdempotency{db}, People: people,
		Ready: db, Registerer: reg, PersonKey: []byte(cfg.PersonKey), Logger: log, Now: now, Extra: extra,
	}
	campaigns, err := svc.Campaigns(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("campaigns: %w", err)
	}
	var adm *admission.Controller
	if cfg.Admission {
		var rc redis.UniversalClient
		if rdb != nil {
			rc = rdb
		}
		if adm, err = newAdmission(cfg, campaigns, v, rc, reg, now, log); err != nil {
			return nil, nil, nil, fmt.Errorf("admission: %w", err)
		}
		q := crowd.bound(adm.Handler())
		extra["POST /v1/queue"] = q
		extra["GET /v1/queue/{ticket}"] = q
		extra["GET "+admission.PagePath] = q
		acfg.Flow = append(acfg.Flow, adm.Middleware)
		acfg.Gate = adm.Gate
		acfg.Observe = observeAdmission(adm)
	} else {
		log.Warn("admission off: no waiting room in front of the booking flow")
	}
	rotation := &rotationClock{}
	rotation.set(campaigns)
	go rotation.follow(bg, svc.Campaigns, log)
	var rc redis.UniversalClient
	if rdb != nil {
		rc = rdb
	}
	g, sessions, err := newGuards(cfg, rc, rotation, reg, now, log)
	if err != nil {
		return nil, nil, nil, err
	}
	withFlow(&acfg, g, sessions)
	scfg := httpapi.SnapshotConfig{Logger: log, Now: now}
	if cfg.PersonKey != "" {
		// Near-search cursors must verify on every instance of a fleet:
		// derive their key from the fleet-wide secret.
		m := hmac.New(sha256.New, []byte(cfg.PersonKey))
		m.Write([]byte("yeyak clinic search cursor"))
		scfg.CursorKey = m.Sum(nil)
	}
	snap := httpapi.NewSnapshot(db, scfg)
	if err := snap.Start(ctx); err != nil {
		return nil, nil, nil, fmt.Errorf("clinic snapshot: %w", err)
	}
	acfg.Snapshot = snap
	api, err := httpapi.NewServer(acfg)
	if err != nil {
		snap.Close()
		return nil, nil, nil, err
	}
	return api, snap, adm, nil
}

// purgeIdempotencyKeys deletes stored Idempotency-Keys older than maxAge,
// hourly (and once at start).
func purgeIdempotencyKeys(ctx context.Context, db *sqlstore.DB, maxAge time.Duration, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := db.PurgeIdempotencyKeys(ctx, maxAge)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("purge idempotency keys", "err", err)
		case n > 0:
			log.Info("idempotency keys purged", "deleted", n, "older_than", maxAge.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// withPprof serves Go's profiler under /debug/pprof/ beside h.
func withPprof(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// queueWorkers is --queue-workers: half the cores by default, at least 1.
func queueWorkers(cfg *config) int {
	if cfg.QueueWorkers > 0 {
		return cfg.QueueWorkers
	}
	return max(1, runtime.GOMAXPROCS(0)/2)
}
