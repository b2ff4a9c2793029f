package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/yeyak/yeyak/cmd/yeyak-chaos/harness"
	"github.com/yeyak/yeyak/cmd/yeyak-load/load"
	"github.com/yeyak/yeyak/mocks/population"
	"github.com/yeyak/yeyak/outbox"
)

// bench is one sitting: what the figures share.
type bench struct {
	admin  string // DSN of the shared PostgreSQL's maintenance database
	bin    string // yeyakd binary ("" until built)
	dir    string // scratch directory
	quick  bool   // shorter runs (a smoke test of the command, not figures)
	log    io.Writer
	commit float64 // bookings/s of the commit path, once measured (a baseline of the relay)
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "yeyak-bench: "+format+"\n", args...)
}

// bt is the -benchtime of a figure, or 1x in quick mode.
func (b *bench) bt(full string) string {
	if b.quick {
		return "1x"
	}
	return full
}

func (b *bench) dur(full time.Duration) time.Duration {
	if b.quick {
		return min(full, 3*time.Second)
	}
	return full
}

// figure measures one section of BENCHMARKS.md.
type figure struct {
	title string
	run   func(ctx context.Context, b *bench) section
}

// figures in the order BENCHMARKS.md lists them; the commit path comes
// before the relay, which uses it as a baseline.
var figures = []figure{
	{"Booking commit path on PostgreSQL vs pgbench -N", figCommit},
	{"End to end: POST /v1/bookings through yeyakd, with and without the relay and sync consumer", figEndToEnd},
	{"Eligibility cache hit path vs sync.Map", figCache},
	{"Registry facade overhead vs a direct call", figFacade},
	{"Outbox relay throughput (PostgreSQL → Kafka) vs the booking commit rate", figRelay},
	{"Clinic search p99 vs a full scan", figSearch},
	{"Booking throughput with the relay and sync consumer in the same process", figSyncInProcess},
	{"Worst wait of a caller when the registry stalls vs the read deadline", figStall},
}

func figCommit(ctx context.Context, b *bench) section {
	const pkg, pattern = "./booking/sqlstore/", "BenchmarkBookPostgres"
	bt, pgT := b.bt("5s"), b.dur(15*time.Second)
	s := section{About: "One booking = the conditional quota decrement, the booking insert and the outbox insert, in one statement (data-modifying CTEs: sqlstore's bookOne), from 8 goroutines on 8 connections (BenchmarkBookPostgres, both outbox notify modes). " +
		"The baseline is pgbench's simple-update transaction (-N: an UPDATE, a SELECT and an INSERT) from 8 clients on the same server, run right after. Ratio: bookings/s ÷ pgbench tps. " +
		"The last three rows compare the statement with the transaction it replaced (begin, take, insert, insert, commit; for a first dose with its second, eight statements or more), in the same benchmark run: at 64 clinics, with every booking at one quota row, where each waits for the row lock of the one before, and for first-and-second-dose pairs at one clinic (the second on the first of three dates with room).",
		Commands: []string{goBenchCommand(pkg, pattern, bt), pgbenchCommand(pgT)}}
	res, err := goBench(ctx, pkg, pattern, bt)
	if err != nil {
		s.Err = err
		return s
	}
	tps, err := pgbench(ctx, b.admin, pgT)
	if err != nil {
		s.Err = err
		return s
	}
	base := fmt.Sprintf("pgbench -N, %d clients", pgbenchClients)
	for _, mode := range []string{"in_tx", "after_commit"} {
		v, err := metric(res, pattern+"/notify="+mode, "bookings/s")
		if err != nil {
			s.Err = err
			return s
		}
		if mode == "in_tx" {
			b.commit = v
		}
		s.Rows = append(s.Rows, row{"bookings committed, outbox notify " + mode, num(v, "bookings/s"), base, num(tps, "tps"), ratio(v, tps)})
	}
	// One statement against the five-statement transaction it replaced,
	// at 64 clinics and at one hot quota row.
	for _, c := range []struct{ stmt, tx, what, base string }{
		{"notify=in_tx", "transaction", "64 clinics", "as a five-statement transaction, same run"},
		{"hot", "hot-transaction", "one quota row (every booking at one clinic, day and dose)", "as a five-statement transaction, same run"},
		{"hot-pair", "hot-pair-transaction", "first and second doses at one clinic (Reserve; both bookings counted)", "as a transaction of eight statements or more, same run"},
	} {
		v, err := metric(res, pattern+"/"+c.stmt, "bookings/s")
		if err != nil {
			s.Err = err
			return s
		}
		t, err := metric(res, pattern+"/"+c.tx, "bookings/s")
		if err != nil {
			s.Err = err
			return s
		}
		s.Rows = append(s.Rows, row{"bookings committed in one statement, " + c.what, num(v, "bookings/s"), c.base, num(t, "bookings/s"), ratio(v, t)})
	}
	return s
}

