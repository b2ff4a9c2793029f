package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/yeyak/yeyak/booking"
)

// SQL of the roll-over. The wave rows are k, the open wave rows of the
// same clinic, date, product and dose are o.
const (
	sqlClaimRollOver = `INSERT INTO quota_rollovers (campaign_id, wave, rolled_at, quota_rows, doses)
		VALUES (?, ?, ?, 0, 0) ON CONFLICT (campaign_id, wave) DO NOTHING`
	sqlRollOver       = `SELECT rolled_at, quota_rows, doses FROM quota_rollovers WHERE campaign_id = ? AND wave = ?`
	sqlFinishRollOver = `UPDATE quota_rollovers SET quota_rows = ?, doses = ? WHERE campaign_id = ? AND wave = ?`
	sqlIsRolledOver   = `SELECT COUNT(*) FROM quota_rollovers WHERE campaign_id = ? AND wave = ?`

	// sqlLockWave locks every row of the wave (PostgreSQL), so no
	// cancellation or reschedule changes one between the statements below.
	sqlLockWave = `SELECT COUNT(*) FROM (SELECT 1 FROM quotas WHERE campaign_id = ? AND wave = ?
		ORDER BY clinic_id, vdate, product, dose FOR UPDATE) locked`
	sqlWaveLeft = `SELECT COUNT(*), COALESCE(SUM(capacity - booked), 0) FROM quotas
		WHERE campaign_id = ? AND wave = ? AND capacity > booked`
	sqlSameGroup = `k.campaign_id = o.campaign_id AND k.clinic_id = o.clinic_id AND k.vdate = o.vdate
		AND k.product = o.product AND k.dose = o.dose`
	// sqlAddOpenRows gives a group whose wave has doses left an open wave
	// row if it lacks one (rows made by SplitSupply always have it).
	sqlAddOpenRows = `INSERT INTO quotas (campaign_id, clinic_id, vdate, product, dose, wave, capacity, booked, version)
		SELECT k.campaign_id, k.clinic_id, k.vdate, k.product, k.dose, 0, 0, 0, {{nextVersion}} FROM quotas k
		WHERE k.campaign_id = ? AND k.wave = ? AND k.capacity > k.booked
			AND NOT EXISTS (SELECT 1 FROM quotas o WHERE ` + sqlSameGroup + ` AND o.wave = 0)
		ON CONFLICT (campaign_id, clinic_id, vdate, product, dose, wave) DO NOTHING`
	sqlMoveToOpen = `UPDATE quotas AS o SET capacity = o.capacity + (k.capacity - k.booked), version = {{nextVersion}}
		FROM quotas AS k
		WHERE k.campaign_id = ? AND k.wave = ? AND k.capacity > k.booked AND ` + sqlSameGroup + ` AND o.wave = 0`
	sqlShrinkWave = `UPDATE quotas SET capacity = booked, version = {{nextVersion}}
		WHERE campaign_id = ? AND wave = ? AND capacity > booked`

	// sqlShrinkRow and sqlGrowOpenRow move n doses of capacity from a
	// rolled-over wave's row to its open wave row.
	sqlShrinkRow = `UPDATE quotas SET capacity = capacity - ?, version = {{nextVersion}}
		WHERE ` + sqlQuotaKey + ` AND capacity - ? >= booked`
	sqlGrowOpenRow = `INSERT INTO quotas (campaign_id, clinic_id, vdate, product, dose, wave, capacity, booked, version)
		VALUES (?, ?, ?, ?, ?, 0, ?, 0, {{nextVersion}})
		ON CONFLICT (campaign_id, clinic_id, vdate, product, dose, wave) DO UPDATE
		SET capacity = quotas.capacity + excluded.capacity, version = {{nextVersion}}`
)

