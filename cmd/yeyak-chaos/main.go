// Command yeyak-chaos runs yeyak's chaos scenarios and ends each in a
// verdict. Every scenario starts its own system — the real yeyakd binary
// (--demo world) on a database of its own in a PostgreSQL instance the
// harness creates with initdb in a temporary directory, a Kafka-protocol
// broker and the mock registry in this process — puts it under a
// yeyak-load stream, injects one fault, stops the load, waits until the
// system has settled (outbox published, every event applied by the sync
// consumer, no provisional booking left) and checks the invariants by
// querying the database and the registry, not the logs:
//
//   - no quota oversold (and no counter drift);
//   - every booking the API answered 201 for exists, as acknowledged;
//   - every confirmed booking is in the registry exactly once, every
//     cancelled one cancelled there;
//   - no provisional booking left unverified once the registry is back;
//   - during a registry fault, the booking p99 of people whose
//     eligibility is cached stays within 1.5× of the healthy p99, and they
//     meet no errors on the way to a booking.
//
// The scenarios: registry-outage (on the provisional policy: uncached
// people book provisionally, and every such booking must end confirmed or
// cancelled as ineligible), registry-stall (fail_closed), registry-slow
// (p99 2 s at half capacity), kafka-down, yeyakd-kill (kill -9,
// restarted), postgres-restart; then surge (issue 10: 50,000 people into
// the waiting room within seconds, a twin fed at the admitted rate; see
// surge). Each prints one line, PASS|FAIL name — figures, with the broken
// invariants under a FAIL; the exit status is 1 if any failed. --report
// writes the fault verdicts and the surge's figures into BENCHMARKS.md.
//
//	yeyak-chaos                 # the full run (make chaos), about 15 minutes
//	yeyak-chaos --run '^surge$' # the surge alone (make surge), about 5 minutes
//	yeyak-chaos --short         # seconds per scenario (CI runs it as a test)
//	yeyak-chaos --run 'kafka|kill' --keep -v
//
// It needs the PostgreSQL server binaries (initdb, pg_ctl: $YEYAK_PG_BIN or
// /usr/lib/postgresql/*/bin); run as root, it runs them as the postgres
// user. yeyakd is built from this checkout unless --yeyakd names a binary.
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
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/yeyak/yeyak/cmd/yeyak-chaos/harness"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	failed, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "yeyak-chaos:", err)
		os.Exit(2)
	}
	if failed > 0 {
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	mode    Mode
	filter  *regexp.Regexp
	yeyakd  string
	keep    bool
	verbose bool
	report  string
	// cpuProfile is where the harness's own CPU profile goes (the load
	// generator and the mock registry), "" for none.
	cpuProfile string
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("yeyak-chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	short := fs.Bool("short", false, "seconds per scenario and a small world (what CI runs)")
	filter := fs.String("run", "", "run only the scenarios whose name matches this regular expression")
	fs.StringVar(&o.yeyakd, "yeyakd", "", "yeyakd binary to test (default: built from this checkout)")
	fs.BoolVar(&o.keep, "keep", false, "keep the scenarios' directories (yeyakd logs) and print where")
	fs.BoolVar(&o.verbose, "v", false, "narrate each scenario's phases")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write the harness's own CPU profile (load generator, mock registry) to this file")
	fs.StringVar(&o.report, "report", "", "also write the verdicts into this file's chaos section (BENCHMARKS.md), replacing the previous ones")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "yeyak-chaos — fault scenarios against a real yeyak system, each ending in PASS or FAIL.\n\nUsage:\n  yeyak-chaos [flags]\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.mode = fullMode
	if *short {
		o.mode = shortMode
	}
	var err error
	if o.filter, err = regexp.Compile(*filter); err != nil {
		return o, fmt.Errorf("--run: %w", err)
	}
	return o, nil
}

// run runs the selected scenarios and returns how many failed.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	o, err := parse(args, stderr)
	if err != nil {
		return 0, err
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return 0, err
		}
		defer pprof.StopCPUProfile()
	}
	verdicts, err := runScenarios(ctx, o, stdout, stderr)
	if err != nil {
		return 0, err
	}
	failed := 0
	for _, v := range verdicts {
		if !v.ok() {
			failed++
		}
	}
	fmt.Fprintf(stdout, "%d of %d scenarios passed (%s mode)\n", len(verdicts)-failed, len(verdicts), o.mode.Name)
	if o.report != "" {
		if err := writeReport(o.report, o.mode, verdicts, time.Now()); err != nil {
			return failed, err
		}
	}
	return failed, nil
}

