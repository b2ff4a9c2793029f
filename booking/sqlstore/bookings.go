package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"

	"github.com/yeyak/yeyak/booking"
)

// quotaKey names one quota row.
type quotaKey struct {
	CampaignID, ClinicID string
	Date                 booking.Date
	Product              string
	Dose, Wave           int
}

func keyOf(b *booking.Booking) quotaKey {
	return quotaKey{b.CampaignID, b.ClinicID, b.Date, b.Product, b.Dose, b.Wave}
}

func (k quotaKey) compare(o quotaKey) int {
	return cmp.Or(
		cmp.Compare(k.CampaignID, o.CampaignID),
		cmp.Compare(k.ClinicID, o.ClinicID),
		k.Date.Compare(o.Date),
		cmp.Compare(k.Product, o.Product),
		cmp.Compare(k.Dose, o.Dose),
		cmp.Compare(k.Wave, o.Wave),
	)
}

// applyDeltas takes (positive) or returns (negative) doses on quota rows,
// in key order, so two transactions touching the same rows lock them in the
// same order and cannot deadlock. Quota rows are always changed before
// booking rows for the same reason.
func (db *DB) applyDeltas(ctx context.Context, tx *sqlx.Tx, deltas map[quotaKey]int) error {
	st, err := db.statements(ctx)
	if err != nil {
		return err
	}
	keys := slices.SortedFunc(maps.Keys(deltas), quotaKey.compare)
	for _, k := range keys {
		n := deltas[k]
		args := []any{k.CampaignID, k.ClinicID, db.dialect.dateArg(k.Date), k.Product, k.Dose, k.Wave}
		switch {
		case n > 0:
			res, err := tx.StmtxContext(ctx, st.take).ExecContext(ctx, append(append([]any{n}, args...), n)...)
			if err != nil {
				return fmt.Errorf("take dose: %w", err)
			}
			if rows, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("take dose: %w", err)
			} else if rows == 0 {
				return soldOut(k)
			}
		case n < 0:
			res, err := tx.StmtxContext(ctx, st.release).ExecContext(ctx, append(append([]any{-n}, args...), -n)...)
			if err != nil {
				return fmt.Errorf("return dose: %w", err)
			}
			if rows, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("return dose: %w", err)
			} else if rows == 0 {
				// The booking holds a dose its quota row does not count:
				// the data is inconsistent; refuse rather than guess.
				return fmt.Errorf("return dose: quota row %s/%s/%s/%s/%d/wave %d has fewer booked than it must return",
					k.CampaignID, k.ClinicID, k.Date, k.Product, k.Dose, k.Wave)
			}
			if err := db.returnToOpenWave(ctx, tx, k, -n); err != nil {
				return err
			}
		}
	}
	return nil
}

// soldOut is ESOLDOUT: k's quota row has no dose left (or no row).
func soldOut(k quotaKey) error {
	return booking.Errorf(booking.ESOLDOUT, "no %s dose %d left at clinic %s on %s", k.Product, k.Dose, k.ClinicID, k.Date)
}

func validateNew(b *booking.Booking) error {
	switch {
	case b == nil:
		return booking.Errorf(booking.EINVALID, "missing booking")
	case b.ID == "" || b.PersonID == "" || b.CampaignID == "" || b.ClinicID == "" || b.Product == "":
		return booking.Errorf(booking.EINVALID, "booking needs id, person, campaign, clinic and product")
	case b.Date.IsZero():
		return booking.Errorf(booking.EINVALID, "booking needs a vaccination date")
	case b.Dose < 1:
		return booking.Errorf(booking.EINVALID, "dose must be 1 or more")
	case b.Wave < 0:
		return booking.Errorf(booking.EINVALID, "wave must not be negative")
	case b.Status != booking.StatusConfirmed && b.Status != booking.StatusProvisional:
		return booking.Errorf(booking.EINVALID, "a new booking is confirmed or provisional, not %q", b.Status)
	}
	return nil
}

