package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"

	"github.com/yeyak/yeyak/mocks/population"
)

// Dialect is a SQL dialect the legacy schema is written in. The differences
// are named here and nowhere else.
type Dialect string

// Dialects.
const (
	// Oracle is the real registry's: VARCHAR2, NUMBER, no IF NOT EXISTS.
	Oracle Dialect = "oracle"
	// Postgres: VARCHAR for VARCHAR2, NUMERIC for NUMBER; unquoted upper
	// case names fold to lower case, so queries must not quote them.
	Postgres Dialect = "postgres"
	// SQLite takes the PostgreSQL spelling.
	SQLite Dialect = "sqlite"
)

// DialectOf maps a database/sql driver name to its dialect: "godror",
// "oracle", "oci8" → Oracle; "sqlite", "sqlite3" → SQLite; anything else
// (pgx, postgres) → Postgres.
func DialectOf(driverName string) Dialect {
	switch strings.ToLower(driverName) {
	case "godror", "oracle", "oci8", "ora", "goracle":
		return Oracle
	case "sqlite", "sqlite3":
		return SQLite
	}
	return Postgres
}

// ddl is the legacy schema, written once; {V} and {N} are VARCHAR2 and
// NUMBER in the dialect, {INE} is "IF NOT EXISTS " where supported.
var ddl = []string{
	`CREATE TABLE {INE}PERSON_MST (
	PRSN_ID  {V}(20) PRIMARY KEY,
	BRTH_DT  CHAR(8) NOT NULL,
	SEX_CD   CHAR(1),
	RGN_CD   {V}(10),
	CNTRA_YN CHAR(1) DEFAULT 'N' NOT NULL,
	EXCL_YN  CHAR(1) DEFAULT 'N' NOT NULL,
	REG_DT   CHAR(8)
)`,
	`CREATE TABLE {INE}VACC_HIST (
	PRSN_ID  {V}(20) NOT NULL,
	DOSE_NO  {N}(2) NOT NULL,
	PRDT_CD  {V}(20) NOT NULL,
	VACC_DT  CHAR(8) NOT NULL,
	PRIMARY KEY (PRSN_ID, DOSE_NO)
)`,
	`CREATE TABLE {INE}RSVT_INFO (
	RSVT_ID  {V}(40) PRIMARY KEY,
	PRSN_ID  {V}(20) NOT NULL,
	CMPN_ID  {V}(40) NOT NULL,
	ORG_ID   {V}(40) NOT NULL,
	RSVT_DT  CHAR(8) NOT NULL,
	PRDT_CD  {V}(20) NOT NULL,
	DOSE_NO  {N}(2) NOT NULL,
	STTS_CD  CHAR(1) NOT NULL,
	REG_DTM  CHAR(14) NOT NULL,
	UPD_DTM  CHAR(14) NOT NULL
)`,
	`CREATE INDEX {INE}RSVT_INFO_IX01 ON RSVT_INFO (PRSN_ID)`,
}

// DDL returns the statements that create the legacy schema in dialect d,
// in order, without trailing semicolons.
func DDL(d Dialect) []string {
	v, n, ine := "VARCHAR", "NUMERIC", "IF NOT EXISTS "
	if d == Oracle {
		v, n, ine = "VARCHAR2", "NUMBER", ""
	}
	r := strings.NewReplacer("{V}", v, "{N}", n, "{INE}", ine)
	out := make([]string, len(ddl))
	for i, s := range ddl {
		out[i] = r.Replace(s)
	}
	return out
}

// CreateSchema creates PERSON_MST, VACC_HIST and RSVT_INFO (and RSVT_INFO's
// PRSN_ID index) in db, in the dialect of db's driver. On PostgreSQL and
// SQLite it is idempotent; on Oracle it fails if the tables exist.
func CreateSchema(ctx context.Context, db *sqlx.DB) error {
	for _, s := range DDL(DialectOf(db.DriverName())) {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("create legacy schema: %w", err)
		}
	}
	return nil
}

// personRow is a PERSON_MST row's values, in column order.
var personCols = []string{"PRSN_ID", "BRTH_DT", "SEX_CD", "RGN_CD", "CNTRA_YN", "EXCL_YN", "REG_DT"}
var doseCols = []string{"PRSN_ID", "DOSE_NO", "PRDT_CD", "VACC_DT"}

