package sqlstore

import (
	"testing"
	"time"
)

// TestIdempotencyStaleClaimTakeover: an in-progress claim older than
// StaleClaimAfter (its request died with its process) is taken over by the
// next request with the key; a younger one and a completed one are not.
func TestIdempotencyStaleClaimTakeover(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]func(testing.TB) *DB{"sqlite": openSQLite, "postgres": openPostgres} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := open(t)
			ctx := ctxT(t)
			age := func(key string, by time.Duration) {
				t.Helper()
				q := db.x.Rebind(`UPDATE idempotency_keys SET created_at = ? WHERE key = ?`)
				if _, err := db.x.ExecContext(ctx, q, db.dialect.timeArg(time.Now().UTC().Add(-by)), key); err != nil {
					t.Fatal(err)
				}
			}
			for _, k := range []string{"young", "stale", "done"} {
				if _, claimed, err := db.ClaimIdempotencyKey(ctx, "p1", k, "h1"); err != nil || !claimed {
					t.Fatalf("claim %s: %v %v", k, claimed, err)
				}
			}
			if err := db.CompleteIdempotencyKey(ctx, "p1", "done", 201, []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
			age("young", StaleClaimAfter/2)
			age("stale", StaleClaimAfter+time.Second)
			age("done", StaleClaimAfter+time.Second)

			if rec, claimed, err := db.ClaimIdempotencyKey(ctx, "p1", "young", "h2"); err != nil || claimed || rec.RequestHash != "h1" {
				t.Fatalf("young claim taken over: %+v %v %v", rec, claimed, err)
			}
			rec, claimed, err := db.ClaimIdempotencyKey(ctx, "p1", "stale", "h2")
			if err != nil || !claimed || rec.RequestHash != "h2" {
				t.Fatalf("stale claim not taken over: %+v %v %v", rec, claimed, err)
			}
			if rec, claimed, err := db.ClaimIdempotencyKey(ctx, "p1", "stale", "h3"); err != nil || claimed || rec.RequestHash != "h2" {
				t.Fatalf("the takeover is a fresh claim, not stale again: %+v %v %v", rec, claimed, err)
			}
			if rec, claimed, err := db.ClaimIdempotencyKey(ctx, "p1", "done", "h2"); err != nil || claimed || rec.StatusCode != 201 {
				t.Fatalf("completed key taken over: %+v %v %v", rec, claimed, err)
			}
		})
	}
}
