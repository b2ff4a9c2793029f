package outbox

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/segmentio/kafka-go"
)

// Publisher is the part of a *kafka.Writer the relay uses. Tests wrap it
// to inject failures; production passes the writer NewWriter builds.
type Publisher interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// NotifyChannel is the PostgreSQL channel booking/sqlstore notifies in
// every transaction that inserts outbox rows.
const NotifyChannel = "yeyak_outbox"

// RelayConfig configures a Relay. The zero value of every field means the
// documented default.
type RelayConfig struct {
	// BatchSize is the most rows claimed and published at once; 0 means
	// 1000 (the fastest of 100–2000 in BenchmarkRelayPostgres). Keep BatchSize × the largest event under the writer's
	// BatchBytes, so that one partition's share of a batch travels in one
	// produce request (all or nothing: see doc.go on ordering).
	BatchSize int
	// PollInterval is how often the relay looks for rows when nothing woke
	// it: 0 means 5 s on PostgreSQL (LISTEN/NOTIFY wakes it sooner) and
	// 100 ms on SQLite (no notifications).
	PollInterval time.Duration
	// Linger is the least time between two batches that were not full: a
	// burst of notifications then becomes one batch instead of one batch
	// per booking. It adds at most Linger to an event's latency. 0 means
	// 10 ms; negative means none.
	Linger time.Duration
	// PublishTimeout bounds one batch's publish; 0 means 30 s.
	PublishTimeout time.Duration
	// MinBackoff and MaxBackoff bound the exponential backoff (full
	// jitter) after a failed publish or database error; 0 means 200 ms and
	// 30 s.
	MinBackoff, MaxBackoff time.Duration
	// Retention is how long published rows are kept before deletion; 0
	// means 24 h. Negative disables deletion.
	Retention time.Duration
	// CleanupInterval is how often published rows past Retention are
	// deleted; 0 means 1 min.
	CleanupInterval time.Duration
	// StatsInterval is how often the pending-rows and oldest-age gauges are
	// refreshed from the table; 0 means 5 s.
	StatsInterval time.Duration
	// Metrics receives the relay's metrics; nil means a private set (see
	// NewRelayMetrics) that is not registered anywhere.
	Metrics *RelayMetrics
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
	// Name tells relays apart in logs; "" means "relay".
	Name string

	// AfterPublish, when set, is called after a batch is published and
	// before it is marked. A non-nil error makes Run return it without
	// marking, exactly like a crash between publish and mark. It is a
	// test hook.
	AfterPublish func(ctx context.Context, published int) error
}

