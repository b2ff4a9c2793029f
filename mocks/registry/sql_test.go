package registry_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite" // driver "sqlite"

	"github.com/yeyak/yeyak/mocks/population"
	"github.com/yeyak/yeyak/mocks/registry"
	"github.com/yeyak/yeyak/mocks/testenv"
)

func openSQLite(t *testing.T) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("sqlite", filepath.Join(t.TempDir(), "legacy.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openPostgres(t *testing.T) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("pgx", testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestSQLSchemaAndSeed(t *testing.T) {
	for name, open := range map[string]func(*testing.T) *sqlx.DB{"sqlite": openSQLite, "postgres": openPostgres} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			db := open(t)
			if err := registry.CreateSchema(ctx, db); err != nil {
				t.Fatal(err)
			}
			if err := registry.CreateSchema(ctx, db); err != nil {
				t.Fatalf("second CreateSchema: %v", err)
			}
			cfg := population.Config{Seed: 12, People: 3000}
			n, err := registry.Seed(ctx, db, population.People(cfg))
			if err != nil {
				t.Fatal(err)
			}
			var known, doses int
			var sample population.Person
			for p := range population.People(cfg) {
				if p.Unknown {
					continue
				}
				known++
				doses += len(p.Doses)
				if len(p.Doses) == 2 && sample.ID == "" {
					sample = p
				}
			}
			if n != known {
				t.Fatalf("Seed loaded %d, want %d known people", n, known)
			}
			var rows, doseRows int
			if err := db.GetContext(ctx, &rows, "SELECT COUNT(*) FROM PERSON_MST"); err != nil {
				t.Fatal(err)
			}
			if err := db.GetContext(ctx, &doseRows, "SELECT COUNT(*) FROM VACC_HIST"); err != nil {
				t.Fatal(err)
			}
			if rows != known || doseRows != doses {
				t.Fatalf("PERSON_MST %d (want %d), VACC_HIST %d (want %d)", rows, known, doseRows, doses)
			}

			var got struct {
				BrthDt  string `db:"brth_dt"`
				SexCd   string `db:"sex_cd"`
				RgnCd   string `db:"rgn_cd"`
				CntraYn string `db:"cntra_yn"`
				ExclYn  string `db:"excl_yn"`
			}
			q := db.Rebind("SELECT BRTH_DT AS brth_dt, SEX_CD AS sex_cd, RGN_CD AS rgn_cd, CNTRA_YN AS cntra_yn, EXCL_YN AS excl_yn FROM PERSON_MST WHERE PRSN_ID = ?")
			if err := db.GetContext(ctx, &got, q, sample.ID); err != nil {
				t.Fatal(err)
			}
			want := strings.ReplaceAll(sample.BirthDate.String(), "-", "")
			if got.BrthDt != want || got.SexCd != string(sample.Sex) || got.RgnCd != sample.Region || got.CntraYn != yn(sample.Contraindicated) || got.ExclYn != yn(sample.Excluded) {
				t.Fatalf("row %+v for %+v", got, sample)
			}
			var maxDose int
			q = db.Rebind("SELECT MAX(DOSE_NO) FROM VACC_HIST WHERE PRSN_ID = ?")
			if err := db.GetContext(ctx, &maxDose, q, sample.ID); err != nil || maxDose != 2 {
				t.Fatalf("max dose %d, %v", maxDose, err)
			}

			// RSVT_INFO takes a row as the contract describes, and the
			// index on PRSN_ID exists.
			ins := db.Rebind(`INSERT INTO RSVT_INFO (RSVT_ID, PRSN_ID, CMPN_ID, ORG_ID, RSVT_DT, PRDT_CD, DOSE_NO, STTS_CD, REG_DTM, UPD_DTM)
				VALUES (?, ?, ?, ?, ?, ?, ?, 'A', ?, ?)`)
			if _, err := db.ExecContext(ctx, ins, "r1", sample.ID, "c2021", "C000001", "20210826", "pfizer", 3, "20210801200000", "20210801200000"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, ins, "r1", sample.ID, "c2021", "C000001", "20210826", "pfizer", 3, "20210801200000", "20210801200000"); err == nil {
				t.Fatal("duplicate RSVT_ID accepted")
			}
			var ix int
			iq := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'RSVT_INFO_IX01'"
			if name == "postgres" {
				iq = "SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'rsvt_info_ix01'"
			}
			if err := db.GetContext(ctx, &ix, iq); err != nil || ix != 1 {
				t.Fatalf("index RSVT_INFO_IX01: %d, %v", ix, err)
			}
		})
	}
}

func TestDDLDialects(t *testing.T) {
	ora := strings.Join(registry.DDL(registry.Oracle), "\n")
	pg := strings.Join(registry.DDL(registry.Postgres), "\n")
	if !strings.Contains(ora, "VARCHAR2(20)") || !strings.Contains(ora, "NUMBER(2)") || strings.Contains(ora, "IF NOT EXISTS") {
		t.Fatalf("oracle DDL:\n%s", ora)
	}
	if strings.Contains(pg, "VARCHAR2") || strings.Contains(pg, "NUMBER(") || !strings.Contains(pg, "NUMERIC(2)") {
		t.Fatalf("postgres DDL:\n%s", pg)
	}
	for drv, want := range map[string]registry.Dialect{"godror": registry.Oracle, "pgx": registry.Postgres, "sqlite": registry.SQLite} {
		if got := registry.DialectOf(drv); got != want {
			t.Errorf("DialectOf(%s) = %s", drv, got)
		}
	}
}

func yn(b bool) string {
	if b {
		return "Y"
	}
	return "N"
}
