// Package oracle is the adapter.Registry that reads and writes the legacy
// registry's Oracle schema directly (PERSON_MST, VACC_HIST, RSVT_INFO; see
// docs/legacy-schema.md), through github.com/jmoiron/sqlx and the
// github.com/godror/godror driver.
//
//	reg, err := oracle.Open(oracle.Config{DSN: `user="yeyak" password="…" connectString="regdb:1521/REGPDB"`})
//	if err != nil { … }
//	defer reg.Close()
//	facade, err := adapter.NewFacade(reg, adapter.FacadeConfig{})
//
// A command line needs three things from the operator: the DSN (the
// driver defaults to "godror"), the pool size (Config.MaxOpenConns, 8 by
// default: the registry's connection budget divided by the yeyakd
// instances), and optionally the statement timeout. Tests open the same
// way with Driver "pgx" and a PostgreSQL DSN, against the schema
// mocks/registry creates (TestOpenPgxAgainstMockSchema).
//
// # Roster for the cache warmer
//
// Registry.Roster lists a birth-digit group of the campaign's cohort from
// PERSON_MST (SUBSTR(BRTH_DT, 8, 1) is the last digit of the day of birth),
// in PRSN_ID pages, and counts it: the cache.Roster the pre-warmer needs in
// production. It reads the registry's own population, so it is exactly who
// the registry will answer for:
//
//	roster := reg.Roster(oracle.RosterConfig{BornFrom: campaign.BornFrom, BornTo: campaign.BornTo})
//	w, err := cache.NewWarmer(c, cache.WarmerConfig{Roster: roster})
//
// What it does: named binds (:PRSN_ID) rewritten by sqlx for the driver, so
// the very same statements run on Oracle, PostgreSQL (driver "pgx") and
// SQLite; a small pool (8 connections by default: the registry's budget is
// small); a timeout on every call through its context; bulk lookups in
// chunks of 1000 ids (Oracle's IN-list limit, ORA-01795) expanded with
// sqlx.In; writes idempotent by RSVT_ID with portable SQL (check, then
// insert, in one transaction; a lost race on the primary key is recognised
// by re-checking the id — no MERGE, ON CONFLICT or vendor error codes).
// Database failures and timeouts wrap adapter.ErrUnavailable; business
// refusals adapter.ErrRejected; an unknown person adapter.ErrNotFound.
//
// # Tested on PostgreSQL and SQLite, not on Oracle
//
// No Oracle server was available to test against. The contract suite
// (adapter/registrytest) runs this package on PostgreSQL and SQLite against
// the schema mocks/registry creates; godror is compiled in but never
// exercised. Before trusting it on the real registry, check on an Oracle
// instance (a throwaway container of the same major version is enough):
//
//   - Bind syntax: sqlx rewrites "?" to :arg1, :arg2… for godror (bind type
//     NAMED). Check that IN lists expanded by sqlx.In bind correctly, and
//     that repeated names in one statement would bind by position (none of
//     today's statements repeat a name).
//   - CHAR padding: BRTH_DT, VACC_DT, RSVT_DT, STTS_CD, CNTRA_YN, EXCL_YN and
//     REG_DTM are CHAR. Values written have the exact width, and values read
//     are trimmed, but comparisons of a CHAR column with a bind variable use
//     non-padded semantics in Oracle: if the real data holds shorter values
//     (blank-padded), equality on binds may miss rows. Only the Roster
//     compares one (BRTH_DT, with YYYYMMDD binds): check that the real
//     BRTH_DT values are all 8 characters.
//   - NUMBER scanning: DOSE_NO is NUMBER(2), scanned into int64. godror
//     returns NUMBER as a decimal string by default; database/sql converts
//     it. COUNT(*) and COALESCE(MAX(DOSE_NO), 0) likewise. Verify, and set
//     godror's numberAsString/NumberAs options only if it fails.
//   - Timeouts: on context expiry godror breaks the call (OCIBreak) and the
//     session may need a reset before reuse; verify that a timed-out
//     statement leaves the pool healthy (TestStatementTimeout does this on
//     PostgreSQL) and that the break reaches the server quickly across the
//     network (OCI's own timeouts: set callTimeout in the connect string as
//     a second guard).
//   - IN limits: 1000 elements per IN list (ORA-01795) — chunks are exactly
//     MaxInList; also check the plan (an IN list of 1000 binds is parsed
//     per distinct size: consider padding chunks to a few fixed sizes if the
//     shared pool suffers).
//   - Session pool: godror has its own session pool (standaloneConnection=0,
//     poolMinSessions, poolMaxSessions, poolIncrement, in the DSN) beneath
//     database/sql's; MaxOpenConns must not exceed poolMaxSessions, and the
//     sum over all yeyakd instances must fit the registry's connection
//     budget agreed with its DBAs.
//   - Upper-case names: the statements use unquoted names; Oracle stores
//     them upper case, as the real schema has them. If the real schema lives
//     in another owner's schema, use synonyms or set CURRENT_SCHEMA on
//     connect (godror's onInit / alterSession).
//   - Roster plan: the page query (Roster.PeopleForDigit) has no row limit
//     clause (none is portable) and relies on the FIRST_ROWS hint for Oracle
//     to walk the PRSN_ID primary key index and stop after the page,
//     filtering on BRTH_DT as it goes. Check with EXPLAIN PLAN that it is an
//     INDEX RANGE SCAN with no SORT ORDER BY; if Oracle sorts the group for
//     every page, add a function-based index on (SUBSTR(BRTH_DT, 8, 1),
//     PRSN_ID). Oracle binds an empty string as NULL, which is why the first
//     page has its own statement without "PRSN_ID > :AFTER".
//   - Isolation: the check-then-insert transaction runs at READ COMMITTED
//     (Oracle's default). The primary key on RSVT_ID is what makes the
//     insert safe; it must exist on the real table.
package oracle