func (c *RelayConfig) defaults(dialect string) {
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 5 * time.Second
		if dialect == DialectSQLite {
			c.PollInterval = 100 * time.Millisecond
		}
	}
	if c.Linger == 0 {
		c.Linger = 10 * time.Millisecond
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 30 * time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 200 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	if c.Retention == 0 {
		c.Retention = 24 * time.Hour
	}
	if c.CleanupInterval <= 0 {
		c.CleanupInterval = time.Minute
	}
	if c.StatsInterval <= 0 {
		c.StatsInterval = 5 * time.Second
	}
	if c.Metrics == nil {
		c.Metrics = NewRelayMetrics()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Name == "" {
		c.Name = "relay"
	}
}

// Relay publishes outbox rows to Kafka in commit (seq) order and marks them
// published. See the package documentation for its guarantees.
type Relay struct {
	db      *sqlx.DB
	dialect string
	pub     Publisher
	cfg     RelayConfig
	log     *slog.Logger
	wake    chan struct{}

	mu      sync.Mutex
	running bool
	lastErr string
	lastPub time.Time
	recent  recentBatches
}

// NewRelay returns a relay reading db's outbox table and publishing with
// w. dialect is "postgres" or "sqlite" (driver names are accepted too; ""
// means db.DriverName()).
func NewRelay(db *sqlx.DB, dialect string, w Publisher, cfg RelayConfig) (*Relay, error) {
	if db == nil || w == nil {
		return nil, errors.New("outbox: NewRelay needs a database and a publisher")
	}
	d, err := dialectOf(db, dialect)
	if err != nil {
		return nil, err
	}
	cfg.defaults(d)
	return &Relay{
		db: db, dialect: d, pub: w, cfg: cfg,
		log:  cfg.Logger.With("component", "outbox.relay", "relay", cfg.Name),
		wake: make(chan struct{}, 1),
	}, nil
}

// Metrics returns the relay's metrics.
func (r *Relay) Metrics() *RelayMetrics { return r.cfg.Metrics }

// Wake asks the relay to look for rows now (for callers that know they just
// wrote some, e.g. on SQLite where there are no notifications).
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run publishes until ctx is done, then returns nil; it returns an error only
// when AfterPublish does. Database and Kafka errors are logged, counted and
// retried with backoff: the backlog waits in the table.
func (r *Relay) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.running {
		r.mu.Unlock()
		return errors.New("outbox: relay already running")
	}
	r.running = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.running = false
		r.mu.Unlock()
	}()

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	if r.dialect == DialectPostgres {
		wg.Go(func() { r.listen(ctx) })
	}
	wg.Go(func() { r.housekeeping(ctx) })

	r.log.Info("outbox relay started", "dialect", r.dialect, "batch_size", r.cfg.BatchSize, "poll", r.cfg.PollInterval)
	attempt := 0
	for {
		n, err := r.step(ctx)
		var crash *crashError
		if errors.As(err, &crash) {
			return crash.err
		}
		if ctx.Err() != nil {
			r.log.Info("outbox relay stopped")
			return nil
		}
		if err != nil {
			r.setErr(err)
			d := backoff(attempt, r.cfg.MinBackoff, r.cfg.MaxBackoff)
			attempt++
			r.log.Warn("outbox relay batch failed; backing off", "err", err, "attempt", attempt, "backoff", d)
			if !sleep(ctx, d) {
				return nil
			}
			continue
		}
		attempt = 0
		if n >= r.cfg.BatchSize || n < 0 {
			continue // more may be waiting (or another relay held the lock briefly)
		}
		if n > 0 && r.cfg.Linger > 0 && !sleep(ctx, r.cfg.Linger) {
			return nil
		}
		t := time.NewTimer(r.cfg.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-r.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// crashError carries the AfterPublish hook's error out of step.
type crashError struct{ err error }

func (c *crashError) Error() string { return c.err.Error() }

// row is one outbox row as the relay reads it.
type row struct {
	Seq       int64  `db:"seq"`
	ID        string `db:"id"`
	Key       string `db:"aggregate_key"`
	Type      string `db:"event_type"`
	Payload   string `db:"payload"`
	Headers   string `db:"headers"`
	CreatedAt any    `db:"created_at"`
}

// step claims, publishes and marks one batch. It returns the number of rows
// handled: 0 when there was nothing to do, -1 when another relay holds the
// lease (the caller then waits for a wake-up or the poll).
func (r *Relay) step(parent context.Context) (int, error) {
	if err := parent.Err(); err != nil {
		return 0, err
	}
	// A batch once started runs to its end even when Run is being stopped,
	// so a graceful shutdown never leaves published-but-unmarked rows (the
	// duplicates a crash would). It is bounded by the publish timeout.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), 2*r.cfg.PublishTimeout+10*time.Second)
	defer cancel()
	if r.dialect == DialectSQLite {
		// One relay per SQLite file: read outside any transaction so the
		// single writer is never held while Kafka is slow.
		rows, err := r.selectBatch(ctx, r.db)
		if err != nil || len(rows) == 0 {
			return 0, err
		}
		ok, err := r.publish(ctx, rows)
		if err != nil && len(ok) == 0 {
			return 0, err
		}
		if herr := r.hook(ctx, len(ok)); herr != nil {
			return 0, herr
		}
		if merr := r.mark(ctx, r.db, ok); merr != nil {
			return 0, merr
		}
		if err != nil {
			return 0, err
		}
		return len(rows), nil
	}

	// PostgreSQL: the batch runs inside a transaction that holds a
	// transaction-scoped advisory lock, so exactly one relay publishes at a
	// time and its marks commit before the next relay can look. The
	// transaction takes no row locks until the final UPDATE, so bookings
	// never wait for it.
	tx, err := r.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin relay transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	var locked bool
	if err := tx.GetContext(ctx, &locked, tx.Rebind(sqlClaimLock), relayLockKey); err != nil {
		return 0, fmt.Errorf("take relay lease: %w", err)
	}
	if !locked {
		_ = tx.Rollback()
		r.cfg.Metrics.LeaseBusy.Inc()
		r.waitLease(parent)
		return -1, nil
	}
	rows, err := r.selectBatch(ctx, tx)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	ok, perr := r.publish(ctx, rows)
	if perr != nil && len(ok) == 0 {
		return 0, perr
	}
	if herr := r.hook(ctx, len(ok)); herr != nil {
		return 0, herr
	}
	if err := r.mark(ctx, tx, ok); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit relay marks: %w", err)
	}
	if perr != nil {
		return 0, perr
	}
	return len(rows), nil
}

// waitLease pauses a standby relay briefly before it asks for the lease
// again, so relays without work to take do not spin.
func (r *Relay) waitLease(ctx context.Context) {
	d := min(r.cfg.PollInterval, 250*time.Millisecond)
	sleep(ctx, d/2+rand.N(d/2+1))
}

func (r *Relay) hook(ctx context.Context, n int) error {
	if r.cfg.AfterPublish == nil {
		return nil
	}
	if err := r.cfg.AfterPublish(ctx, n); err != nil {
		return &crashError{err: err}
	}
	return nil
}

func (r *Relay) selectBatch(ctx context.Context, q sqlx.QueryerContext) ([]row, error) {
	var rows []row
	if err := sqlx.SelectContext(ctx, q, &rows, r.db.Rebind(sqlSelectBatch), r.cfg.BatchSize); err != nil {
		return nil, fmt.Errorf("select outbox batch: %w", err)
	}
	return rows, nil
}

// publish writes rows as one WriteMessages call and returns the rows Kafka
// acknowledged: all of them, none (err set), or on a partial failure the
// acknowledged ones (err set too). Because one key always maps to one
// partition and one partition's share of a call travels in one produce
// request, a partial failure never acknowledges a later event of a key
// whose earlier event failed.
func (r *Relay) publish(ctx context.Context, rows []row) ([]row, error) {
	msgs := make([]kafka.Message, len(rows))
	for i, rw := range rows {
		m, err := message(rw)
		if err != nil {
			return nil, err
		}
		msgs[i] = m
	}
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	start := time.Now()
	err := r.pub.WriteMessages(pctx, msgs...)
	took := time.Since(start)
	r.cfg.Metrics.PublishLatency.Observe(took.Seconds())
	r.cfg.Metrics.BatchSize.Observe(float64(len(rows)))
	r.mu.Lock()
	r.recent.add(took, len(rows), err == nil)
	r.mu.Unlock()
	if err == nil {
		r.cfg.Metrics.Published.Add(float64(len(rows)))
		r.mu.Lock()
		r.lastPub = time.Now()
		r.lastErr = ""
		r.mu.Unlock()
		return rows, nil
	}
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) && len(werrs) == len(rows) {
		var ok []row
		for i, e := range werrs {
			if e == nil {
				ok = append(ok, rows[i])
			}
		}
		r.cfg.Metrics.Published.Add(float64(len(ok)))
		r.cfg.Metrics.Failed.Add(float64(len(rows) - len(ok)))
		return ok, fmt.Errorf("publish %d of %d outbox events: %w", len(rows)-len(ok), len(rows), err)
	}
	r.cfg.Metrics.Failed.Add(float64(len(rows)))
	return nil, fmt.Errorf("publish %d outbox events: %w", len(rows), err)
}

