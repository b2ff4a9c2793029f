package outbox

import (
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// The SQL dialects the outbox runs on. Every dialect difference of the
// package is named in this file.
const (
	DialectPostgres = "postgres"
	DialectSQLite   = "sqlite"
)

// normDialect accepts the spellings the rest of the project uses for the
// two databases (driver names included) and returns DialectPostgres or
// DialectSQLite.
func normDialect(d string) (string, error) {
	switch strings.ToLower(d) {
	case "postgres", "postgresql", "pgx", "pg":
		return DialectPostgres, nil
	case "sqlite", "sqlite3":
		return DialectSQLite, nil
	}
	return "", fmt.Errorf("outbox: unknown SQL dialect %q (want postgres or sqlite)", d)
}

// sqliteTime is the fixed-width UTC text form the outbox package writes to
// SQLite timestamp columns, so that text comparison orders them correctly.
const sqliteTime = "2006-01-02T15:04:05.000000000Z"

// dbTime returns t in the form the dialect stores timestamps in.
func dbTime(dialect string, t time.Time) any {
	if dialect == DialectSQLite {
		return t.UTC().Format(sqliteTime)
	}
	return t.UTC()
}

// scanTime turns what a driver returns for a timestamp column (time.Time on
// PostgreSQL, text on SQLite) into a time.Time; ok is false for NULL or
// unparsable values.
func scanTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x, true
	case string:
		return parseTimeText(x)
	case []byte:
		return parseTimeText(string(x))
	}
	return time.Time{}, false
}

func parseTimeText(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// relayLockKey is the PostgreSQL advisory lock key that makes one relay at
// a time publish a batch ("yeyakout" in ASCII).
const relayLockKey int64 = 0x796579616b6f7574

// SQL texts, written with ? placeholders and rebound per dialect.
const (
	sqlClaimLock   = `SELECT pg_try_advisory_xact_lock(?)`
	sqlSelectBatch = `SELECT seq, id, aggregate_key, event_type, CAST(payload AS TEXT) AS payload,
	CAST(headers AS TEXT) AS headers, created_at
FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT ?`
	sqlMarkPublished   = `UPDATE outbox SET published_at = ? WHERE seq IN (?)`
	sqlDeletePublished = `DELETE FROM outbox WHERE seq IN (
	SELECT seq FROM outbox WHERE published_at IS NOT NULL AND published_at < ? ORDER BY seq LIMIT ?)`
	sqlPending     = `SELECT COUNT(*) FROM outbox WHERE published_at IS NULL`
	sqlOldest      = `SELECT created_at FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT 1`
	sqlPublishedIn = `SELECT COUNT(*) FROM outbox WHERE published_at IS NOT NULL`

	sqlInboxPurge = `DELETE FROM inbox WHERE processed_at < ?`
	sqlInboxSeen  = `SELECT COUNT(*) FROM inbox WHERE event_id = ?`
	sqlInboxPG    = `INSERT INTO inbox (event_id, processed_at) VALUES (?, ?) ON CONFLICT (event_id) DO NOTHING`
	sqlInboxLite  = `INSERT OR IGNORE INTO inbox (event_id, processed_at) VALUES (?, ?)`

	sqlDeadLetterPG = `INSERT INTO dead_letters (id, topic, partition_no, offset_no, msg_key, payload, headers, error, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (topic, partition_no, offset_no) DO NOTHING`
	sqlDeadLetterLite = `INSERT OR IGNORE INTO dead_letters (id, topic, partition_no, offset_no, msg_key, payload, headers, error, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlDeadLetterList = `SELECT id, topic, partition_no, offset_no, error, created_at, retried_at
FROM dead_letters ORDER BY created_at DESC, id LIMIT ?`
	sqlDeadLetterCount = `SELECT COUNT(*) FROM dead_letters WHERE retried_at IS NULL`
	sqlDeadLetterGet   = `SELECT id, topic, partition_no, offset_no, msg_key, payload, headers, error
FROM dead_letters WHERE id = ?`
	sqlDeadLetterRetried = `UPDATE dead_letters SET retried_at = ? WHERE id = ?`
)

// inboxInsert returns the dialect's insert-if-absent into the inbox.
func inboxInsert(dialect string) string {
	if dialect == DialectSQLite {
		return sqlInboxLite
	}
	return sqlInboxPG
}

// deadLetterInsert returns the dialect's insert-if-absent into dead_letters.
func deadLetterInsert(dialect string) string {
	if dialect == DialectSQLite {
		return sqlDeadLetterLite
	}
	return sqlDeadLetterPG
}

// dialectOf returns the normalised dialect: d if set, else db's driver name.
func dialectOf(db *sqlx.DB, d string) (string, error) {
	if d == "" && db != nil {
		d = db.DriverName()
	}
	return normDialect(d)
}
