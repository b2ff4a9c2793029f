package harness

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Quiet is the state WaitQuiet last saw.
type Quiet struct {
	// Pending outbox rows not yet published to Kafka.
	Pending int64
	// Unhandled events published or not that the sync consumer has neither
	// applied (inbox) nor dead-lettered.
	Unhandled int64
	// Provisional bookings not yet verified against the registry.
	Provisional int64
	// Took is how long the system took to settle.
	Took time.Duration
}

func (q Quiet) settled() bool { return q.Pending == 0 && q.Unhandled == 0 && q.Provisional == 0 }

func (q Quiet) String() string {
	return fmt.Sprintf("pending %d, unhandled %d, provisional %d", q.Pending, q.Unhandled, q.Provisional)
}

// Settle reads the settling state once.
func Settle(ctx context.Context, db *sql.DB) (Quiet, error) {
	var q Quiet
	err := db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM outbox WHERE published_at IS NULL),
		(SELECT COUNT(*) FROM outbox o WHERE NOT EXISTS (SELECT 1 FROM inbox i WHERE i.event_id = o.id)
			AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.headers LIKE '%' || o.id || '%')),
		(SELECT COUNT(*) FROM bookings WHERE status = 'provisional')`).Scan(&q.Pending, &q.Unhandled, &q.Provisional)
	if err != nil {
		return q, fmt.Errorf("read settling state: %w", err)
	}
	return q, nil
}

// WaitQuiet polls db until the system has settled — every outbox row
// published, every event applied or dead-lettered by the sync consumer, no
// provisional booking left — on two reads in a row, or until timeout. The
// load must have stopped.
func WaitQuiet(ctx context.Context, db *sql.DB, timeout time.Duration) (Quiet, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	calm := 0
	var q Quiet
	for {
		var err error
		q, err = Settle(ctx, db)
		switch {
		case err != nil:
			calm = 0 // the database may be restarting
		case q.settled():
			calm++
		default:
			calm = 0
		}
		if calm >= 2 {
			q.Took = time.Since(start)
			return q, nil
		}
		if time.Now().After(deadline) {
			q.Took = time.Since(start)
			if err != nil {
				return q, fmt.Errorf("not settled after %v: %w", timeout, err)
			}
			return q, fmt.Errorf("not settled after %v: %s", timeout, q)
		}
		select {
		case <-ctx.Done():
			return q, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
