package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/yeyak/yeyak/booking"
)

//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql
var migrationsFS embed.FS

// Options configures Open. The zero value is a good default.
type Options struct {
	// MaxOpenConns bounds the connection pool. On PostgreSQL the default is
	// 4 × GOMAXPROCS, at least 16: a booking's time is mostly round trips
	// to the server, and with too few connections requests queue for one
	// while the server idles (seen under a surge on 2 cores). On SQLite the default is 4 for a file (write
	// transactions are serialized by the store whatever the pool size) and
	// always 1 for sqlite::memory:.
	MaxOpenConns int
	// MaxIdleConns is how many idle connections are kept; default
	// MaxOpenConns.
	MaxIdleConns int
	// ConnMaxIdleTime closes connections idle for longer; default 5 minutes
	// (never for sqlite::memory:, whose data lives in its connection).
	ConnMaxIdleTime time.Duration
	// BusyTimeout is SQLite's busy_timeout: how long a statement waits for
	// another connection's write lock before failing; default 10 s.
	BusyTimeout time.Duration
	// SkipMigrations leaves the schema alone at Open (a separate
	// `yeyakd migrate` step applies it); Ping then fails until it is done.
	SkipMigrations bool
	// OutboxNotify says how the store signals relays on PostgreSQL; the
	// default is NotifyInTx. Ignored on SQLite.
	OutboxNotify NotifyMode
	// Logger receives operational events (migrations applied); default
	// slog.Default(). Nothing personal is ever logged.
	Logger *slog.Logger
}

// DB is the booking store on PostgreSQL or SQLite. It implements
// booking.Store and holds the HTTP API's idempotency keys. It is safe for
// concurrent use.
type DB struct {
	x       *sqlx.DB
	dialect Dialect
	log     *slog.Logger
	goose   *goose.Provider
	latest  int64 // highest embedded migration version

	// writeLock serializes write transactions on SQLite, so they queue in
	// Go instead of polling SQLite's busy handler; nil on PostgreSQL.
	writeLock chan struct{}

	q        queries
	stmts    atomic.Pointer[statements]
	stmtsMu  sync.Mutex
	versions versionWatermark // PostgreSQL only
	notify   *notifier        // NotifyAfterCommit only

	// bookInTx makes the booking path's writes run as transactions on
	// PostgreSQL too, instead of one statement each (bookOne,
	// reservePair): the baseline of BenchmarkBookPostgres.
	bookInTx bool

	// rolled remembers rotation waves known to have rolled over
	// (rolledKey → true); a roll-over is never undone.
	rolled sync.Map
	// testHookRollOver, when set by a test, runs inside RollOverWave's
	// transaction after the doses moved and before the roll-over is
	// recorded as finished; an error rolls the transaction back, as a crash
	// there would.
	testHookRollOver func() error
}

var _ booking.Store = (*DB)(nil)

// Open connects to the database named by dsn, applies the embedded
// migrations (unless opts.SkipMigrations) and prepares the hot-path
// statements. dsn is "sqlite:PATH" (PATH may carry modernc.org/sqlite query
// parameters), "sqlite::memory:" (one private in-memory database, for
// tests), or a "postgres://" / "postgresql://" URL.
//
// SQLite is opened in WAL mode with foreign keys on, a busy timeout and
// BEGIN IMMEDIATE transactions, so writers wait for each other instead of
// failing with "database is locked".
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	dialect, driverDSN, memory, err := parseDSN(dsn, opts.BusyTimeout)
	if err != nil {
		return nil, err
	}
	if opts.MaxOpenConns <= 0 {
		if dialect == Postgres {
			opts.MaxOpenConns = max(16, 4*runtime.GOMAXPROCS(0))
		} else {
			opts.MaxOpenConns = 4
		}
	}
	if memory {
		opts.MaxOpenConns = 1
	}
	switch opts.OutboxNotify {
	case "", NotifyInTx:
	case NotifyAfterCommit:
		if dialect == Postgres {
			if driverDSN, err = withNotifyParam(driverDSN); err != nil {
				return nil, booking.Errorf(booking.EINVALID, "bad PostgreSQL URL")
			}
		}
	default:
		return nil, booking.Errorf(booking.EINVALID, "unknown OutboxNotify mode %q", opts.OutboxNotify)
	}
	if opts.MaxIdleConns <= 0 || opts.MaxIdleConns > opts.MaxOpenConns {
		opts.MaxIdleConns = opts.MaxOpenConns
	}
	if opts.ConnMaxIdleTime <= 0 {
		opts.ConnMaxIdleTime = 5 * time.Minute
	}

	x, err := sqlx.Open(dialect.DriverName(), driverDSN)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open %s: %w", dialect, err)
	}
	x.SetMaxOpenConns(opts.MaxOpenConns)
	x.SetMaxIdleConns(opts.MaxIdleConns)
	if !memory {
		x.SetConnMaxIdleTime(opts.ConnMaxIdleTime)
	}
	db := &DB{x: x, dialect: dialect, log: opts.Logger.With("component", "sqlstore", "dialect", string(dialect))}
	if dialect == SQLite {
		db.writeLock = make(chan struct{}, 1)
	}
	if err := db.init(ctx, opts); err != nil {
		x.Close()
		return nil, err
	}
	if dialect == Postgres && opts.OutboxNotify == NotifyAfterCommit {
		db.startNotifier()
	}
	return db, nil
}

