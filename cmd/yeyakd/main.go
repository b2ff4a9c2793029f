// Command yeyakd is the yeyak booking service: the public /v1 API, the ops
// listener, the outbox relay and the registry sync consumer, by default
// all in one process on embedded defaults (SQLite, an in-process
// Kafka-protocol broker, the mock registry).
//
//	yeyakd --demo                       # everything embedded, demo data, a printed curl tour
//	yeyakd --db postgres://… --registry gateway:http://registry:8081 \
//	       --kafka k1:9092,k2:9092 --issuer name=pass,iss=…,aud=yeyak,jwks=https://…
//	yeyakd migrate --db postgres://…
//	yeyakd campaign load campaign.json --db postgres://…
//	yeyakd clinic load clinics.csv --db postgres://…
//	yeyakd supply load supply.csv --db postgres://…
//
// yeyakd -h documents every flag and its YEYAK_* environment variable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "yeyakd:", err)
		os.Exit(1)
	}
}

// run is main without the process: it serves until ctx is done, or runs
// a subcommand (migrate; campaign, clinic or supply load FILE).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var sub, file string
	switch {
	case len(args) > 0 && args[0] == "migrate":
		sub, args = "migrate", args[1:]
	case len(args) > 0 && (args[0] == "campaign" || args[0] == "clinic" || args[0] == "supply"):
		if len(args) < 3 || args[1] != "load" || strings.HasPrefix(args[2], "-") {
			return fmt.Errorf("usage: yeyakd %s load FILE [flags]", args[0])
		}
		sub, file, args = args[0], args[2], args[3:]
	}
	cfg, fs, err := parseConfigFor(sub == "", args, getenv, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	switch sub {
	case "migrate":
		cfg.print(stdout, fs)
		return migrate(ctx, cfg, stdout)
	case "campaign":
		return loadCampaigns(ctx, cfg, file, stdout)
	case "clinic":
		return loadClinics(ctx, cfg, file, stdout)
	case "supply":
		return loadSupply(ctx, cfg, file, stdout, log)
	}
	cfg.print(stdout, fs)
	if err := serve(ctx, cfg, log, stdout); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}