// CreateBookings implements booking.Store. CreatedAt and UpdatedAt are
// normalized in the caller's structs to what is stored: UTC, microseconds,
// the current time when zero.
func (db *DB) CreateBookings(ctx context.Context, bookings []*booking.Booking, events []booking.Event) error {
	if len(bookings) == 0 {
		return booking.Errorf(booking.EINVALID, "no booking to create")
	}
	if err := prepareNew(bookings); err != nil {
		return err
	}
	deltas := make(map[quotaKey]int, len(bookings))
	for _, b := range bookings {
		deltas[keyOf(b)]++
	}
	if db.dialect == Postgres && len(bookings) == 1 && len(events) == 1 && !db.bookInTx {
		return db.bookOne(ctx, bookings[0], events[0])
	}
	return db.inOutboxTx(ctx, "create bookings", events, func(tx *sqlx.Tx) error {
		if err := db.applyDeltas(ctx, tx, deltas); err != nil {
			return err
		}
		if err := db.insertBookings(ctx, tx, bookings); err != nil {
			return err
		}
		return db.insertEvents(ctx, tx, events)
	})
}

// bookOne is CreateBookings of one booking with its event on PostgreSQL:
// one statement (sqlBookOnePostgres), so one round trip where the
// transaction takes five (begin, take, insert, insert, commit), and the
// quota row's lock is held for the statement alone rather than across
// the client's round trips: under load, a transaction left "idle in
// transaction" while its process waits for a CPU holds up every booking
// of the same clinic, day and dose behind it.
func (db *DB) bookOne(ctx context.Context, b *booking.Booking, e booking.Event) error {
	ev, err := db.eventArgs(e)
	if err != nil {
		return err
	}
	args := append([]any{b.CampaignID, b.ClinicID, db.dialect.dateArg(b.Date), b.Product, b.Dose, b.Wave,
		b.ID, b.PersonID, string(b.Status), b.CancelReason,
		db.dialect.timeArg(b.CreatedAt), db.dialect.timeArg(b.UpdatedAt), b.LinkedID}, ev...)
	var taken, written int
	if err := db.statement(ctx, sqlBookOnePostgres, args, &taken, &written); err != nil {
		return db.writeError("create bookings", err)
	}
	if taken == 0 {
		return soldOut(keyOf(b))
	}
	if written != 1 {
		return fmt.Errorf("sqlstore: create bookings: the dose was taken but %d events were written", written)
	}
	db.outboxCommitted()
	return nil
}

// prepareNew validates new bookings and normalizes their timestamps.
func prepareNew(bookings []*booking.Booking) error {
	now := time.Now().UTC()
	for _, b := range bookings {
		if err := validateNew(b); err != nil {
			return err
		}
		if b.CreatedAt.IsZero() {
			b.CreatedAt = now
		}
		if b.UpdatedAt.IsZero() {
			b.UpdatedAt = b.CreatedAt
		}
		b.CreatedAt = b.CreatedAt.UTC().Truncate(time.Microsecond)
		b.UpdatedAt = b.UpdatedAt.UTC().Truncate(time.Microsecond)
	}
	return nil
}

// insertBookings inserts new bookings in tx.
func (db *DB) insertBookings(ctx context.Context, tx *sqlx.Tx, bookings []*booking.Booking) error {
	st, err := db.statements(ctx)
	if err != nil {
		return err
	}
	ins := tx.StmtxContext(ctx, st.insertBooking)
	for _, b := range bookings {
		_, err := ins.ExecContext(ctx, b.ID, b.PersonID, b.CampaignID, b.ClinicID, db.dialect.dateArg(b.Date),
			b.Product, b.Dose, b.Wave, string(b.Status), b.CancelReason,
			db.dialect.timeArg(b.CreatedAt), db.dialect.timeArg(b.UpdatedAt), b.LinkedID)
		if err != nil {
			return db.bookingInsertError(err)
		}
	}
	return nil
}

func (db *DB) bookingInsertError(err error) error {
	kind, name := db.dialect.classify(err)
	switch {
	case kind == uniqueViolation && (name == "" || name == bookingsActiveUnique):
		return &booking.Error{Code: booking.EALREADYBOOKED, Message: "You already have an active booking for this campaign and dose.", Err: err}
	case kind == primaryKeyViolation:
		return &booking.Error{Code: booking.ECONFLICT, Message: "A booking with this id already exists.", Err: err}
	}
	return fmt.Errorf("insert booking: %w", err)
}

