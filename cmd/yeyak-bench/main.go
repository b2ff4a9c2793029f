// Command yeyak-bench measures yeyak's performance figures, each in the
// same sitting as its baseline, and writes them to BENCHMARKS.md (make
// bench). The figures:
//
//  1. the booking commit path on PostgreSQL (bookings/s) vs pgbench -N (tps);
//  2. POST /v1/bookings end to end through yeyakd (yeyak-load), with the
//     outbox relay and the registry sync consumer running vs without;
//  3. the eligibility cache's hit path vs sync.Map;
//  4. the registry facade's overhead vs a direct call;
//  5. the outbox relay's events/s vs the booking commit rate;
//  6. clinic search p99 vs a full scan;
//  7. booking throughput with relay and consumer in process vs alone;
//  8. a caller's worst wait on a stalled registry vs the read deadline.
//
// Each table gives the figure, its baseline, their ratio and the command
// that reproduces it alone. The Go benchmarks run as `go test -bench`
// (their b.ReportMetric figures are read from the output); the end-to-end
// figure builds and runs yeyakd. It needs PostgreSQL on 127.0.0.1
// (YEYAK_TEST_PG overrides the DSN, as for the tests) and pgbench; every
// database it creates is a scratch one, dropped afterwards. The whole run
// takes about five minutes on two cores and is bounded by --timeout.
//
//	yeyak-bench                       # all figures into BENCHMARKS.md
//	yeyak-bench --only 'cache|search' -o /tmp/b.md
//
// The chaos verdicts (yeyak-chaos --report BENCHMARKS.md) already in the
// file are kept.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/yeyak/yeyak/cmd/yeyak-chaos/harness"
	"github.com/yeyak/yeyak/mocks/testenv"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "yeyak-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("yeyak-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "BENCHMARKS.md", "file to write")
	only := fs.String("only", "", "measure only the figures whose title matches this regular expression (case-insensitive)")
	bin := fs.String("yeyakd", "", "yeyakd binary for the end-to-end figure (default: built from this checkout)")
	timeout := fs.Duration("timeout", 12*time.Minute, "bound of the whole run")
	quick := fs.Bool("quick", false, "one iteration per benchmark and 3 s runs: checks the command works, the figures mean nothing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	filter, err := regexp.Compile("(?i)" + *only)
	if err != nil {
		return fmt.Errorf("--only: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "yeyak-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b := &bench{admin: testenv.PostgresAdminDSN(), bin: *bin, dir: dir, quick: *quick, log: stderr}
	start := time.Now()
	m := describeMachine(ctx, b.admin)
	var secs []section
	for _, f := range figures {
		fstart := time.Now()
		if ctx.Err() != nil {
			break
		}
		if !filter.MatchString(f.title) {
			continue
		}
		b.logf("%s …", f.title)
		s := f.run(ctx, b)
		s.Title, s.Took = f.title, time.Since(fstart)
		if s.Err != nil {
			b.logf("  not measured: %s", oneLine(s.Err.Error()))
		} else {
			for _, r := range s.Rows {
				b.logf("  %s: %s | %s: %s | %s", r.Figure, r.Value, r.Baseline, r.BaselineValue, r.Ratio)
			}
		}
		secs = append(secs, s)
	}
	m.LoadEnd = loadAverage()
	doc := markdown(start, time.Since(start), m, secs)
	old, _ := os.ReadFile(*out)
	if chaos := harness.Section(string(old), harness.ChaosBegin, harness.ChaosEnd); chaos != "" {
		doc = strings.TrimRight(doc, "\n") + "\n\n" + chaos + "\n"
	} else {
		doc += "\n" + harness.ChaosBegin + "\n## Chaos verdicts\n\nNot run yet: `make chaos` writes them here.\n" + harness.ChaosEnd + "\n"
	}
	if err := os.WriteFile(*out, []byte(doc), 0o644); err != nil {
		return err
	}
	b.logf("wrote %s in %s (GOMAXPROCS %d)", *out, time.Since(start).Round(time.Second), runtime.GOMAXPROCS(0))
	return ctx.Err()
}
