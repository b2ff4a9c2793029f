package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/yeyak/yeyak/booking"
)

// PutCampaign implements booking.Store. The campaign is stored as JSON.
func (db *DB) PutCampaign(ctx context.Context, c *booking.Campaign) error {
	if c == nil || c.ID == "" {
		return booking.Errorf(booking.EINVALID, "campaign needs an id")
	}
	body, err := json.Marshal(c)
	if err != nil {
		return booking.Errorf(booking.EINVALID, "campaign cannot be encoded: %v", err)
	}
	return db.inTx(ctx, "put campaign", func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, db.q.putCampaign, c.ID, string(body), db.dialect.timeArg(time.Now()))
		return err
	})
}

// Campaign implements booking.Store.
func (db *DB) Campaign(ctx context.Context, id string) (*booking.Campaign, error) {
	var body string
	err := db.x.QueryRowxContext(ctx, db.q.campaign, id).Scan(&body)
	if notFound(err) {
		return nil, booking.Errorf(booking.ENOTFOUND, "campaign %q not found", id)
	}
	if err != nil {
		return nil, internal("get campaign", err)
	}
	var c booking.Campaign
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		return nil, internal("decode campaign", err)
	}
	return &c, nil
}

// Campaigns implements booking.Store.
func (db *DB) Campaigns(ctx context.Context) ([]*booking.Campaign, error) {
	var bodies []string
	if err := db.x.SelectContext(ctx, &bodies, db.q.campaigns); err != nil {
		return nil, internal("list campaigns", err)
	}
	out := make([]*booking.Campaign, 0, len(bodies))
	for _, body := range bodies {
		var c booking.Campaign
		if err := json.Unmarshal([]byte(body), &c); err != nil {
			return nil, internal("decode campaign", err)
		}
		out = append(out, &c)
	}
	return out, nil
}

// PutClinics implements booking.Store, in one transaction, in bulk
// statements of bulkRows clinics. A clinic listed twice takes its last
// entry.
func (db *DB) PutClinics(ctx context.Context, clinics []booking.Clinic) error {
	byID := make(map[string]int, len(clinics))
	var uniq []booking.Clinic
	for _, c := range clinics {
		if c.ID == "" {
			return booking.Errorf(booking.EINVALID, "clinic needs an id")
		}
		if i, ok := byID[c.ID]; ok {
			uniq[i] = c
			continue
		}
		byID[c.ID] = len(uniq)
		uniq = append(uniq, c)
	}
	slices.SortFunc(uniq, func(a, b booking.Clinic) int { return strings.Compare(a.ID, b.ID) })
	now := db.dialect.timeArg(time.Now())
	return db.inTx(ctx, "put clinics", func(tx *sqlx.Tx) error {
		for batch := range slices.Chunk(uniq, bulkRows) {
			args := make([]any, 0, 7*len(batch))
			for _, c := range batch {
				products := c.Products
				if products == nil {
					products = []string{}
				}
				p, err := json.Marshal(products)
				if err != nil {
					return err
				}
				args = append(args, c.ID, c.Name, c.Region, c.Lat, c.Lon, string(p), now)
			}
			if _, err := tx.ExecContext(ctx, db.dialect.bulkSQL(sqlPutClinics, sqlClinicRow, len(batch)), args...); err != nil {
				return fmt.Errorf("clinics %s…: %w", batch[0].ID, err)
			}
		}
		return nil
	})
}

func scanClinic(s scanner) (booking.Clinic, error) {
	var (
		c        booking.Clinic
		products string
	)
	if err := s.Scan(&c.ID, &c.Name, &c.Region, &c.Lat, &c.Lon, &products); err != nil {
		return c, err
	}
	if err := json.Unmarshal([]byte(products), &c.Products); err != nil {
		return c, fmt.Errorf("decode clinic products: %w", err)
	}
	return c, nil
}

// Clinic implements booking.Store.
func (db *DB) Clinic(ctx context.Context, id string) (*booking.Clinic, error) {
	c, err := scanClinic(db.x.QueryRowxContext(ctx, db.q.clinic, id))
	if notFound(err) {
		return nil, booking.Errorf(booking.ENOTFOUND, "clinic %q not found", id)
	}
	if err != nil {
		return nil, internal("get clinic", err)
	}
	return &c, nil
}

