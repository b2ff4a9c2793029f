package sqlstore

import (
	"context"
	"time"

	"github.com/yeyak/yeyak/booking"
)

const (
	// sqlClaimIdem inserts the claim, or takes over an in-progress claim
	// older than StaleClaimAfter (its request died with its process).
	sqlClaimIdem = `INSERT INTO idempotency_keys (person_id, key, request_hash, status_code, created_at)
		VALUES (?, ?, ?, 0, ?) ON CONFLICT (person_id, key) DO UPDATE
		SET request_hash = excluded.request_hash, created_at = excluded.created_at
		WHERE idempotency_keys.status_code = 0 AND idempotency_keys.created_at < ?`
	sqlIdem = `SELECT person_id, key, request_hash, status_code, response_body, created_at
		FROM idempotency_keys WHERE person_id = ? AND key = ?`
	sqlCompleteIdem = `UPDATE idempotency_keys SET status_code = ?, response_body = ? WHERE person_id = ? AND key = ?`
	sqlReleaseIdem  = `DELETE FROM idempotency_keys WHERE person_id = ? AND key = ? AND status_code = 0`
	sqlPurgeIdem    = `DELETE FROM idempotency_keys WHERE created_at < ?`
)

// StaleClaimAfter is how old an in-progress claim must be before another
// request with the same key may take it over. A request holds its claim at
// most for the server's write timeout (30 s); a claim older than this
// belongs to a request whose process died between claiming and completing,
// and without the takeover the key would answer 409 idempotency_in_progress
// until it is purged. Re-running such a request cannot book twice: one
// active booking per person, campaign and dose is a database constraint.
const StaleClaimAfter = 2 * time.Minute

// IdempotencyRecord is what the HTTP API stored for one Idempotency-Key of
// one person.
type IdempotencyRecord struct {
	PersonID    string
	Key         string
	RequestHash string // hash of the request; a replay with another hash is a misuse of the key
	// StatusCode is 0 while the first request is in progress, then its
	// HTTP status.
	StatusCode   int
	ResponseBody []byte
	CreatedAt    time.Time
}

// InProgress reports whether the request that claimed the key has not
// completed yet.
func (r *IdempotencyRecord) InProgress() bool { return r.StatusCode == 0 }

// ClaimIdempotencyKey records that personID starts a request with key.
// claimed is true when this call inserted the row (in progress, status 0),
// or took over an in-progress row older than StaleClaimAfter:
// the caller runs the request and then calls CompleteIdempotencyKey, or
// ReleaseIdempotencyKey if it failed having written nothing. Otherwise rec
// is the row an earlier request left, which the caller replays (or refuses
// if RequestHash differs or it is still in progress).
func (db *DB) ClaimIdempotencyKey(ctx context.Context, personID, key, requestHash string) (rec *IdempotencyRecord, claimed bool, err error) {
	if personID == "" || key == "" {
		return nil, false, booking.Errorf(booking.EINVALID, "idempotency key needs a person and a key")
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	// Bounded: the row can vanish between the insert and the read only if
	// its owner released it; then this caller may claim it.
	for range maxTxAttempts {
		var res interface{ RowsAffected() (int64, error) }
		err := db.write(ctx, func() error {
			var err error
			res, err = db.x.ExecContext(ctx, db.q.claimIdem, personID, key, requestHash, db.dialect.timeArg(now),
				db.dialect.timeArg(now.Add(-StaleClaimAfter)))
			return err
		})
		if err != nil {
			return nil, false, internal("claim idempotency key", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, false, internal("claim idempotency key", err)
		} else if n == 1 {
			return &IdempotencyRecord{PersonID: personID, Key: key, RequestHash: requestHash, CreatedAt: now}, true, nil
		}
		rec, err := db.idempotencyRecord(ctx, personID, key)
		if err == nil {
			return rec, false, nil
		}
		if booking.ErrorCode(err) != booking.ENOTFOUND {
			return nil, false, err
		}
	}
	return nil, false, internal("claim idempotency key", errRetry)
}

func (db *DB) idempotencyRecord(ctx context.Context, personID, key string) (*IdempotencyRecord, error) {
	var (
		r       IdempotencyRecord
		created dbTime
	)
	err := db.x.QueryRowxContext(ctx, db.q.idem, personID, key).
		Scan(&r.PersonID, &r.Key, &r.RequestHash, &r.StatusCode, &r.ResponseBody, &created)
	if notFound(err) {
		return nil, booking.Errorf(booking.ENOTFOUND, "idempotency key not found")
	}
	if err != nil {
		return nil, internal("read idempotency key", err)
	}
	r.CreatedAt = created.Time
	return &r, nil
}

// CompleteIdempotencyKey stores the response of the request that claimed
// the key. Returns ENOTFOUND if the key is not claimed.
func (db *DB) CompleteIdempotencyKey(ctx context.Context, personID, key string, status int, body []byte) error {
	if status <= 0 {
		return booking.Errorf(booking.EINVALID, "status must be an HTTP status")
	}
	if body == nil {
		body = []byte{}
	}
	var n int64
	err := db.write(ctx, func() error {
		res, err := db.x.ExecContext(ctx, db.q.completeIdem, status, body, personID, key)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return internal("complete idempotency key", err)
	}
	if n == 0 {
		return booking.Errorf(booking.ENOTFOUND, "idempotency key not found")
	}
	return nil
}

// ReleaseIdempotencyKey deletes an in-progress claim after a request that
// failed having written nothing, so a retry can run. A completed key is
// kept.
func (db *DB) ReleaseIdempotencyKey(ctx context.Context, personID, key string) error {
	err := db.write(ctx, func() error {
		_, err := db.x.ExecContext(ctx, db.q.releaseIdem, personID, key)
		return err
	})
	if err != nil {
		return internal("release idempotency key", err)
	}
	return nil
}

// PurgeIdempotencyKeys deletes keys created more than olderThan ago (the
// API keeps them 24 hours) and returns how many it deleted.
func (db *DB) PurgeIdempotencyKeys(ctx context.Context, olderThan time.Duration) (int64, error) {
	cutoff := time.Now().Add(-olderThan)
	var n int64
	err := db.write(ctx, func() error {
		res, err := db.x.ExecContext(ctx, db.q.purgeIdem, db.dialect.timeArg(cutoff))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, internal("purge idempotency keys", err)
	}
	return n, nil
}

// write runs a single-statement write outside a transaction, behind the
// SQLite writer lock.
func (db *DB) write(ctx context.Context, fn func() error) error {
	if db.writeLock != nil {
		select {
		case db.writeLock <- struct{}{}:
			defer func() { <-db.writeLock }()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fn()
}
