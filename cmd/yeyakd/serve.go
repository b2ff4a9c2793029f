package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/adapter/gateway"
	"github.com/yeyak/yeyak/adapter/registrysync"
	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/httpapi"
	"github.com/yeyak/yeyak/booking/httpapi/auth"
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
		return nil, errors.New("--registry oracle: the Oracle adapter is not wired into yeyakd yet; use gateway:URL")
	}
	return nil, fmt.Errorf("--registry %q: want mock, gateway:URL or oracle:DSN", cfg.Registry)
}

// serve runs the configured roles until ctx is done, then shuts down:
// stop accepting, let in-flight requests finish (bounded), stop the
// background roles, close the database.
func serve(ctx context.Context, cfg *config, log *slog.Logger, stdout io.Writer) error {
	now := cfg.clock()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	db, err := sqlstore.Open(ctx, cfg.DB, sqlstore.Options{})
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
	facade, err := adapter.NewFacade(reg0, adapter.FacadeConfig{Registerer: reg, Logger: log})
	if err != nil {
		return fmt.Errorf("registry facade: %w", err)
	}
	people, err := cache.New(facade, cache.Config{Registerer: reg, Logger: log, Now: now})
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

	// Kafka, the relay and the sync consumer.
	var brokers []string
	if cfg.Kafka == "embedded" {
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
		h, err := registrysync.New(registrysync.Config{Registry: facade, Verifier: svc, Logger: log})
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

	// The ops listener runs in every role.
	ops := httpapi.NewOpsHandler(httpapi.OpsConfig{Gatherer: reg, Mounts: map[string]http.Handler{
		"/ops/breakers":    facade.OpsHandler(cfg.OpsToken),
		"/ops/cache":       people.OpsHandler(cfg.OpsToken),
		"/ops/warmer":      people.OpsHandler(cfg.OpsToken),
		"/ops/outbox":      outbox.OpsHandler(db.DB(), outbox.OpsConfig{Dialect: string(db.Dialect()), Token: cfg.OpsToken, Relay: relay, Consumers: consumers, Republish: republish, Logger: log}),
		"/ops/deadletters": outbox.OpsHandler(db.DB(), outbox.OpsConfig{Dialect: string(db.Dialect()), Token: cfg.OpsToken, Relay: relay, Consumers: consumers, Republish: republish, Logger: log}),
	}})
	servers := []*http.Server{newHTTPServer(cfg.OpsListen, ops, log)}

	if cfg.Role == "all" || cfg.Role == "api" {
		api, snap, err := newAPI(ctx, cfg, db, svc, people, d, reg, now, log)
		if err != nil {
			return err
		}
		defer snap.Close()
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

func newHTTPServer(addr string, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// newAPI builds the public handler: verifier, snapshot, idempotency, and
// in demo mode the mock identity provider and /demo endpoints.
func newAPI(ctx context.Context, cfg *config, db *sqlstore.DB, svc *booking.Service, people booking.PersonSource,
	d *demo, reg prometheus.Registerer, now func() time.Time, log *slog.Logger) (http.Handler, *httpapi.Snapshot, error) {
	var provs []auth.ProviderConfig
	for _, spec := range cfg.Issuers {
		pc, err := auth.ParseProviderSpec(spec)
		if err != nil {
			return nil, nil, fmt.Errorf("--issuer: %w", err)
		}
		provs = append(provs, pc)
	}
	var extra map[string]http.Handler
	if d != nil {
		provs = append(provs, d.provider())
		extra = d.handlers()
	}
	v, err := auth.NewVerifier(auth.Config{Providers: provs, Now: now, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	snap := httpapi.NewSnapshot(db, httpapi.SnapshotConfig{Logger: log, Now: now})
	if err := snap.Start(ctx); err != nil {
		return nil, nil, fmt.Errorf("clinic snapshot: %w", err)
	}
	api, err := httpapi.NewServer(httpapi.Config{
		Service: svc, Verifier: v, Idempotency: sqlIdempotency{db}, Snapshot: snap, People: people,
		Ready: db, Registerer: reg, PersonKey: []byte(cfg.PersonKey), Logger: log, Now: now, Extra: extra,
	})
	if err != nil {
		snap.Close()
		return nil, nil, err
	}
	return api, snap, nil
}