// message turns an outbox row into the Kafka message: key = aggregate key
// (the person id), value = the JSON payload, headers = the row's headers.
func message(rw row) (kafka.Message, error) {
	var h map[string]string
	if rw.Headers != "" {
		if err := json.Unmarshal([]byte(rw.Headers), &h); err != nil {
			return kafka.Message{}, fmt.Errorf("outbox row %d: headers are not a JSON object of strings: %w", rw.Seq, err)
		}
	}
	hs := make([]kafka.Header, 0, len(h)+2)
	// Fixed order for the standard headers, then the rest sorted, so the
	// bytes on the wire do not depend on map iteration.
	for _, k := range []string{"event-id", "event-type", "schema-version", "traceparent"} {
		if v, ok := h[k]; ok {
			hs = append(hs, kafka.Header{Key: k, Value: []byte(v)})
			delete(h, k)
		}
	}
	if _, ok := findHeader(hs, "event-id"); !ok {
		hs = append(hs, kafka.Header{Key: "event-id", Value: []byte(rw.ID)})
	}
	if _, ok := findHeader(hs, "event-type"); !ok {
		hs = append(hs, kafka.Header{Key: "event-type", Value: []byte(rw.Type)})
	}
	for _, k := range sortedKeys(h) {
		hs = append(hs, kafka.Header{Key: k, Value: []byte(h[k])})
	}
	return kafka.Message{Key: []byte(rw.Key), Value: []byte(rw.Payload), Headers: hs}, nil
}

