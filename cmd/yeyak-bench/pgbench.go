package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/yeyak/yeyak/mocks/testenv"
)

// scratchDB creates a uniquely named database on the server of adminDSN
// (named like the test databases, so testenv removes it if a run dies
// before dropping it) and returns its DSN and a function that drops it.
func scratchDB(ctx context.Context, adminDSN string) (dsn, name string, drop func(), err error) {
	db, err := sql.Open("pgx", adminDSN)
	if err != nil {
		return "", "", nil, err
	}
	name = fmt.Sprintf("%s%d_%s", testenv.Prefix, time.Now().Unix(), testenv.RandomSuffix(4))
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		db.Close()
		return "", "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(adminDSN)
	if err != nil {
		db.Close()
		return "", "", nil, err
	}
	u.Path = "/" + name
	drop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		db.Close()
	}
	return u.String(), name, drop, nil
}

// serverVersion is the PostgreSQL server's version.
func serverVersion(ctx context.Context, adminDSN string) string {
	db, err := sql.Open("pgx", adminDSN)
	if err != nil {
		return "unknown"
	}
	defer db.Close()
	var v string
	if err := db.QueryRowContext(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return v
}

var tpsLine = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(without initial connection time\)`)

// parseTPS reads pgbench's "tps = … (without initial connection time)".
func parseTPS(out string) (float64, error) {
	m := tpsLine.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no tps line in pgbench output:\n%s", tail(out, 10))
	}
	return strconv.ParseFloat(m[1], 64)
}

// pgbenchSettings are the pgbench run: -N (simple update: UPDATE
// pgbench_accounts, SELECT, INSERT pgbench_history — three statements, like
// a booking's quota update and two inserts), as many clients as the
// booking benchmark has goroutines on connections.
const (
	pgbenchScale   = 10
	pgbenchClients = 8
	pgbenchThreads = 2
)

// pgbenchCommand is the command line that reproduces the pgbench figure.
func pgbenchCommand(d time.Duration) string {
	return fmt.Sprintf("createdb -h 127.0.0.1 -U postgres scratch && pgbench -h 127.0.0.1 -U postgres -i -s %d -q scratch && pgbench -h 127.0.0.1 -U postgres -N -c %d -j %d -T %d -M prepared scratch",
		pgbenchScale, pgbenchClients, pgbenchThreads, int(d.Seconds()))
}

// pgbench runs pgbench -N for d against a scratch database and returns
// its transactions per second.
func pgbench(ctx context.Context, adminDSN string, d time.Duration) (float64, error) {
	if _, err := exec.LookPath("pgbench"); err != nil {
		return 0, fmt.Errorf("pgbench not installed: %w", err)
	}
	dsn, _, drop, err := scratchDB(ctx, adminDSN)
	if err != nil {
		return 0, err
	}
	defer drop()
	u, err := url.Parse(dsn)
	if err != nil {
		return 0, err
	}
	conn := []string{"-h", u.Hostname(), "-p", u.Port(), "-U", u.User.Username()}
	if u.Port() == "" {
		conn[3] = "5432"
	}
	db := u.Path[1:]
	init := exec.CommandContext(ctx, "pgbench", append(conn, "-i", "-s", strconv.Itoa(pgbenchScale), "-q", db)...)
	if out, err := init.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("pgbench -i: %w\n%s", err, tail(string(out), 10))
	}
	run := exec.CommandContext(ctx, "pgbench", append(conn, "-N", "-c", strconv.Itoa(pgbenchClients), "-j", strconv.Itoa(pgbenchThreads),
		"-T", strconv.Itoa(int(d.Seconds())), "-M", "prepared", db)...)
	out, err := run.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgbench -N: %w\n%s", err, tail(string(out), 10))
	}
	return parseTPS(string(out))
}