// writeReport puts the verdicts into the chaos section of path: the fault
// scenarios' lines and the surge's figures, each replacing its previous
// version only when this run has it.
func writeReport(path string, m Mode, verdicts []*verdict, at time.Time) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc := string(old)
	prev := harness.Inner(doc, harness.ChaosBegin, harness.ChaosEnd)
	faults := harness.Inner(prev, harness.FaultsBegin, harness.FaultsEnd)
	if faults == "" && !strings.Contains(prev, harness.SurgeBegin) {
		faults = prev // a section written before the parts had markers
	}
	surgePart := harness.Inner(prev, harness.SurgeBegin, harness.SurgeEnd)
	var faultLines []*verdict
	for _, v := range verdicts {
		if v.name == "surge" {
			surgePart = surgeReport(m, v, at)
		} else {
			faultLines = append(faultLines, v)
		}
	}
	if len(faultLines) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "## Chaos verdicts\n\n")
		fmt.Fprintf(&b, "`make chaos` (cmd/yeyak-chaos, %s mode) on %s: each scenario runs the real yeyakd on its own PostgreSQL instance with kfake and the mock registry, under a yeyak-load stream, injects one fault, stops the load, waits until the system has settled and checks the invariants in the database and the registry. Registry scenarios compare the booking p99 of cached people with a healthy twin system under the same load at the same time.\n\n",
			m.Name, at.UTC().Format("2006-01-02 15:04 MST"))
		b.WriteString("```\n")
		for _, v := range faultLines {
			b.WriteString(v.line() + "\n")
		}
		b.WriteString("```")
		faults = b.String()
	}
	var body strings.Builder
	if faults != "" {
		body.WriteString(harness.FaultsBegin + "\n" + faults + "\n" + harness.FaultsEnd + "\n")
	}
	if surgePart != "" {
		if body.Len() > 0 {
			body.WriteString("\n")
		}
		body.WriteString(harness.SurgeBegin + "\n" + surgePart + "\n" + harness.SurgeEnd + "\n")
	}
	doc = harness.Splice(doc, harness.ChaosBegin, harness.ChaosEnd, body.String())
	return os.WriteFile(path, []byte(doc), 0o644)
}

// surgeReport is the surge's part of the report: its figures as a table,
// the verdict, the command.
func surgeReport(m Mode, v *verdict, at time.Time) string {
	var b strings.Builder
	word := "PASS"
	if !v.ok() {
		word = "FAIL"
	}
	fmt.Fprintf(&b, "## Surge: a crowd into the waiting room (issue 10)\n\n")
	fmt.Fprintf(&b, "`make surge` (cmd/yeyak-chaos --run '^surge$', %s mode) on %s: **%s**. The real yeyakd (--demo, waiting room on at its defaults: floor 10/s, ceiling 1000/s, AIMD) on its own PostgreSQL instance, the cache warmed with today's digit group as before a rotation day; %d people arrive within seconds (yeyak-load spike), join the line when told 429 queue_required, poll as Retry-After says and book with their pass. A twin system nobody surges is fed one person for each person the surged system admits, at that moment: its booking p99 is the healthy range (×%.1f, on the bootstrap's 95%% lower bound). Checks come from the load's summary, yeyakd's metrics (its request counter, the queue's tickets, admissions and line) and the database.\n\n",
		m.Name, at.UTC().Format("2006-01-02 15:04 MST"), word, m.SurgePeople, p99Factor)
	b.WriteString("| figure | value |\n|---|---|\n")
	for _, r := range v.rows {
		fmt.Fprintf(&b, "| %s | %s |\n", r[0], r[1])
	}
	b.WriteString("\n```\n" + v.line() + "\n```\n\nReproduce: `make surge` (or `yeyak-chaos --run '^surge$' -v`; `--short` for the CI size).")
	return b.String()
}

// startSystems starts the scenario's system and, for a twin scenario, its
// healthy twin, side by side.
func startSystems(ctx context.Context, sc scenario, m Mode, bin string, pg *harness.Postgres, base string, narrate io.Writer) (s, twin *system, err error) {
	if !sc.twin {
		s, err = newSystem(ctx, sc.name, m, bin, pg, base, narrate, sc.args...)
		return s, nil, err
	}
	var terr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		twin, terr = newSystem(ctx, sc.name+"-twin", m, bin, pg, base, narrate, append(slices.Clone(sc.args), sc.twinArgs...)...)
	}()
	s, err = newSystem(ctx, sc.name, m, bin, pg, base, narrate, sc.args...)
	<-done
	if err == nil && terr != nil {
		err = terr
	}
	if err != nil {
		if s != nil {
			s.close()
		}
		if twin != nil {
			twin.close()
		}
		return nil, nil, err
	}
	return s, twin, nil
}

// runScenarios sets up what the scenarios share (the yeyakd binary, the
// PostgreSQL instance) and runs each, printing its verdict line as soon as
// it is known.
func runScenarios(ctx context.Context, o options, stdout, stderr io.Writer) ([]*verdict, error) {
	base, err := os.MkdirTemp("", "yeyak-chaos-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		fmt.Fprintln(stderr, "yeyak-chaos: scenario directories under", base)
	} else {
		defer os.RemoveAll(base)
	}
	bin := o.yeyakd
	if bin == "" {
		if bin, err = harness.BuildYeyakd(ctx, base); err != nil {
			return nil, err
		}
	}
	pg, err := harness.StartPostgres(ctx)
	if err != nil {
		return nil, err
	}
	defer pg.Close()
	var narrate io.Writer
	if o.verbose {
		narrate = stderr
	}
	var out []*verdict
	all := scenarios(o.mode)
	if o.filter.String() != "" {
		all = append(all, controls(o.mode)...)
	}
	for _, sc := range all {
		if !o.filter.MatchString(sc.name) {
			continue
		}
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		v := &verdict{name: sc.name}
		v.figures = append(v.figures, sc.what)
		start := time.Now()
		s, twin, err := startSystems(ctx, sc, o.mode, bin, pg, base, narrate)
		if err != nil {
			v.fail("start the system: %v", err)
		} else {
			sc.run(ctx, s, twin, v)
			if !v.ok() && o.keep {
				v.figure("yeyakd log %s/yeyakd.log", s.dir)
			}
			s.close()
			if twin != nil {
				twin.close()
			}
		}
		v.took = time.Since(start)
		out = append(out, v)
		fmt.Fprintln(stdout, v.line())
	}
	return out, nil
}