// insertEvents writes outbox rows in tx. On PostgreSQL a statement trigger
// notifies yeyak_outbox, delivered at commit.
func (db *DB) insertEvents(ctx context.Context, tx *sqlx.Tx, events []booking.Event) error {
	if len(events) == 0 {
		return nil
	}
	st, err := db.statements(ctx)
	if err != nil {
		return err
	}
	ins := tx.StmtxContext(ctx, st.insertOutbox)
	for _, e := range events {
		args, err := db.eventArgs(e)
		if err != nil {
			return err
		}
		if _, err := ins.ExecContext(ctx, args...); err != nil {
			if kind, _ := db.dialect.classify(err); kind == uniqueViolation || kind == primaryKeyViolation {
				return eventConflict(err)
			}
			return fmt.Errorf("insert outbox event: %w", err)
		}
	}
	return nil
}

// eventArgs validates an outbox event and returns its sqlInsertOutbox
// arguments: id, aggregate key, type, payload, headers, created at (now
// when zero).
func (db *DB) eventArgs(e booking.Event) ([]any, error) {
	if e.ID == "" || e.Type == "" || e.Key == "" || !json.Valid(e.Payload) {
		return nil, booking.Errorf(booking.EINVALID, "event needs an id, a type, a key and a JSON payload")
	}
	headers := e.Headers
	if headers == nil {
		headers = map[string]string{}
	}
	h, err := json.Marshal(headers)
	if err != nil {
		return nil, fmt.Errorf("encode event headers: %w", err)
	}
	at := e.CreatedAt
	if at.IsZero() {
		at = time.Now()
	}
	return []any{e.ID, e.Key, string(e.Type), string(e.Payload), string(h), db.dialect.timeArg(at)}, nil
}

func eventConflict(err error) error {
	return &booking.Error{Code: booking.ECONFLICT, Message: "An event with this id already exists.", Err: err}
}

// current reads the stored booking id inside tx. The read takes no
// lock; the update that follows is guarded by what was read
// (sqlBookingWhereUnchanged) and the transaction retries if it changed.
func (db *DB) current(ctx context.Context, tx *sqlx.Tx, id string) (*booking.Booking, error) {
	b, err := scanBooking(tx.QueryRowxContext(ctx, db.q.bookingByID, id))
	if notFound(err) {
		return nil, booking.Errorf(booking.ENOTFOUND, "booking not found")
	}
	if err != nil {
		return nil, fmt.Errorf("read booking: %w", err)
	}
	return b, nil
}

func (db *DB) unchangedArgs(b *booking.Booking) []any {
	return []any{b.ID, string(b.Status), b.ClinicID, db.dialect.dateArg(b.Date), b.Product, b.Wave}
}

// execGuarded runs a guarded booking update; 0 rows means the booking
// changed since it was read, and the transaction is retried.
func execGuarded(ctx context.Context, tx *sqlx.Tx, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("update booking: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("update booking: %w", err)
	}
	if n == 0 {
		return errRetry
	}
	return nil
}

// CancelBookings implements booking.Store. Each booking is looked up by
// ID and must belong to its PersonID (else ENOTFOUND); the dose goes back
// to the wave row the stored booking drew from. CancelReason and UpdatedAt
// (default now) are taken from the arguments.
func (db *DB) CancelBookings(ctx context.Context, bookings []*booking.Booking, events []booking.Event) error {
	if len(bookings) == 0 {
		return booking.Errorf(booking.EINVALID, "no booking to cancel")
	}
	for _, b := range bookings {
		if b == nil || b.ID == "" || b.PersonID == "" {
			return booking.Errorf(booking.EINVALID, "a cancellation needs the booking id and its person")
		}
	}
	return db.inOutboxTx(ctx, "cancel bookings", events, func(tx *sqlx.Tx) error {
		stored := make([]*booking.Booking, len(bookings))
		deltas := make(map[quotaKey]int, len(bookings))
		for i, b := range bookings {
			cur, err := db.current(ctx, tx, b.ID)
			if err != nil {
				return err
			}
			if cur.PersonID != b.PersonID {
				return booking.Errorf(booking.ENOTFOUND, "booking not found")
			}
			if !cur.Active() {
				return booking.Errorf(booking.EALREADYCANCELLED, "booking is already cancelled")
			}
			if slices.ContainsFunc(stored[:i], func(s *booking.Booking) bool { return s.ID == cur.ID }) {
				return booking.Errorf(booking.EINVALID, "booking listed twice")
			}
			stored[i] = cur
			deltas[keyOf(cur)]--
		}
		if err := db.applyDeltas(ctx, tx, deltas); err != nil {
			return err
		}
		for i, b := range bookings {
			at := b.UpdatedAt
			if at.IsZero() {
				at = time.Now()
			}
			args := append([]any{b.CancelReason, db.dialect.timeArg(at)}, db.unchangedArgs(stored[i])...)
			if err := execGuarded(ctx, tx, db.q.cancelBooking, args...); err != nil {
				return err
			}
		}
		return db.insertEvents(ctx, tx, events)
	})
}

