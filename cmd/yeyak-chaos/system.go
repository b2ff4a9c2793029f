package main

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/yeyak/yeyak/cmd/yeyak-chaos/harness"
	"github.com/yeyak/yeyak/cmd/yeyak-load/load"
	"github.com/yeyak/yeyak/mocks/population"
	"github.com/yeyak/yeyak/mocks/registry"
	"github.com/yeyak/yeyak/outbox"
)

// seed is the demo population's seed (yeyakd --demo).
const seed = 2021

// worldClock is every system's clock (yeyakd --now, the mock registry, the
// load's idea of today): noon in Seoul, so no run meets a booking window's
// opening or the waiting room's pre-opening draw, whatever the hour.
var worldClock = harness.NoonClock()

// system is one scenario's yeyak: yeyakd (real binary) on a database of
// its own in the harness's PostgreSQL, a Kafka broker and the mock
// registry in this process.
type system struct {
	name  string
	mode  Mode
	dir   string
	pg    *harness.Postgres
	dsn   string
	db    *sql.DB
	kafka *harness.Kafka
	reg   *registry.Registry
	srv   *registry.Server
	y     *harness.Yeyakd
	log   io.Writer

	mu    sync.Mutex
	acked []load.BookingRecord
	skip  int // people of each class already used by earlier streams
}

// newSystem starts everything a scenario needs; args are yeyakd flags
// beyond the common ones.
func newSystem(ctx context.Context, name string, mode Mode, bin string, pg *harness.Postgres, baseDir string, log io.Writer, args ...string) (*system, error) {
	s := &system{name: name, mode: mode, pg: pg, log: log}
	s.dir = filepath.Join(baseDir, name)
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, err
	}
	var err error
	dbName := "chaos_" + strings.ReplaceAll(name, "-", "_")
	if s.dsn, err = pg.CreateDatabase(ctx, dbName); err != nil {
		return nil, err
	}
	if s.db, err = sql.Open("pgx", s.dsn); err != nil {
		return nil, err
	}
	s.db.SetMaxOpenConns(4)
	if s.kafka, err = harness.StartKafka([]string{outbox.DefaultTopic, outbox.DefaultTopic + outbox.DeadLetterSuffix}, 6); err != nil {
		s.close()
		return nil, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s.reg = registry.New(registry.Config{Population: population.Config{Seed: seed, People: mode.People}, Now: worldClock.Now, Logger: quiet})
	if s.srv, err = s.reg.StartServer(registry.ServerConfig{}); err != nil {
		s.close()
		return nil, err
	}
	s.y, err = harness.StartYeyakd(ctx, harness.YeyakdConfig{Bin: bin, Dir: s.dir, Clock: worldClock, Args: append([]string{
		"--demo", "--demo-people", fmt.Sprint(mode.People), "--demo-clinics", fmt.Sprint(mode.Clinics),
		"--db", s.dsn, "--registry", "gateway:" + s.srv.URL(), "--kafka", s.kafka.Addr(),
	}, args...)})
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *system) close() {
	if s.y != nil {
		_ = s.y.Stop(20 * time.Second)
	}
	if s.srv != nil {
		_ = s.reg.SetFaults(registry.Faults{})
		_ = s.srv.Close()
	}
	if s.kafka != nil {
		_ = s.kafka.Close()
	}
	if s.db != nil {
		_ = s.db.Close()
	}
}

func (s *system) logf(format string, args ...any) {
	if s.log != nil {
		fmt.Fprintf(s.log, "  [%s] "+format+"\n", append([]any{s.name}, args...)...)
	}
}

// progressLog writes the load's progress lines to the system's log.
type progressLog struct{ s *system }

func (p progressLog) Write(b []byte) (int, error) {
	p.s.logf("load %s", strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// stream is one load run's settings beyond the common ones.
type stream struct {
	rate      float64
	duration  time.Duration
	count     int
	skip      int
	stopAfter string
	sameDigit bool          // only people of today's digit (the cached cohort)
	known     bool          // only people the registry knows (the cached cohort)
	drain     time.Duration // 0 means the mode's Drain

	// The surge's: a spike of count people with time constant decay (or
	// arrivals paced by feed), people leaving the line queueDrain after the
	// last arrival, from sources client addresses over conns connections.
	shape       load.Shape // "" means steady
	decay       time.Duration
	feed        <-chan struct{}
	onAdmitted  func()
	queueDrain  time.Duration
	maxInFlight int
	sources     int
	conns       int
}

// reserve returns a Skip for a stream that will use at most n people of
// each class, after every stream reserved before it.
func (s *system) reserve(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.skip
	s.skip += n
	return k
}

// load runs one stream against yeyakd and keeps what it acknowledged.
func (s *system) load(ctx context.Context, st stream) (*load.Summary, error) {
	cfg := load.Config{
		Target: s.y.URL(), Population: population.Config{Seed: seed, People: s.mode.People},
		Rate: st.rate, Duration: st.duration, Count: st.count, Skip: st.skip,
		StopAfter: st.stopAfter, CancelShare: 0.1, RescheduleShare: 0.1,
		Drain: cmp.Or(st.drain, s.mode.Drain), PersonSeed: 7, Record: true, RunID: fmt.Sprintf("%s-%d", s.name, st.skip),
		Shape: cmp.Or(st.shape, load.ShapeSteady), Decay: st.decay, Feed: st.feed, OnAdmitted: st.onAdmitted,
		QueueDrain: st.queueDrain, MaxInFlight: st.maxInFlight, Sources: st.sources, Conns: st.conns,
		Now: worldClock.Now, Today: worldClock.Today(),
	}
	if s.log != nil {
		// Narrated runs log the load's line a second (people, bookings,
		// that second's booking p99): when, in a run, the slowest
		// bookings were.
		cfg.Progress = progressLog{s}
	}
	if st.sameDigit {
		cfg.OtherDigitShare = -1
	}
	if st.known {
		cfg.Filter = func(p population.Person) bool { return !p.Unknown }
	}
	sum, err := load.Run(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.acked = append(s.acked, sum.Bookings...)
	s.mu.Unlock()
	return sum, nil
}

// people is how many people of one class a stream of rate for d may use.
func people(rate float64, d time.Duration) int { return int(math.Ceil(rate*d.Seconds())) + 1 }

// settleAndCheck waits for quiescence, then checks the invariants.
func (s *system) settleAndCheck(ctx context.Context, v *verdict) {
	q, err := harness.WaitQuiet(ctx, s.db, s.mode.Settle)
	v.settled = q.Took
	if err != nil {
		v.fail("did not settle: %v (relay: %s)", err, s.outboxStatus(ctx))
		return
	}
	res, err := harness.Check(ctx, s.db, s.reg, s.acked)
	if err != nil {
		v.fail("check: %v", err)
		return
	}
	v.result = res
	for _, x := range res.Violations {
		v.fail("%s", x)
	}
	var stuck int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM idempotency_keys WHERE status_code = 0`).Scan(&stuck); err == nil {
		v.stuckKeys = stuck
	}
}

// outboxStatus is the ops summary of the outbox, for a failure message.
func (s *system) outboxStatus(ctx context.Context) string {
	q, err := harness.Settle(ctx, s.db)
	if err != nil {
		return err.Error()
	}
	return q.String()
}