// RollOverWave implements booking.RollOverStore, in one transaction: it
// records the roll-over (the primary key (campaign, wave) makes a second
// or concurrent one find it and change nothing), locks the wave's rows,
// adds each row's unbooked doses to its open wave row and shrinks the row
// to what it has booked. A failure anywhere rolls all of it back; the next
// run starts again from the beginning.
func (db *DB) RollOverWave(ctx context.Context, campaignID string, wave int, at time.Time) (booking.RollOverResult, error) {
	if campaignID == "" || wave <= booking.OpenWave {
		return booking.RollOverResult{}, booking.Errorf(booking.EINVALID, "roll-over needs a campaign and a rotation wave (≥ 1)")
	}
	if at.IsZero() {
		at = time.Now()
	}
	r := func(q string) string { return db.dialect.Rebind(withVersion(db.dialect, q)) }
	var res booking.RollOverResult
	err := db.inTx(ctx, "roll over", func(tx *sqlx.Tx) error {
		res = booking.RollOverResult{CampaignID: campaignID, Wave: wave, RolledAt: at.UTC().Truncate(time.Microsecond)}
		claimed, err := tx.ExecContext(ctx, r(sqlClaimRollOver), campaignID, wave, db.dialect.timeArg(at))
		if err != nil {
			return fmt.Errorf("record roll-over: %w", err)
		}
		if n, err := claimed.RowsAffected(); err != nil {
			return fmt.Errorf("record roll-over: %w", err)
		} else if n == 0 {
			var rolled dbTime
			if err := tx.QueryRowxContext(ctx, r(sqlRollOver), campaignID, wave).Scan(&rolled, &res.QuotaRows, &res.Doses); err != nil {
				return fmt.Errorf("read roll-over: %w", err)
			}
			res.Already, res.RolledAt = true, rolled.Time
			return nil
		}
		if db.dialect == Postgres {
			var locked int
			if err := tx.QueryRowxContext(ctx, r(sqlLockWave), campaignID, wave).Scan(&locked); err != nil {
				return fmt.Errorf("lock wave: %w", err)
			}
		}
		if err := tx.QueryRowxContext(ctx, r(sqlWaveLeft), campaignID, wave).Scan(&res.QuotaRows, &res.Doses); err != nil {
			return fmt.Errorf("count doses left: %w", err)
		}
		if res.QuotaRows > 0 {
			if _, err := tx.ExecContext(ctx, r(sqlAddOpenRows), campaignID, wave); err != nil {
				return fmt.Errorf("add open wave rows: %w", err)
			}
			if _, err := tx.ExecContext(ctx, r(sqlMoveToOpen), campaignID, wave); err != nil {
				return fmt.Errorf("move doses to the open wave: %w", err)
			}
			shrunk, err := tx.ExecContext(ctx, r(sqlShrinkWave), campaignID, wave)
			if err != nil {
				return fmt.Errorf("shrink wave: %w", err)
			}
			if n, err := shrunk.RowsAffected(); err != nil {
				return fmt.Errorf("shrink wave: %w", err)
			} else if int(n) != res.QuotaRows {
				return fmt.Errorf("shrink wave: %d rows changed, %d counted under the lock", n, res.QuotaRows)
			}
		}
		if db.testHookRollOver != nil {
			if err := db.testHookRollOver(); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, r(sqlFinishRollOver), res.QuotaRows, res.Doses, campaignID, wave); err != nil {
			return fmt.Errorf("record roll-over: %w", err)
		}
		return nil
	})
	if err != nil {
		return booking.RollOverResult{}, err
	}
	if !res.Already {
		db.rolled.Store(rolledKey(campaignID, wave), true)
	}
	return res, nil
}

// withVersion fills in the dialect's next quota version.
func withVersion(d Dialect, q string) string {
	return strings.ReplaceAll(q, "{{nextVersion}}", d.nextVersion())
}

func rolledKey(campaignID string, wave int) string {
	return campaignID + "\x00" + strconv.Itoa(wave)
}

// rolledOver reports whether the campaign's wave has rolled over, inside
// tx. Only a yes is remembered: a roll-over is never undone.
func (db *DB) rolledOver(ctx context.Context, tx *sqlx.Tx, campaignID string, wave int) (bool, error) {
	if _, ok := db.rolled.Load(rolledKey(campaignID, wave)); ok {
		return true, nil
	}
	var n int
	if err := tx.QueryRowxContext(ctx, db.q.isRolledOver, campaignID, wave).Scan(&n); err != nil {
		return false, fmt.Errorf("read roll-over: %w", err)
	}
	if n > 0 {
		db.rolled.Store(rolledKey(campaignID, wave), true)
	}
	return n > 0, nil
}

// returnToOpenWave runs after n doses went back to the row k of a rotation
// wave (a cancellation or a reschedule): if the wave has rolled over,
// nobody can book from it any more, so the n doses' capacity moves on to
// the open wave, as the roll-over would have moved them. The marker is
// read after the release statement, which waited for any roll-over
// holding the row: a roll-over that committed first is seen, one that
// commits later moves the doses itself.
func (db *DB) returnToOpenWave(ctx context.Context, tx *sqlx.Tx, k quotaKey, n int) error {
	if k.Wave <= booking.OpenWave {
		return nil
	}
	rolled, err := db.rolledOver(ctx, tx, k.CampaignID, k.Wave)
	if err != nil || !rolled {
		return err
	}
	args := []any{k.CampaignID, k.ClinicID, db.dialect.dateArg(k.Date), k.Product, k.Dose, k.Wave}
	res, err := tx.ExecContext(ctx, db.q.shrinkRow, append(append([]any{n}, args...), n)...)
	if err != nil {
		return fmt.Errorf("move returned dose to the open wave: %w", err)
	}
	if rows, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("move returned dose to the open wave: %w", err)
	} else if rows != 1 {
		return fmt.Errorf("move returned dose to the open wave: quota row %s/%s/%s/%s/%d/wave %d cannot give %d", k.CampaignID, k.ClinicID, k.Date, k.Product, k.Dose, k.Wave, n)
	}
	if _, err := tx.ExecContext(ctx, db.q.growOpenRow, k.CampaignID, k.ClinicID, db.dialect.dateArg(k.Date), k.Product, k.Dose, n); err != nil {
		return fmt.Errorf("move returned dose to the open wave: %w", err)
	}
	return nil
}