// Clinics implements booking.Store.
func (db *DB) Clinics(ctx context.Context) ([]booking.Clinic, error) {
	rows, err := db.x.QueryxContext(ctx, db.q.clinics)
	if err != nil {
		return nil, internal("list clinics", err)
	}
	defer rows.Close()
	var out []booking.Clinic
	for rows.Next() {
		c, err := scanClinic(rows)
		if err != nil {
			return nil, internal("list clinics", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("list clinics", err)
	}
	return out, nil
}

// SetQuotas implements booking.Store, in one transaction (in bulk
// statements of bulkRows rows, in key order): either every row is set or,
// on ECONFLICT or any error, none is. A row listed twice takes its last
// entry.
func (db *DB) SetQuotas(ctx context.Context, quotas []booking.Quota) error {
	byKey := make(map[quotaKey]int, len(quotas))
	var uniq []booking.Quota
	for _, q := range quotas {
		if q.CampaignID == "" || q.ClinicID == "" || q.Product == "" || q.Date.IsZero() || q.Dose < 1 || q.Wave < 0 || q.Capacity < 0 {
			return booking.Errorf(booking.EINVALID, "quota needs campaign, clinic, date, product, dose ≥ 1, wave ≥ 0 and capacity ≥ 0")
		}
		k := quotaKey{q.CampaignID, q.ClinicID, q.Date, q.Product, q.Dose, q.Wave}
		if i, ok := byKey[k]; ok {
			uniq[i] = q
			continue
		}
		byKey[k] = len(uniq)
		uniq = append(uniq, q)
	}
	// Key order: the same lock order as the booking path's applyDeltas.
	slices.SortFunc(uniq, func(a, b booking.Quota) int { return quotaKeyOf(a).compare(quotaKeyOf(b)) })
	return db.inTx(ctx, "set quotas", func(tx *sqlx.Tx) error {
		for batch := range slices.Chunk(uniq, bulkRows) {
			args := make([]any, 0, 7*len(batch))
			for _, q := range batch {
				args = append(args, q.CampaignID, q.ClinicID, db.dialect.dateArg(q.Date), q.Product, q.Dose, q.Wave, q.Capacity)
			}
			res, err := tx.ExecContext(ctx, db.dialect.bulkSQL(sqlSetQuotas, sqlQuotaRow, len(batch)), args...)
			if err != nil {
				return fmt.Errorf("quotas of %s…: %w", batch[0].ClinicID, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			if int(n) < len(batch) {
				return db.capacityConflict(ctx, tx, batch)
			}
		}
		return nil
	})
}

func quotaKeyOf(q booking.Quota) quotaKey {
	return quotaKey{q.CampaignID, q.ClinicID, q.Date, q.Product, q.Dose, q.Wave}
}

// capacityConflict finds the row of batch whose capacity is below what it
// has booked, for the ECONFLICT message.
func (db *DB) capacityConflict(ctx context.Context, tx *sqlx.Tx, batch []booking.Quota) error {
	for _, q := range batch {
		var capacity, booked int
		err := tx.QueryRowxContext(ctx, db.q.quotaCapacityOf, q.CampaignID, q.ClinicID, db.dialect.dateArg(q.Date), q.Product, q.Dose, q.Wave).Scan(&capacity, &booked)
		if err != nil {
			return fmt.Errorf("find capacity conflict: %w", err)
		}
		if booked > q.Capacity {
			return booking.Errorf(booking.ECONFLICT, "capacity %d for clinic %s on %s (%s dose %d, wave %d) is below the %d already booked",
				q.Capacity, q.ClinicID, q.Date, q.Product, q.Dose, q.Wave, booked)
		}
	}
	return booking.Errorf(booking.ECONFLICT, "a quota capacity is below what is already booked")
}

func scanQuota(s scanner) (booking.Quota, int64, error) {
	var (
		q       booking.Quota
		date    dbDate
		version int64
	)
	err := s.Scan(&q.CampaignID, &q.ClinicID, &date, &q.Product, &q.Dose, &q.Wave, &q.Capacity, &q.Booked, &version)
	q.Date = date.Date
	return q, version, err
}

// Quotas implements booking.Store.
func (db *DB) Quotas(ctx context.Context, campaignID string) ([]booking.Quota, error) {
	qs, _, err := db.listQuotas(ctx, db.q.quotas, campaignID)
	return qs, err
}

// QuotasChangedSince implements booking.Store: the campaign's rows whose
// version is above version, in version order, and the version to ask from
// next time (version itself when nothing changed). Pass 0 for a full load.
//
// The returned version is safe: every change with a version at or below
// it is visible now, so a reader that always asks from the version it was
// last given never misses a change. On SQLite that is the highest version
// seen (writes serialize and commit in version order). On PostgreSQL a
// version is drawn from a sequence when the row changes, not when its
// transaction commits, so a transaction can commit after one with a
// higher version; there the returned version may lag (see
// versionWatermark) and rows above it are returned again next time, which
// a snapshot applies idempotently.
func (db *DB) QuotasChangedSince(ctx context.Context, campaignID string, version int64) ([]booking.Quota, int64, error) {
	if db.dialect != Postgres {
		qs, newest, err := db.listQuotas(ctx, db.q.quotasSince, campaignID, version)
		return qs, max(newest, version), err
	}
	safe, err := db.versions.watermark(ctx, db.x)
	if err != nil {
		return nil, 0, internal("quota version watermark", err)
	}
	// Read after the watermark is known: everything at or below it has
	// committed before this statement's snapshot.
	qs, _, err := db.listQuotas(ctx, db.q.quotasSince, campaignID, version)
	return qs, max(safe, version), err
}

func (db *DB) listQuotas(ctx context.Context, query string, args ...any) ([]booking.Quota, int64, error) {
	rows, err := db.x.QueryxContext(ctx, query, args...)
	if err != nil {
		return nil, 0, internal("list quotas", err)
	}
	defer rows.Close()
	var (
		out    []booking.Quota
		newest int64
	)
	for rows.Next() {
		q, v, err := scanQuota(rows)
		if err != nil {
			return nil, 0, internal("list quotas", err)
		}
		out = append(out, q)
		newest = max(newest, v)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, internal("list quotas", err)
	}
	return out, newest, nil
}