// MoveBookings implements booking.Store. Old must match the stored booking
// (clinic, date, product, wave), else ECONFLICT: someone changed it since
// the caller read it. New keeps Old's ID, person, campaign and dose; its
// clinic, date, product, wave, status and UpdatedAt (default now) are
// stored.
func (db *DB) MoveBookings(ctx context.Context, moves []booking.Move, events []booking.Event) error {
	if len(moves) == 0 {
		return booking.Errorf(booking.EINVALID, "no booking to move")
	}
	if err := validateMoves(moves); err != nil {
		return err
	}
	return db.inOutboxTx(ctx, "move bookings", events, func(tx *sqlx.Tx) error {
		deltas := make(map[quotaKey]int, 2*len(moves))
		stored, err := db.readMoves(ctx, tx, moves, deltas, nil)
		if err != nil {
			return err
		}
		if err := db.applyDeltas(ctx, tx, deltas); err != nil {
			return err
		}
		if err := db.updateMoves(ctx, tx, moves, stored); err != nil {
			return err
		}
		return db.insertEvents(ctx, tx, events)
	})
}

func validateMoves(moves []booking.Move) error {
	for _, m := range moves {
		if m.Old == nil || m.New == nil {
			return booking.Errorf(booking.EINVALID, "a move needs the old and the new booking")
		}
		if err := validateNew(m.New); err != nil {
			return err
		}
		if m.New.ID != m.Old.ID || m.New.PersonID != m.Old.PersonID || m.New.CampaignID != m.Old.CampaignID || m.New.Dose != m.Old.Dose {
			return booking.Errorf(booking.EINVALID, "a move keeps the booking's id, person, campaign and dose")
		}
	}
	return nil
}

// readMoves reads each moved booking in tx, checks it is the caller's,
// active and unchanged, and adds the move to deltas: −1 where it is, +1
// where it goes (except for flex, whose row the caller takes itself).
func (db *DB) readMoves(ctx context.Context, tx *sqlx.Tx, moves []booking.Move, deltas map[quotaKey]int, flex *booking.Booking) ([]*booking.Booking, error) {
	stored := make([]*booking.Booking, len(moves))
	for i, m := range moves {
		cur, err := db.current(ctx, tx, m.New.ID)
		if err != nil {
			return nil, err
		}
		if cur.PersonID != m.New.PersonID {
			return nil, booking.Errorf(booking.ENOTFOUND, "booking not found")
		}
		if !cur.Active() {
			return nil, booking.Errorf(booking.EALREADYCANCELLED, "booking is cancelled")
		}
		if keyOf(cur) != keyOf(m.Old) {
			return nil, booking.Errorf(booking.ECONFLICT, "booking changed since it was read; reload and try again")
		}
		if slices.ContainsFunc(stored[:i], func(s *booking.Booking) bool { return s.ID == cur.ID }) {
			return nil, booking.Errorf(booking.EINVALID, "booking listed twice")
		}
		stored[i] = cur
		deltas[keyOf(cur)]--
		if m.New != flex {
			deltas[keyOf(m.New)]++
		}
	}
	return stored, nil
}