// e2eConcurrency and e2eRun are the end-to-end load: people in the flow at
// once, and how long it is measured.
const e2eConcurrency = 32

func figEndToEnd(ctx context.Context, b *bench) section {
	d := b.dur(20 * time.Second)
	const people = 2_000_000
	s := section{About: fmt.Sprintf("yeyakd --demo (%d people, 300 clinics) on a scratch PostgreSQL database, the waiting room off (--admission=false: it would cap both runs at its rate), the mock registry in process, a Kafka-protocol broker (kfake) in the bench process. "+
		"yeyak-load keeps %d people in the flow (closed loop: token, clinic search, booking) for %v after a 3 s warm-up. "+
		"Once with every role (--role all: the outbox relay and the registry sync consumer run beside the API, at their production settings), once with the API alone (--role api: events stay in the outbox). Ratio: with ÷ without.", people, e2eConcurrency, d),
		Commands: []string{
			fmt.Sprintf("yeyakd --demo --demo-people %d --db postgres://postgres@127.0.0.1:5432/scratch --kafka 127.0.0.1:9092 --admission=false --log-level warn --role all   # then --role api", people),
			fmt.Sprintf("yeyak-load --people %d --shape closed --concurrency %d --duration %v --skip-eligibility --stop-after book --other-share 0 --cancel-share 0 --reschedule-share 0", people, e2eConcurrency, d),
		}}
	if err := b.yeyakd(ctx); err != nil {
		s.Err = err
		return s
	}
	kafka, err := harness.StartKafka([]string{outbox.DefaultTopic, outbox.DefaultTopic + outbox.DeadLetterSuffix}, 6)
	if err != nil {
		s.Err = err
		return s
	}
	defer kafka.Close()
	var sums [2]*load.Summary
	for i, role := range []string{"all", "api"} {
		sum, err := b.endToEnd(ctx, role, kafka.Addr(), people, d)
		if err != nil {
			s.Err = fmt.Errorf("--role %s: %w", role, err)
			return s
		}
		sums[i] = sum
	}
	with, without := sums[0], sums[1]
	wb, ob := with.Steps[load.StepBook], without.Steps[load.StepBook]
	s.Rows = []row{
		{"bookings/s, relay and consumer on", num(with.BookingsPerSecond, "bookings/s"), "relay and consumer off", num(without.BookingsPerSecond, "bookings/s"), ratio(with.BookingsPerSecond, without.BookingsPerSecond)},
		{"POST /v1/bookings p50, on", num(wb.P50Ms, "ms"), "off", num(ob.P50Ms, "ms"), ratio(wb.P50Ms, ob.P50Ms)},
		{"POST /v1/bookings p99, on", num(wb.P99Ms, "ms"), "off", num(ob.P99Ms, "ms"), ratio(wb.P99Ms, ob.P99Ms)},
	}
	for i, sum := range sums {
		if len(sum.Errors) > 0 {
			s.Rows = append(s.Rows, row{fmt.Sprintf("errors (%s)", []string{"on", "off"}[i]), fmt.Sprint(sum.Errors), "", "", ""})
		}
	}
	return s
}

// endToEnd runs yeyakd with role on a scratch database and measures it.
func (b *bench) endToEnd(ctx context.Context, role, kafka string, people int, d time.Duration) (*load.Summary, error) {
	dsn, _, drop, err := scratchDB(ctx, b.admin)
	if err != nil {
		return nil, err
	}
	defer drop()
	dir, err := os.MkdirTemp(b.dir, "e2e-"+role+"-")
	if err != nil {
		return nil, err
	}
	y, err := harness.StartYeyakd(ctx, harness.YeyakdConfig{Bin: b.bin, Dir: dir, Args: []string{
		"--demo", "--demo-people", fmt.Sprint(people), "--demo-clinics", "300", "--db", dsn, "--kafka", kafka,
		"--role", role, "--admission=false", "--log-level", "warn"}})
	if err != nil {
		return nil, err
	}
	defer y.Stop(30 * time.Second)
	cfg := load.Config{Target: y.URL(), Population: population.Config{Seed: 2021, People: people},
		Shape: load.ShapeClosed, Concurrency: e2eConcurrency, SkipEligibility: true, StopAfter: load.StepBook,
		OtherDigitShare: -1, PersonSeed: 11}
	warm := cfg
	warm.Duration = 3 * time.Second
	ws, err := load.Run(ctx, warm)
	if err != nil {
		return nil, err
	}
	cfg.Duration, cfg.Skip = d, int(ws.People.Started)+1
	b.logf("end to end, --role %s: %v of load", role, d)
	return load.Run(ctx, cfg)
}

