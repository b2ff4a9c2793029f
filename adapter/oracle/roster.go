package oracle

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/yeyak/yeyak/booking"
)

// RosterConfig configures a Roster.
type RosterConfig struct {
	// BornFrom and BornTo bound the people listed by date of birth,
	// inclusive: the campaign's cohort (booking.Campaign.BornFrom/BornTo),
	// so that the warmer loads the people who may book, not the whole
	// population. A zero value leaves that side unbounded.
	BornFrom, BornTo booking.Date
}

// Roster lists the people of a birth-digit group from the registry's person
// master (PERSON_MST), for the eligibility cache's pre-warmer: it
// implements cache.Roster and cache.DigitCounter. The digit is the last
// digit of the day of birth (booking.BirthDigit), the 8th character of
// BRTH_DT (YYYYMMDD).
//
// Pages are read in PRSN_ID order after the last id of the previous page,
// with portable SQL (no ROWNUM, FETCH FIRST or LIMIT: the rows beyond the
// page are simply not fetched). The statement carries an Oracle
// FIRST_ROWS hint, a comment to PostgreSQL and SQLite, so that Oracle walks
// the primary key index and stops early instead of sorting the digit group
// for every page; check the plan on the real registry (see the package
// doc).
type Roster struct {
	r        *Registry
	from, to string // YYYYMMDD bounds, inclusive
}

// Roster returns a Roster over the registry's person master.
func (r *Registry) Roster(cfg RosterConfig) *Roster {
	ro := &Roster{r: r, from: "00000000", to: "99999999"}
	if !cfg.BornFrom.IsZero() {
		ro.from = yyyymmddOf(cfg.BornFrom)
	}
	if !cfg.BornTo.IsZero() {
		ro.to = yyyymmddOf(cfg.BornTo)
	}
	return ro
}

func yyyymmddOf(d booking.Date) string {
	return fmt.Sprintf("%04d%02d%02d", d.Year, int(d.Month), d.Day)
}

// The roster's SQL. BRTH_DT is CHAR(8) and always full (YYYYMMDD), so
// comparing it with VARCHAR2 binds is exact on Oracle too. The first page
// has its own statement: Oracle reads an empty string bind as NULL, and
// PRSN_ID > NULL matches nothing.
const (
	qRosterFirst = `SELECT /*+ FIRST_ROWS(1000) */ PRSN_ID FROM PERSON_MST
		WHERE BRTH_DT >= :BORN_FROM AND BRTH_DT <= :BORN_TO AND SUBSTR(BRTH_DT, 8, 1) = :DIGIT
		ORDER BY PRSN_ID`
	qRosterNext = `SELECT /*+ FIRST_ROWS(1000) */ PRSN_ID FROM PERSON_MST
		WHERE BRTH_DT >= :BORN_FROM AND BRTH_DT <= :BORN_TO AND SUBSTR(BRTH_DT, 8, 1) = :DIGIT AND PRSN_ID > :AFTER
		ORDER BY PRSN_ID`
	qRosterCount = `SELECT COUNT(*) FROM PERSON_MST
		WHERE BRTH_DT >= :BORN_FROM AND BRTH_DT <= :BORN_TO AND SUBSTR(BRTH_DT, 8, 1) = :DIGIT`
)

// PeopleForDigit returns up to limit person ids of the digit group born in
// the configured range, in ascending order, all greater than after ("" for
// the first page). Database failures wrap adapter.ErrUnavailable.
func (ro *Roster) PeopleForDigit(ctx context.Context, digit int, after string, limit int) ([]string, error) {
	if digit < 0 || digit > 9 {
		return nil, fmt.Errorf("oracle roster: digit %d is not 0-9", digit)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("oracle roster: limit %d is not positive", limit)
	}
	ctx, cancel := ro.r.withTimeout(ctx)
	defer cancel()
	q, arg := qRosterNext, ro.args(digit)
	if after == "" {
		q = qRosterFirst
	} else {
		arg["AFTER"] = after
	}
	ids := make([]string, 0, min(limit, 4096))
	err := ro.r.each(ctx, ro.r.db, q, arg, func(rows *sql.Rows) error {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		ids = append(ids, strings.TrimSpace(id))
		if len(ids) == limit {
			return errPageFull // stop fetching; each closes the cursor
		}
		return nil
	})
	if err != nil && !errors.Is(err, errPageFull) {
		return nil, fmt.Errorf("oracle roster page: %w", err)
	}
	return ids, nil
}

var errPageFull = errors.New("page full")

// CountForDigit returns the size of the digit group born in the configured
// range.
func (ro *Roster) CountForDigit(ctx context.Context, digit int) (int, error) {
	if digit < 0 || digit > 9 {
		return 0, fmt.Errorf("oracle roster: digit %d is not 0-9", digit)
	}
	ctx, cancel := ro.r.withTimeout(ctx)
	defer cancel()
	n, err := scalar[int64](ctx, ro.r.db, qRosterCount, ro.args(digit))
	if err != nil {
		return 0, unavailable(ctx, "roster count", err)
	}
	return int(n), nil
}

func (ro *Roster) args(digit int) map[string]any {
	return map[string]any{"BORN_FROM": ro.from, "BORN_TO": ro.to, "DIGIT": fmt.Sprint(digit)}
}