// updateMoves writes the moved bookings, guarded by what readMoves read.
func (db *DB) updateMoves(ctx context.Context, tx *sqlx.Tx, moves []booking.Move, stored []*booking.Booking) error {
	for i, m := range moves {
		at := m.New.UpdatedAt
		if at.IsZero() {
			at = time.Now()
		}
		args := append([]any{m.New.ClinicID, db.dialect.dateArg(m.New.Date), m.New.Product, m.New.Wave,
			string(m.New.Status), db.dialect.timeArg(at)}, db.unchangedArgs(stored[i])...)
		if err := execGuarded(ctx, tx, db.q.moveBooking, args...); err != nil {
			return err
		}
	}
	return nil
}

// Reserve implements booking.Store: creates and moves in one transaction;
// the fixed quota rows are taken in key order first, then Flex takes the
// first of FlexDates with a dose left (one conditional decrement per date
// tried, so the choice and the take are atomic).
func (db *DB) Reserve(ctx context.Context, r booking.Reservation) error {
	if len(r.Create)+len(r.Moves) == 0 {
		return booking.Errorf(booking.EINVALID, "nothing to reserve")
	}
	if err := prepareNew(r.Create); err != nil {
		return err
	}
	if err := validateMoves(r.Moves); err != nil {
		return err
	}
	if r.Flex != nil {
		listed := slices.Contains(r.Create, r.Flex) || slices.ContainsFunc(r.Moves, func(m booking.Move) bool { return m.New == r.Flex })
		if !listed || len(r.FlexDates) == 0 {
			return booking.Errorf(booking.EINVALID, "the flexible booking must be one of the reservation's, with dates to choose from")
		}
	}
	var events []booking.Event
	if db.dialect == Postgres && !db.bookInTx && len(r.Moves) == 0 && len(r.Create) == 2 &&
		r.Flex == r.Create[1] && r.Create[0] != r.Flex && len(r.FlexDates) <= maxPairDates {
		if done, err := db.reservePair(ctx, r); done {
			return err
		}
	}
	err := db.inTx(ctx, "reserve", func(tx *sqlx.Tx) error {
		deltas := make(map[quotaKey]int, len(r.Create)+2*len(r.Moves))
		stored, err := db.readMoves(ctx, tx, r.Moves, deltas, r.Flex)
		if err != nil {
			return err
		}
		for _, b := range r.Create {
			if b != r.Flex {
				deltas[keyOf(b)]++
			}
		}
		if err := db.applyDeltas(ctx, tx, deltas); err != nil {
			return err
		}
		if r.Flex != nil {
			if err := db.takeFirstDate(ctx, tx, r.Flex, r.FlexDates); err != nil {
				return err
			}
		}
		if err := db.insertBookings(ctx, tx, r.Create); err != nil {
			return err
		}
		if err := db.updateMoves(ctx, tx, r.Moves, stored); err != nil {
			return err
		}
		events = nil
		if r.Events != nil {
			events = r.Events()
		}
		return db.insertEvents(ctx, tx, events)
	})
	if err == nil && len(events) > 0 {
		db.outboxCommitted()
	}
	return err
}

// maxPairDates bounds the second dose's dates reservePair takes: it
// sends the events of every one of them.
const maxPairDates = 8

