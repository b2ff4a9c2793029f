// Command registry-mock runs yeyak's fake legacy registry as a server: the
// registry's HTTP gateway API (docs/legacy-gateway.md) over a synthetic
// population, with fault injection switchable at run time on a control
// listener that stays up during an outage.
//
//	registry-mock --listen 127.0.0.1:7070 --people 1000000 --seed 2021
//	curl -X PUT localhost:7071/mock/faults -d '{"latency":"200ms","errorRate":0.1}'
//	curl -X PUT localhost:7071/mock/faults -d '{"outage":true}'   # connection refused on :7070
//	curl -X PUT localhost:7071/mock/faults -d '{}'                # healthy again
//
// With --sql it also creates the legacy Oracle-style schema in a database
// and loads the same population into it (docs/legacy-schema.md), for the
// Oracle adapter. SIGINT or SIGTERM stops it gracefully.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite" // driver "sqlite"

	"github.com/yeyak/yeyak/mocks/population"
	"github.com/yeyak/yeyak/mocks/registry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "registry-mock:", err)
		os.Exit(1)
	}
}

// run parses args, serves until ctx ends, then shuts down gracefully.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("registry-mock", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:7070", "address of the gateway API (/api/v1) and control endpoints (/mock)")
	control := fs.String("control", "127.0.0.1:7071", "address of the control listener (/mock only), which stays up during an outage")
	people := fs.Int("people", 100_000, "number of people in the synthetic population (ids P0000000000 …)")
	seed := fs.Uint64("seed", 2021, "population seed; the same seed gives the same people")
	faults := fs.String("faults", "", `initial faults as JSON, e.g. '{"latency":"100ms","errorRate":0.05}'`)
	sqlTarget := fs.String("sql", "", `also create and seed the legacy schema: "pgx:postgres://…" or "sqlite:FILE"`)
	grace := fs.Duration("grace", 5*time.Second, "how long shutdown waits for calls in progress")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg := registry.Config{Population: population.Config{Seed: *seed, People: *people}, Logger: log}
	if *faults != "" {
		if err := json.Unmarshal([]byte(*faults), &cfg.Faults); err != nil {
			return fmt.Errorf("--faults: %w", err)
		}
	}
	if *sqlTarget != "" {
		if err := seedSQL(ctx, *sqlTarget, cfg.Population, stdout); err != nil {
			return err
		}
	}
	reg := registry.New(cfg)
	srv, err := reg.StartServer(registry.ServerConfig{Addr: *listen, ControlAddr: *control})
	if err != nil {
		return err
	}
	p0 := population.PeopleWithDigit(cfg.Population, 0, 1)
	example := population.ID(0)
	if len(p0) > 0 {
		example = p0[0].ID
	}
	fmt.Fprintf(stdout, `registry-mock: %d people (seed %d)
gateway   %s/api/v1   e.g. GET %s/api/v1/persons/%s
control   %s/mock/faults (GET, PUT)  %s/mock/stats  %s/mock/reset (POST)  %s/mock/reservations/{rsvtId}
`, *people, *seed, srv.URL(), srv.URL(), example, srv.ControlURL(), srv.ControlURL(), srv.ControlURL(), srv.ControlURL())
	<-ctx.Done()
	log.Info("registry-mock shutting down", "grace", *grace)
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	// A stalled call would hold shutdown for the whole grace period.
	_ = reg.SetFaults(registry.Faults{})
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// seedSQL creates the legacy schema in driver:dsn and loads the population.
func seedSQL(ctx context.Context, target string, pop population.Config, stdout io.Writer) error {
	driver, dsn, ok := strings.Cut(target, ":")
	if !ok || dsn == "" {
		return fmt.Errorf("--sql %q: want driver:dsn (pgx:postgres://… or sqlite:FILE)", target)
	}
	db, err := sqlx.Open(driver, dsn)
	if err != nil {
		return fmt.Errorf("--sql: %w", err)
	}
	defer db.Close()
	start := time.Now()
	if err := registry.CreateSchema(ctx, db); err != nil {
		return err
	}
	n, err := registry.Seed(ctx, db, population.People(pop))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "registry-mock: legacy schema seeded with %d people in %s (%s)\n", n, time.Since(start).Round(time.Millisecond), driver)
	return nil
}