func (r *Relay) mark(ctx context.Context, e sqlx.ExtContext, rows []row) error {
	if len(rows) == 0 {
		return nil
	}
	seqs := make([]int64, len(rows))
	for i, rw := range rows {
		seqs[i] = rw.Seq
	}
	q, args, err := sqlx.In(sqlMarkPublished, dbTime(r.dialect, time.Now()), seqs)
	if err != nil {
		return fmt.Errorf("build mark statement: %w", err)
	}
	if _, err := e.ExecContext(ctx, r.db.Rebind(q), args...); err != nil {
		return fmt.Errorf("mark %d outbox rows published: %w", len(rows), err)
	}
	return nil
}

// listen wakes the relay on every NOTIFY yeyak_outbox, holding one pool
// connection for LISTEN. If the driver is not pgx, it returns and the
// relay relies on polling.
func (r *Relay) listen(ctx context.Context) {
	attempt := 0
	for ctx.Err() == nil {
		err := r.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errNotPgx) {
			r.log.Info("outbox relay: driver is not pgx; polling only", "poll", r.cfg.PollInterval)
			return
		}
		d := backoff(attempt, r.cfg.MinBackoff, r.cfg.MaxBackoff)
		attempt++
		r.log.Warn("outbox relay: LISTEN connection lost; polling until it is back", "err", err, "retry_in", d)
		if !sleep(ctx, d) {
			return
		}
	}
}

var errNotPgx = errors.New("outbox: driver connection is not pgx")

func (r *Relay) listenOnce(ctx context.Context) error {
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("get LISTEN connection: %w", err)
	}
	defer conn.Close()
	var lerr error
	err = conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			lerr = errNotPgx
			return nil
		}
		pc := sc.Conn()
		if _, err := pc.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
			lerr = fmt.Errorf("LISTEN %s: %w", NotifyChannel, err)
			return driver.ErrBadConn
		}
		r.Wake() // rows may have arrived before LISTEN took effect
		for {
			if _, err := pc.WaitForNotification(ctx); err != nil {
				lerr = err
				// The connection is subscribed (or broken): never hand it
				// back to the pool.
				return driver.ErrBadConn
			}
			r.Wake()
		}
	})
	if lerr != nil {
		return lerr
	}
	if err != nil && !errors.Is(err, driver.ErrBadConn) && !errors.Is(err, sql.ErrConnDone) {
		return err
	}
	return nil
}

// housekeeping refreshes the backlog gauges and deletes published rows past
// retention.
func (r *Relay) housekeeping(ctx context.Context) {
	stats := time.NewTicker(r.cfg.StatsInterval)
	defer stats.Stop()
	cleanup := time.NewTicker(r.cfg.CleanupInterval)
	defer cleanup.Stop()
	r.refreshStats(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-stats.C:
			r.refreshStats(ctx)
		case <-cleanup.C:
			if r.cfg.Retention > 0 {
				if n, err := r.Cleanup(ctx, time.Now().Add(-r.cfg.Retention)); err != nil {
					r.log.Warn("outbox cleanup failed", "err", err)
				} else if n > 0 {
					r.log.Info("outbox cleanup deleted published rows", "rows", n)
				}
			}
		}
	}
}