// yeyakd builds the yeyakd binary once, unless given.
func (b *bench) yeyakd(ctx context.Context) error {
	if b.bin != "" {
		return nil
	}
	bin, err := harness.BuildYeyakd(ctx, b.dir)
	if err != nil {
		return err
	}
	b.bin = bin
	return nil
}

func figCache(ctx context.Context, b *bench) section {
	const pkg, pattern = "./cache/", "^(BenchmarkCacheHitParallel|BenchmarkSyncMapParallel|BenchmarkLRUSingleLockParallel)$"
	bt := b.bt("2s")
	s := section{About: "A hit of the eligibility cache (one LRU under one lock, with TTLs and counters) for 100,000 people in a fixed random order, from every core, against a plain sync.Map lookup of the same keys and against hashicorp/golang-lru's single-lock LRU. Ratio: the cache's ns/op ÷ the baseline's (above 1: the cache costs more per hit).",
		Commands: []string{goBenchCommand(pkg, pattern, bt)}}
	res, err := goBench(ctx, pkg, pattern, bt)
	if err != nil {
		s.Err = err
		return s
	}
	hit, err1 := metric(res, "BenchmarkCacheHitParallel", "ns/op")
	sm, err2 := metric(res, "BenchmarkSyncMapParallel", "ns/op")
	lru, err3 := metric(res, "BenchmarkLRUSingleLockParallel", "ns/op")
	if err := firstErr(err1, err2, err3); err != nil {
		s.Err = err
		return s
	}
	s.Rows = []row{
		{"cache hit, parallel", num(hit, "ns/op"), "sync.Map lookup, parallel", num(sm, "ns/op"), ratio(hit, sm)},
		{"cache hit, parallel", num(hit, "ns/op"), "golang-lru (one lock), parallel", num(lru, "ns/op"), ratio(hit, lru)},
	}
	return s
}

func figFacade(ctx context.Context, b *bench) section {
	const pkg, pattern = "./adapter/", "^(BenchmarkDirectCall|BenchmarkFacadeOverhead|BenchmarkFacadeOverheadSerial)$"
	bt := b.bt("1s")
	s := section{About: "What the facade (bulkhead, circuit breaker, deadline, goroutine hand-off, metrics) adds to a call of a registry that does nothing, against calling that registry directly. Ratio: facade ns/op ÷ direct ns/op — large because the direct call costs almost nothing; the added nanoseconds are the figure that matters next to a registry round trip of milliseconds.",
		Commands: []string{goBenchCommand(pkg, pattern, bt)}}
	res, err := goBench(ctx, pkg, pattern, bt)
	if err != nil {
		s.Err = err
		return s
	}
	direct, err1 := metric(res, "BenchmarkDirectCall", "ns/op")
	serial, err2 := metric(res, "BenchmarkFacadeOverheadSerial", "ns/op")
	par, err3 := metric(res, "BenchmarkFacadeOverhead", "ns/op")
	if err := firstErr(err1, err2, err3); err != nil {
		s.Err = err
		return s
	}
	s.Rows = []row{
		{"facade call, one goroutine", num(serial, "ns/op"), "direct call", num(direct, "ns/op"), ratio(serial, direct)},
		{"facade call, every core", num(par, "ns/op"), "direct call", num(direct, "ns/op"), ratio(par, direct)},
		{"added per call (one goroutine)", num(serial-direct, "ns"), "", "", ""},
	}
	return s
}