func personRow(p *population.Person) []any {
	bd := legacy(p.BirthDate.Year, int(p.BirthDate.Month), p.BirthDate.Day)
	// REG_DT: registered at birth, as a national registry does.
	return []any{p.ID, bd, string(p.Sex), p.Region, yn(p.Contraindicated), yn(p.Excluded), bd}
}

func doseRows(p *population.Person, out [][]any) [][]any {
	for _, d := range p.Doses {
		out = append(out, []any{p.ID, int64(d.Number), d.Product, legacy(d.Date.Year, int(d.Date.Month), d.Date.Day)})
	}
	return out
}

func legacy(y, m, d int) string { return fmt.Sprintf("%04d%02d%02d", y, m, d) }

// Seed loads people into PERSON_MST and their doses into VACC_HIST, in one
// transaction, skipping Unknown people (the registry does not know them).
// It returns the number of people loaded. On PostgreSQL through pgx it
// uses COPY; elsewhere prepared inserts in one transaction.
//
//	n, err := registry.Seed(ctx, db, population.People(cfg))
func Seed(ctx context.Context, db *sqlx.DB, people iter.Seq[population.Person]) (int, error) {
	if DialectOf(db.DriverName()) == Postgres {
		n, ok, err := seedCopy(ctx, db, people)
		if ok {
			return n, err
		}
	}
	return seedInsert(ctx, db, people)
}

// seedCopy loads through pgx's COPY; ok is false when db is not on pgx.
func seedCopy(ctx context.Context, db *sqlx.DB, people iter.Seq[population.Person]) (n int, ok bool, err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, true, fmt.Errorf("seed legacy schema: %w", err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		sc, isPgx := dc.(*stdlib.Conn)
		if !isPgx {
			return errNotPgx
		}
		ok = true
		tx, err := sc.Conn().Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
		src := &personSource{}
		next, stop := iter.Pull(people)
		defer stop()
		src.next = next
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"person_mst"}, lower(personCols), src); err != nil {
			return fmt.Errorf("copy PERSON_MST: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"vacc_hist"}, lower(doseCols), pgx.CopyFromRows(src.doses)); err != nil {
			return fmt.Errorf("copy VACC_HIST: %w", err)
		}
		n = src.n
		return tx.Commit(ctx)
	})
	if errors.Is(err, errNotPgx) {
		return 0, false, nil
	}
	if err != nil {
		return 0, true, fmt.Errorf("seed legacy schema: %w", err)
	}
	return n, true, nil
}

var errNotPgx = errors.New("not a pgx connection")

func lower(cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = strings.ToLower(c)
	}
	return out
}

// personSource streams known people into COPY and collects their doses.
type personSource struct {
	next  func() (population.Person, bool)
	cur   []any
	doses [][]any
	n     int
}

func (s *personSource) Next() bool {
	for {
		p, ok := s.next()
		if !ok {
			return false
		}
		if p.Unknown {
			continue
		}
		s.cur = personRow(&p)
		s.doses = doseRows(&p, s.doses)
		s.n++
		return true
	}
}

func (s *personSource) Values() ([]any, error) { return s.cur, nil }
func (s *personSource) Err() error             { return nil }

// seedInsert loads with prepared single-row inserts (portable to Oracle,
// which has no multi-row VALUES) in one transaction.
func seedInsert(ctx context.Context, db *sqlx.DB, people iter.Seq[population.Person]) (int, error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("seed legacy schema: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	ins := func(table string, cols []string) (*sql.Stmt, error) {
		q := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", table, strings.Join(cols, ", "),
			strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", "))
		return tx.PrepareContext(ctx, tx.Rebind(q))
	}
	pst, err := ins("PERSON_MST", personCols)
	if err != nil {
		return 0, fmt.Errorf("seed legacy schema: %w", err)
	}
	defer pst.Close()
	dst, err := ins("VACC_HIST", doseCols)
	if err != nil {
		return 0, fmt.Errorf("seed legacy schema: %w", err)
	}
	defer dst.Close()
	n := 0
	var doses [][]any
	for p := range people {
		if p.Unknown {
			continue
		}
		if _, err := pst.ExecContext(ctx, personRow(&p)...); err != nil {
			return 0, fmt.Errorf("seed PERSON_MST: %w", err)
		}
		doses = doseRows(&p, doses[:0])
		for _, d := range doses {
			if _, err := dst.ExecContext(ctx, d...); err != nil {
				return 0, fmt.Errorf("seed VACC_HIST: %w", err)
			}
		}
		n++
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("seed legacy schema: %w", err)
	}
	return n, nil
}