// Cleanup deletes rows published before cutoff, in chunks, and returns how
// many it deleted.
func (r *Relay) Cleanup(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for {
		res, err := r.db.ExecContext(ctx, r.db.Rebind(sqlDeletePublished), dbTime(r.dialect, cutoff), 5000)
		if err != nil {
			return total, fmt.Errorf("delete published outbox rows: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
		if n < 5000 {
			return total, nil
		}
	}
}

func (r *Relay) refreshStats(ctx context.Context) {
	b, err := Backlog(ctx, r.db, r.dialect)
	if err != nil {
		r.log.Warn("outbox backlog stats failed", "err", err)
		return
	}
	r.cfg.Metrics.Pending.Set(float64(b.Pending))
	r.cfg.Metrics.OldestAge.Set(b.OldestAge.Seconds())
}

// BacklogStats is the state of the outbox table.
type BacklogStats struct {
	// Pending is the number of rows not yet published.
	Pending int64 `json:"pending"`
	// OldestAge is the age of the oldest unpublished row (0 when none).
	OldestAge time.Duration `json:"-"`
	// Published is the number of published rows still retained.
	Published int64 `json:"published_retained"`
}

// Backlog reads the outbox table's backlog.
func Backlog(ctx context.Context, db *sqlx.DB, dialect string) (BacklogStats, error) {
	var b BacklogStats
	if err := db.GetContext(ctx, &b.Pending, sqlPending); err != nil {
		return b, fmt.Errorf("count pending outbox rows: %w", err)
	}
	if err := db.GetContext(ctx, &b.Published, sqlPublishedIn); err != nil {
		return b, fmt.Errorf("count published outbox rows: %w", err)
	}
	if b.Pending == 0 {
		return b, nil
	}
	var created any
	err := db.GetContext(ctx, &created, sqlOldest)
	if errors.Is(err, sql.ErrNoRows) {
		return b, nil
	}
	if err != nil {
		return b, fmt.Errorf("oldest pending outbox row: %w", err)
	}
	if t, ok := scanTime(created); ok {
		b.OldestAge = max(time.Since(t), 0)
	}
	return b, nil
}

// recentBatchesKept is how many of the last publishes PublishStats
// describes.
const recentBatchesKept = 512

// recentBatches is a ring of the last publishes, for ops.
type recentBatches struct {
	lat   [recentBatchesKept]time.Duration
	size  [recentBatchesKept]int32
	ok    [recentBatchesKept]bool
	n     int // filled slots
	next  int
	total int64
}

func (rb *recentBatches) add(d time.Duration, size int, ok bool) {
	rb.lat[rb.next], rb.size[rb.next], rb.ok[rb.next] = d, int32(size), ok
	rb.next = (rb.next + 1) % recentBatchesKept
	rb.n = min(rb.n+1, recentBatchesKept)
	rb.total++
}

// PublishStats summarises the relay's publishes to Kafka: how long one
// batch's WriteMessages took (acks from all in-sync replicas) and how many
// events it carried, over the last batches (up to 512), plus the totals
// since the relay was created. Durations are in seconds.
type PublishStats struct {
	// Batches is the number of publishes since the relay was created
	// (failed ones included); Recent how many of the last ones the figures
	// below cover, and RecentFailed how many of those failed.
	Batches      int64 `json:"batches_total"`
	Recent       int   `json:"recent_batches"`
	RecentFailed int   `json:"recent_failed"`
	// Latency of a publish: median, 90th and 99th percentile, and maximum.
	LatencyP50 float64 `json:"latency_p50_seconds"`
	LatencyP90 float64 `json:"latency_p90_seconds"`
	LatencyP99 float64 `json:"latency_p99_seconds"`
	LatencyMax float64 `json:"latency_max_seconds"`
	// Events per batch: median, mean and maximum. Batches well below the
	// relay's BatchSize mean the relay keeps up as events arrive; batches
	// at BatchSize mean it is draining a backlog.
	SizeP50  float64 `json:"batch_size_p50"`
	SizeMean float64 `json:"batch_size_mean"`
	SizeMax  int     `json:"batch_size_max"`
}

// PublishStats returns the summary of the relay's recent publishes.
func (r *Relay) PublishStats() PublishStats {
	r.mu.Lock()
	rb := r.recent
	r.mu.Unlock()
	st := PublishStats{Batches: rb.total, Recent: rb.n}
	if rb.n == 0 {
		return st
	}
	lat := slices.Clone(rb.lat[:rb.n])
	size := make([]int, rb.n)
	total := 0
	for i := range rb.n {
		size[i] = int(rb.size[i])
		total += size[i]
		if !rb.ok[i] {
			st.RecentFailed++
		}
	}
	slices.Sort(lat)
	slices.Sort(size)
	q := func(p float64) int { return min(rb.n-1, int(p*float64(rb.n))) }
	st.LatencyP50, st.LatencyP90, st.LatencyP99 = lat[q(0.5)].Seconds(), lat[q(0.9)].Seconds(), lat[q(0.99)].Seconds()
	st.LatencyMax = lat[rb.n-1].Seconds()
	st.SizeP50, st.SizeMean, st.SizeMax = float64(size[q(0.5)]), float64(total)/float64(rb.n), size[rb.n-1]
	return st
}

// Status is what the relay reports to ops.
type Status struct {
	Running       bool      `json:"running"`
	LastPublished time.Time `json:"last_published,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
}

// Status returns the relay's state.
func (r *Relay) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Status{Running: r.running, LastPublished: r.lastPub, LastError: r.lastErr}
}

func (r *Relay) setErr(err error) {
	r.mu.Lock()
	r.lastErr = err.Error()
	r.mu.Unlock()
}

// backoff returns the wait before retry number attempt (0-based):
// exponential from lo, capped at hi, with full jitter in [d/2, d].
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 0; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx is done; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