func figRelay(ctx context.Context, b *bench) section {
	const pkg, pattern = "./outbox/", "BenchmarkRelayPostgres/batch=1000/timeout=2ms|BenchmarkDrain100k/postgres"
	bt := b.bt("3x")
	s := section{About: "The relay at its defaults (batches of 1,000, 2 ms writer batch timeout) draining a 20,000-event backlog into kfake with acks=all, and a 100,000-event backlog (Kafka was down while bookings went on). " +
		"The baseline is the rate at which bookings produce events: the commit path of section 1 (one event per booking). Ratio: relay events/s ÷ bookings/s (above 1: the relay outruns the bookings); for the drain, its time ÷ the time bookings took to make that backlog.",
		Commands: []string{goBenchCommand(pkg, pattern, bt)}}
	res, err := goBench(ctx, pkg, pattern, bt)
	if err != nil {
		s.Err = err
		return s
	}
	eps, err1 := metric(res, "BenchmarkRelayPostgres/batch=1000/timeout=2ms", "events/s")
	drain, err2 := metric(res, "BenchmarkDrain100k/postgres", "s/drain")
	if err := firstErr(err1, err2); err != nil {
		s.Err = err
		return s
	}
	if b.commit == 0 {
		s.Err = fmt.Errorf("relay %s, but the commit path (its baseline) was not measured", num(eps, "events/s"))
		return s
	}
	made := 100_000 / b.commit
	s.Rows = []row{
		{"relay, 20,000-event backlog", num(eps, "events/s"), "booking commit path", num(b.commit, "bookings/s"), ratio(eps, b.commit)},
		{"drain of a 100,000-event backlog", num(drain, "s"), "making 100,000 bookings", num(made, "s"), ratio(drain, made)},
	}
	return s
}

func figSearch(ctx context.Context, b *bench) section {
	const pkg, pattern = "./booking/clinicsearch/", "^(BenchmarkNear14k|BenchmarkFullScan14k)$"
	bt := b.bt("3000x")
	s := section{About: "\"Clinics near me with doses left\" over 14,000 clinics (60% of clinic-days sold out), limit 20: the spatial index against scanning every clinic and sorting by distance, for 1,000 query points, at the default 10 km radius and the 100 km maximum. Ratio: index p99 ÷ full-scan p99 (below 1: the index is faster).",
		Commands: []string{goBenchCommand(pkg, pattern, bt)}}
	res, err := goBench(ctx, pkg, pattern, bt)
	if err != nil {
		s.Err = err
		return s
	}
	for _, radius := range []string{"10km", "100km"} {
		near, err1 := metric(res, "BenchmarkNear14k/radius="+radius, "p99-µs")
		scan, err2 := metric(res, "BenchmarkFullScan14k/radius="+radius, "p99-µs")
		if err := firstErr(err1, err2); err != nil {
			s.Err = err
			return s
		}
		s.Rows = append(s.Rows, row{"index p99, radius " + radius, num(near, "µs"), "full scan p99", num(scan, "µs"), ratio(near, scan)})
	}
	return s
}

func figSyncInProcess(ctx context.Context, b *bench) section {
	const pkg, pattern = "./adapter/registrysync/", "BenchmarkBookingWithSync"
	bt := b.bt("5s")
	s := section{About: "The booking service on PostgreSQL (eligibility answered from memory), alone and with the outbox relay and the registry sync consumer running in the same process (at the consumer's default 200/s rate limit, and unthrottled). Ratio: with ÷ alone. synced/booked is how far the registry kept up during the run.",
		Commands: []string{goBenchCommand(pkg, pattern, bt)}}
	res, err := goBench(ctx, pkg, pattern, bt)
	if err != nil {
		s.Err = err
		return s
	}
	alone, err := metric(res, pattern+"/alone", "bookings/s")
	if err != nil {
		s.Err = err
		return s
	}
	for _, mode := range []string{"with-relay-and-consumer", "with-relay-and-unthrottled-consumer"} {
		v, err := metric(res, pattern+"/"+mode, "bookings/s")
		if err != nil {
			s.Err = err
			return s
		}
		synced, _ := metric(res, pattern+"/"+mode, "synced/booked")
		s.Rows = append(s.Rows, row{fmt.Sprintf("bookings, %s (synced/booked %.2f)", mode, synced), num(v, "bookings/s"), "alone", num(alone, "bookings/s"), ratio(v, alone)})
	}
	return s
}

func figStall(ctx context.Context, b *bench) section {
	const pkg, pattern = "./adapter/", "^BenchmarkFacadeStallWorstWait$"
	bt := b.bt("5x")
	s := section{About: "The registry accepts calls and never answers (nor honours cancellation); waves of 16 concurrent eligibility reads through the facade with its breaker held closed, so every call waits out the deadline. Baseline: the 800 ms read deadline. Ratio: worst wait ÷ deadline (1.00×: nobody waits past it).",
		Commands: []string{goBenchCommand(pkg, pattern, bt)}}
	res, err := goBench(ctx, pkg, pattern, bt)
	if err != nil {
		s.Err = err
		return s
	}
	worst, err := metric(res, "BenchmarkFacadeStallWorstWait", "max-wait-ms")
	if err != nil {
		s.Err = err
		return s
	}
	s.Rows = []row{{"worst wait", num(worst, "ms"), "read deadline", "800 ms", ratio(worst, 800)}}
	return s
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