func (db *DB) init(ctx context.Context, opts Options) error {
	if err := db.x.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlstore: connect to %s: %w", db.dialect, err)
	}
	sub, err := fs.Sub(migrationsFS, db.dialect.migrationsDir())
	if err != nil {
		return fmt.Errorf("sqlstore: migrations: %w", err)
	}
	// Each owner numbers migrations in its own range (migrations/README.md),
	// so a database may have 00010 applied before 00004 exists: apply the
	// missing ones instead of refusing.
	popts := []goose.ProviderOption{goose.WithAllowOutofOrder(true)}
	if db.dialect == Postgres {
		// Several yeyakd processes may start at once; one migrates.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return fmt.Errorf("sqlstore: migration lock: %w", err)
		}
		popts = append(popts, goose.WithSessionLocker(locker))
	}
	db.goose, err = goose.NewProvider(db.dialect.gooseDialect(), db.x.DB, sub, popts...)
	if err != nil {
		return fmt.Errorf("sqlstore: migrations: %w", err)
	}
	for _, s := range db.goose.ListSources() {
		db.latest = max(db.latest, s.Version)
	}
	if !opts.SkipMigrations {
		if err := db.Migrate(ctx); err != nil {
			return err
		}
	}
	db.q = newQueries(db.dialect)
	if !opts.SkipMigrations {
		if _, err := db.statements(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Migrate applies the embedded migrations not yet applied. It is safe to
// call from several processes at once on PostgreSQL (an advisory lock
// serializes them).
func (db *DB) Migrate(ctx context.Context) error {
	res, err := db.goose.Up(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: migrate %s: %w", db.dialect, err)
	}
	for _, r := range res {
		db.log.InfoContext(ctx, "migration applied", "version", r.Source.Version, "duration", r.Duration)
	}
	return nil
}

// MigrationVersion returns the schema version applied to the database and
// the latest version embedded in this binary.
func (db *DB) MigrationVersion(ctx context.Context) (current, latest int64, err error) {
	current, err = db.goose.GetDBVersion(ctx)
	if err != nil {
		return 0, db.latest, fmt.Errorf("sqlstore: migration version: %w", err)
	}
	return current, db.latest, nil
}

// Ping checks that the database answers and that every embedded migration
// is applied (a database migrated by a newer binary passes).
func (db *DB) Ping(ctx context.Context) error {
	if err := db.x.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlstore: ping %s: %w", db.dialect, err)
	}
	pending, err := db.goose.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: check migrations: %w", err)
	}
	if pending {
		return fmt.Errorf("sqlstore: migrations up to version %d are not all applied: run migrations", db.latest)
	}
	return nil
}

// DB returns the underlying connection pool, for packages that own tables
// of their own in this database (the outbox relay).
func (db *DB) DB() *sqlx.DB { return db.x }

// Dialect returns which database this is.
func (db *DB) Dialect() Dialect { return db.dialect }

// Close stops the notifier, closes the prepared statements and the pool.
func (db *DB) Close() error {
	if db.notify != nil {
		db.notify.close()
	}
	if st := db.stmts.Load(); st != nil {
		st.close()
	}
	return db.x.Close()
}

// errRetry asks inTx to run the transaction again: a row it read changed
// before it could update it.
var errRetry = errors.New("sqlstore: concurrent change, retry")

// maxTxAttempts bounds how often a transaction is run again after a
// deadlock, serialization failure or concurrent change.
const maxTxAttempts = 5

// inTx runs fn in a write transaction, committing if it returns nil and
// rolling back otherwise. Retryable failures run fn again.
func (db *DB) inTx(ctx context.Context, op string, fn func(tx *sqlx.Tx) error) error {
	var err error
	for range maxTxAttempts {
		err = db.tryTx(ctx, fn)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || (!errors.Is(err, errRetry) && !db.dialect.retryable(err)) {
			break
		}
	}
	var be *booking.Error
	if errors.As(err, &be) {
		return err
	}
	return fmt.Errorf("sqlstore: %s: %w", op, err)
}

func (db *DB) tryTx(ctx context.Context, fn func(tx *sqlx.Tx) error) (err error) {
	if db.writeLock != nil {
		select {
		case db.writeLock <- struct{}{}:
			defer func() { <-db.writeLock }()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	tx, err := db.x.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// inOutboxTx is inTx for a transaction that writes events: after it
// commits, relays are signalled (NotifyAfterCommit).
func (db *DB) inOutboxTx(ctx context.Context, op string, events []booking.Event, fn func(tx *sqlx.Tx) error) error {
	err := db.inTx(ctx, op, fn)
	if err == nil && len(events) > 0 {
		db.outboxCommitted()
	}
	return err
}

// internal wraps an unexpected database error for the operator's logs.
// A database that cannot be reached (down, restarting, out of
// connections) is booking.EUNAVAILABLE instead: the caller may retry
// shortly, and nothing was written.
func internal(op string, err error) error {
	if unavailable(err) {
		return &booking.Error{Code: booking.EUNAVAILABLE, Message: "The booking database is unavailable; try again shortly.",
			Err: fmt.Errorf("sqlstore: %s: %w", op, err)}
	}
	return fmt.Errorf("sqlstore: %s: %w", op, err)
}

// notFound reports whether err is sql.ErrNoRows.
func notFound(err error) bool { return errors.Is(err, sql.ErrNoRows) }
