package sqlstore

import (
	"context"
	"strings"
	"sync"

	"github.com/jmoiron/sqlx"
)

// versionWatermark finds, on PostgreSQL, the highest quota version below
// which no change can still become visible.
//
// A writer takes nextval('quota_version_seq') inside an UPDATE or INSERT
// on quotas, so it holds RowExclusiveLock on quotas from before it draws a
// version until its transaction ends. Hence a probe — read the sequence's
// last value L, then the set H of other transactions holding that lock —
// proves: every transaction that drew a version ≤ L has ended or is in H.
// Once every member of H has ended, all versions ≤ L are committed (or
// rolled back) and visible to any later snapshot. A probe with H empty is
// safe at once; otherwise a later call finds it safe (booking transactions
// last milliseconds, the snapshot polls every second or so), so the
// watermark trails the sequence by about one poll under load.
type versionWatermark struct {
	mu     sync.Mutex
	probes []versionProbe // oldest first, none safe yet
	safe   int64
}

type versionProbe struct {
	last    int64
	holders []string // "pid:virtualtransaction" of lock holders
}

// maxProbes bounds the pending probes; dropping the oldest only delays the
// watermark.
const maxProbes = 256

const (
	sqlVersionLast = `SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM quota_version_seq`
	// sqlVersionHolders lists the other transactions that may be writing
	// quota rows in this database.
	sqlVersionHolders = `SELECT COALESCE(string_agg(pid::text || ':' || virtualtransaction, ','), '')
		FROM pg_locks
		WHERE locktype = 'relation' AND mode = 'RowExclusiveLock'
		  AND relation = 'quotas'::regclass
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND pid <> pg_backend_pid()`
)

// watermark probes and returns the highest safe version.
func (w *versionWatermark) watermark(ctx context.Context, x *sqlx.DB) (int64, error) {
	var last int64
	if err := x.QueryRowxContext(ctx, sqlVersionLast).Scan(&last); err != nil {
		return 0, err
	}
	var list string
	if err := x.QueryRowxContext(ctx, sqlVersionHolders).Scan(&list); err != nil {
		return 0, err
	}
	var now []string
	if list != "" {
		now = strings.Split(list, ",")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.probes = append(w.probes, versionProbe{last: last, holders: now})
	active := make(map[string]bool, len(now))
	for _, h := range now {
		active[h] = true
	}
	// A probe is safe when none of its holders is still active (the new
	// probe is safe when nobody held the lock). Everything up to the
	// newest safe probe can be dropped.
	cut := -1
	for i, p := range w.probes {
		if i == len(w.probes)-1 && len(p.holders) > 0 {
			break // the new probe's holders are active by definition
		}
		ended := true
		for _, h := range p.holders {
			if active[h] {
				ended = false
				break
			}
		}
		if ended {
			w.safe = max(w.safe, p.last)
			cut = i
		}
	}
	w.probes = w.probes[cut+1:]
	if len(w.probes) > maxProbes {
		w.probes = w.probes[len(w.probes)-maxProbes:]
	}
	return w.safe, nil
}
