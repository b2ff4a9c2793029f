// Command yeyak-load is yeyak's launch-day load generator. It simulates
// people, not requests: each virtual person of the synthetic population
// gets a token from the demo identity provider, checks eligibility,
// searches clinics, books with an Idempotency-Key (retrying as a frontend
// would) and sometimes cancels or reschedules. See package
// cmd/yeyak-load/load for the flow and the report.
//
// Start the target first, then the crowd:
//
//	yeyakd --demo --demo-people 1000000 --db postgres://…
//	yeyak-load --people 1000000 --shape spike --people-count 50000 --decay 10s
//	yeyak-load --shape steady --rate 200 --duration 60s --cancel-share 0.05 --summary out.json
//	yeyak-load --shape closed --concurrency 64 --duration 30s
//
// --seed and --people must be the target's population (yeyakd --demo:
// seed 2021, --demo-people). Only loopback targets are accepted. A progress
// line goes to stderr once a second; the report to stdout; --summary
// writes it as JSON for scripts. The exit status is 0 when the run
// completed (whatever the target answered), 1 when it could not start.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/cmd/yeyak-load/load"
	"github.com/yeyak/yeyak/mocks/population"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "yeyak-load:", err)
		os.Exit(1)
	}
}

const usage = `yeyak-load — simulate people booking on a yeyak target (loopback only).

Usage:
  yeyak-load [flags]

Shapes: steady (--rate people/s for --duration), spike (--rate people/s at
the start decaying with --decay; with --people-count and no --rate the whole
crowd arrives in the decaying wave), closed (--concurrency people at once).
Ctrl-C stops arrivals; people in the flow get --drain to finish.

Flags:
`

// parse reads the flags into a load.Config and the summary path.
func parse(args []string, stderr io.Writer) (load.Config, string, error) {
	var cfg load.Config
	fs := flag.NewFlagSet("yeyak-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.Target, "target", "http://127.0.0.1:8080", "yeyakd public listener (loopback only)")
	fs.StringVar(&cfg.Campaign, "campaign", "demo", "campaign to book in")
	seed := fs.Uint64("seed", 2021, "population seed: the target's (yeyakd --demo uses 2021)")
	people := fs.Int("people", 100_000, "population size: the target's (yeyakd --demo-people)")
	shape := fs.String("shape", "steady", "arrival shape: steady | spike | closed")
	fs.Float64Var(&cfg.Rate, "rate", 0, "arrivals per second (steady: constant; spike: initial). 0: 50, or for a spike with --people-count, count/decay")
	fs.DurationVar(&cfg.Decay, "decay", 15*time.Second, "spike: time constant of the exponential decay")
	fs.IntVar(&cfg.Concurrency, "concurrency", 50, "closed: people in the flow at once")
	fs.IntVar(&cfg.Count, "people-count", 0, "stop arrivals after this many people (0: no bound)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop arrivals after this long (0: no bound)")
	fs.DurationVar(&cfg.Drain, "drain", 30*time.Second, "after arrivals stop, how long people in the flow may finish")
	fs.DurationVar(&cfg.QueueDrain, "queue-drain", 0, "after arrivals stop, how long people in the waiting room keep waiting; then they leave the line, keeping the place and wait it told them (0: the whole --drain)")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", 5000, "open shapes: most people in the flow at once; more arrivals are dropped and counted")
	fs.Float64Var(&cfg.OtherDigitShare, "other-share", 0.1, "share of people not born on today's rotation digit (expected 422 refusals); 0 for none")
	fs.Float64Var(&cfg.CancelShare, "cancel-share", 0.05, "share of people who cancel after booking")
	fs.Float64Var(&cfg.RescheduleShare, "reschedule-share", 0.05, "share of the others who reschedule")
	fs.StringVar(&cfg.StopAfter, "stop-after", "", "end each flow after this step: eligibility | search | book (default: the whole flow)")
	fs.BoolVar(&cfg.SkipEligibility, "skip-eligibility", false, "leave out the eligibility check")
	fs.DurationVar(&cfg.Think, "think", 0, "most a person pauses between steps (uniform in [0, think])")
	fs.IntVar(&cfg.Attempts, "attempts", 5, "most attempts per call on retryable answers")
	fs.IntVar(&cfg.Sources, "sources", 64, "client addresses (127.1.0.1 on) people are spread over, like homes behind many NATs; 1: 127.0.0.1 only")
	fs.IntVar(&cfg.Conns, "conns", 256, "most connections to the target, over all sources")
	fs.DurationVar(&cfg.RequestTimeout, "timeout", 30*time.Second, "bound of each HTTP call")
	today := fs.String("today", "", "the date whose rotation digit applies (YYYY-MM-DD; default: today in the campaign's time zone — set it when yeyakd runs with --now)")
	fs.Uint64Var(&cfg.PersonSeed, "person-seed", 1, "seed of the order people are drawn in; change it to meet other people")
	fs.IntVar(&cfg.Skip, "skip", 0, "leave out the first N people of each digit class (continue after an earlier run)")
	summary := fs.String("summary", "", "write the summary as JSON to this file (- for stdout)")
	fs.BoolVar(&cfg.Record, "record", false, "list every acknowledged booking in the summary")
	quiet := fs.Bool("quiet", false, "no progress line")
	if err := fs.Parse(args); err != nil {
		return cfg, "", err
	}
	if fs.NArg() > 0 {
		return cfg, "", fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg.Population = population.Config{Seed: *seed, People: *people}
	cfg.Shape = load.Shape(*shape)
	if cfg.OtherDigitShare == 0 {
		cfg.OtherDigitShare = -1 // the flag's 0 means none
	}
	if *today != "" {
		d, err := booking.ParseDate(*today)
		if err != nil {
			return cfg, "", fmt.Errorf("--today: %w", err)
		}
		cfg.Today = d
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	if *people <= 0 {
		return cfg, "", errors.New("--people must be positive")
	}
	return cfg, *summary, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, summary, err := parse(args, stderr)
	if err != nil {
		return err
	}
	s, err := load.Run(ctx, cfg)
	if err != nil {
		return err
	}
	s.Print(stdout)
	if summary != "" {
		return s.Write(summary)
	}
	return nil
}