// reservePair is Reserve's usual case on PostgreSQL — a first dose and
// its second (r.Flex) on the first of r.FlexDates with one left, nothing
// moved — in one statement (sqlReservePairPostgres): one round trip
// instead of the transaction's eight or more, and the rows locked for the
// statement alone; when no date has a second dose left, nothing is
// locked. The events are built for each date beforehand and the statement
// writes the chosen date's. done is false, with nothing written, when the
// date the statement chose lost its last dose to a booking that committed
// meanwhile: the caller then runs the transaction, which tries the dates
// one by one.
func (db *DB) reservePair(ctx context.Context, r booking.Reservation) (done bool, err error) {
	first, flex := r.Create[0], r.Flex
	if flex.CampaignID != first.CampaignID {
		return true, booking.Errorf(booking.EINVALID, "a reservation's bookings are of one campaign")
	}
	// The events are built with each date in flex.Date; it keeps its
	// value unless the reservation succeeds, as in the transaction.
	was, booked := flex.Date, false
	defer func() {
		if !booked {
			flex.Date = was
		}
	}()
	dates := make([]time.Time, len(r.FlexDates))
	var (
		ords                          []int32
		ids, keys, types, pays, heads []string
		ats                           []time.Time
	)
	for i, d := range r.FlexDates {
		dates[i] = d.In(time.UTC)
		if r.Events == nil {
			continue
		}
		flex.Date = d
		for _, e := range r.Events() {
			a, err := db.eventArgs(e)
			if err != nil {
				return true, err
			}
			ords = append(ords, int32(i+1))
			ids, keys, types = append(ids, a[0].(string)), append(keys, a[1].(string)), append(types, a[2].(string))
			pays, heads, ats = append(pays, a[3].(string)), append(heads, a[4].(string)), append(ats, a[5].(time.Time))
		}
	}
	args := []any{first.CampaignID, first.ClinicID, db.dialect.dateArg(first.Date), first.Product, first.Dose, first.Wave,
		dates, flex.ClinicID, flex.Product, flex.Dose, flex.Wave,
		first.ID, first.PersonID, string(first.Status), first.CancelReason,
		db.dialect.timeArg(first.CreatedAt), db.dialect.timeArg(first.UpdatedAt), first.LinkedID,
		flex.ID, flex.PersonID, string(flex.Status), flex.CancelReason,
		db.dialect.timeArg(flex.CreatedAt), db.dialect.timeArg(flex.UpdatedAt), flex.LinkedID,
		ords, ids, keys, types, pays, heads, ats}
	var taken int
	var ord sql.NullInt32
	var secondLeft, firstLeft bool
	err = db.statement(ctx, sqlReservePairPostgres, args, &taken, &ord, &secondLeft, &firstLeft)
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe) && pe.Code == "22012": // the sentinel: second dose not taken
		return false, nil
	case err != nil:
		return true, db.writeError("reserve", err)
	case taken == 0 && secondLeft, taken == 0 && !firstLeft:
		// As the transaction answers: the first dose's refusal first.
		return true, soldOut(keyOf(first))
	case taken == 0:
		return true, noSecondDose(flex, r.FlexDates)
	case !ord.Valid || ord.Int32 < 1 || int(ord.Int32) > len(r.FlexDates):
		return true, fmt.Errorf("sqlstore: reserve: the statement took the first dose but returned second-dose date %v", ord)
	}
	flex.Date, booked = r.FlexDates[ord.Int32-1], true
	if len(ids) > 0 { // the chosen date's events were written
		db.outboxCommitted()
	}
	return true, nil
}

// statement runs a one-statement write (its own transaction) and scans
// its row into dest, again after a deadlock or serialization failure, as
// inTx does for a transaction.
func (db *DB) statement(ctx context.Context, query string, args []any, dest ...any) error {
	var err error
	for range maxTxAttempts {
		err = db.x.QueryRowContext(ctx, query, args...).Scan(dest...)
		if err == nil || ctx.Err() != nil || !db.dialect.retryable(err) {
			break
		}
	}
	return err
}

// writeError maps an error of op's one-statement write (bookings and
// their outbox events) to the booking error it means.
func (db *DB) writeError(op string, err error) error {
	switch kind, name := db.dialect.classify(err); {
	case kind == uniqueViolation && name != bookingsActiveUnique && strings.HasPrefix(name, "outbox"):
		return eventConflict(err)
	case kind != notViolation:
		return db.bookingInsertError(err)
	}
	return fmt.Errorf("sqlstore: %s: %w", op, err)
}

// takeFirstDate takes one dose from the first of dates whose row (b's
// clinic, product, dose and wave) has one left, and sets b.Date to it.
// ESECONDDOSE when none has.
func (db *DB) takeFirstDate(ctx context.Context, tx *sqlx.Tx, b *booking.Booking, dates []booking.Date) error {
	st, err := db.statements(ctx)
	if err != nil {
		return err
	}
	take := tx.StmtxContext(ctx, st.take)
	for _, d := range dates {
		res, err := take.ExecContext(ctx, 1, b.CampaignID, b.ClinicID, db.dialect.dateArg(d), b.Product, b.Dose, b.Wave, 1)
		if err != nil {
			return fmt.Errorf("take dose %d: %w", b.Dose, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("take dose %d: %w", b.Dose, err)
		} else if n == 1 {
			b.Date = d
			return nil
		}
	}
	return noSecondDose(b, dates)
}

// noSecondDose is ESECONDDOSE: none of dates has a dose left for b.
func noSecondDose(b *booking.Booking, dates []booking.Date) error {
	return booking.Errorf(booking.ESECONDDOSE, "No dose %d of %s is left at clinic %s between %s and %s.",
		b.Dose, b.Product, b.ClinicID, slices.MinFunc(dates, booking.Date.Compare), slices.MaxFunc(dates, booking.Date.Compare))
}

// SetStatus implements booking.Store. Returns ENOTFOUND if the booking
// does not exist and ECONFLICT if its status is not from. Setting
// cancelled returns the dose to its wave (with an empty cancel reason;
// CancelBookings records one); leaving cancelled is EINVALID.
func (db *DB) SetStatus(ctx context.Context, id string, from, to booking.Status, at time.Time, events []booking.Event) error {
	valid := func(s booking.Status) bool {
		return s == booking.StatusConfirmed || s == booking.StatusProvisional || s == booking.StatusCancelled
	}
	if id == "" || !valid(from) || !valid(to) {
		return booking.Errorf(booking.EINVALID, "set status needs a booking id and valid statuses")
	}
	if from == booking.StatusCancelled && to != booking.StatusCancelled {
		return booking.Errorf(booking.EINVALID, "a cancelled booking cannot become active again")
	}
	if at.IsZero() {
		at = time.Now()
	}
	return db.inOutboxTx(ctx, "set booking status", events, func(tx *sqlx.Tx) error {
		cur, err := db.current(ctx, tx, id)
		if err != nil {
			return err
		}
		if cur.Status != from {
			if to == booking.StatusCancelled && !cur.Active() {
				return booking.Errorf(booking.EALREADYCANCELLED, "booking is already cancelled")
			}
			return booking.Errorf(booking.ECONFLICT, "booking is %s, not %s", cur.Status, from)
		}
		if to == booking.StatusCancelled && cur.Active() {
			if err := db.applyDeltas(ctx, tx, map[quotaKey]int{keyOf(cur): -1}); err != nil {
				return err
			}
		}
		args := append([]any{string(to), cur.CancelReason, db.dialect.timeArg(at)}, db.unchangedArgs(cur)...)
		if err := execGuarded(ctx, tx, db.q.setStatus, args...); err != nil {
			return err
		}
		return db.insertEvents(ctx, tx, events)
	})
}

// Booking implements booking.Store.
func (db *DB) Booking(ctx context.Context, personID, id string) (*booking.Booking, error) {
	b, err := scanBooking(db.x.QueryRowxContext(ctx, db.q.bookingOfOwner, id, personID))
	if notFound(err) {
		return nil, booking.Errorf(booking.ENOTFOUND, "booking not found")
	}
	if err != nil {
		return nil, internal("get booking", err)
	}
	return b, nil
}

// BookingByID implements booking.Store.
func (db *DB) BookingByID(ctx context.Context, id string) (*booking.Booking, error) {
	b, err := scanBooking(db.x.QueryRowxContext(ctx, db.q.bookingByID, id))
	if notFound(err) {
		return nil, booking.Errorf(booking.ENOTFOUND, "booking not found")
	}
	if err != nil {
		return nil, internal("get booking", err)
	}
	return b, nil
}

// Bookings implements booking.Store.
func (db *DB) Bookings(ctx context.Context, personID string) ([]*booking.Booking, error) {
	rows, err := db.x.QueryxContext(ctx, db.q.bookingsOf, personID)
	if err != nil {
		return nil, internal("list bookings", err)
	}
	defer rows.Close()
	var out []*booking.Booking
	for rows.Next() {
		b, err := scanBooking(rows)
		if err != nil {
			return nil, internal("list bookings", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("list bookings", err)
	}
	return out, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanBooking(s scanner) (*booking.Booking, error) {
	var (
		b                booking.Booking
		date             dbDate
		status           string
		created, updated dbTime
	)
	err := s.Scan(&b.ID, &b.PersonID, &b.CampaignID, &b.ClinicID, &date, &b.Product, &b.Dose, &b.Wave,
		&status, &b.CancelReason, &created, &updated, &b.LinkedID)
	if err != nil {
		return nil, err
	}
	b.Date, b.Status, b.CreatedAt, b.UpdatedAt = date.Date, booking.Status(status), created.Time, updated.Time
	return &b, nil
}
