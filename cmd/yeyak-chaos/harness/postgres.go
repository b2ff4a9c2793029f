package harness

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// ErrNoPostgres is returned when no PostgreSQL server binaries (initdb,
// pg_ctl) are installed.
var ErrNoPostgres = errors.New("harness: PostgreSQL server binaries (initdb, pg_ctl) not found; set YEYAK_PG_BIN or install postgresql")

// PostgresBin finds the directory of initdb and pg_ctl: $YEYAK_PG_BIN,
// the newest /usr/lib/postgresql/*/bin, or the PATH.
func PostgresBin() (string, error) {
	if d := os.Getenv("YEYAK_PG_BIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("%w: YEYAK_PG_BIN=%s: %v", ErrNoPostgres, d, err)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", ErrNoPostgres
}

// Postgres is a PostgreSQL instance of the harness's own: its data
// directory in a temporary directory, listening on 127.0.0.1 on a free
// port, TCP only. Restarting it never touches another server.
type Postgres struct {
	bin, dir, data, logFile string
	port                    int
	asUser                  *user.User // run the server as this user (when the harness is root)
}

// StartPostgres creates a cluster with initdb under a new temporary
// directory and starts it. Close stops it and removes the directory.
func StartPostgres(ctx context.Context) (*Postgres, error) {
	bin, err := PostgresBin()
	if err != nil {
		return nil, err
	}
	removeStalePostgres(bin)
	dir, err := os.MkdirTemp("", "yeyak-chaos-pg-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{bin: bin, dir: dir, data: filepath.Join(dir, "data"), logFile: filepath.Join(dir, "postgres.log")}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("harness: running as root needs a postgres user: %w", err)
		}
		p.asUser = u
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if p.port, err = FreePort(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if out, err := p.run(ctx, "initdb", "-D", p.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if err := p.Start(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return p, nil
}

// postgresUser is the postgres system user, or nil.
func postgresUser() *user.User {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil
	}
	return u
}

// run runs a server binary, as the postgres user when the harness is root.
func (p *Postgres) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	path := filepath.Join(p.bin, name)
	var cmd *exec.Cmd
	if p.asUser != nil {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", p.asUser.Username, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = p.dir
	return cmd.CombinedOutput()
}

// Start starts the server (again, on the same port) and waits until it
// accepts connections.
func (p *Postgres) Start(ctx context.Context) error {
	// fsync off: the scenarios restart the server cleanly (a fast shutdown
	// writes everything out), and commit latency must not depend on what
	// else the machine's disk is doing.
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=64MB", p.port)
	if out, err := p.run(ctx, "pg_ctl", "-D", p.data, "-l", p.logFile, "-o", opts, "-w", "-t", "60", "start"); err != nil {
		return fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, p.LogTail(20))
	}
	return p.ping(ctx)
}

// Stop stops the server with a fast shutdown (connections are closed,
// in-flight transactions roll back).
func (p *Postgres) Stop(ctx context.Context) error {
	if out, err := p.run(ctx, "pg_ctl", "-D", p.data, "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// Close stops the server (immediately) and removes its directory.
func (p *Postgres) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, _ = p.run(ctx, "pg_ctl", "-D", p.data, "-m", "immediate", "-w", "-t", "30", "stop")
	return os.RemoveAll(p.dir)
}

// DSN returns the URL of database name on this server.
func (p *Postgres) DSN(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, name)
}

// CreateDatabase creates database name and returns its DSN.
func (p *Postgres) CreateDatabase(ctx context.Context, name string) (string, error) {
	db, err := sql.Open("pgx", p.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return p.DSN(name), nil
}

func (p *Postgres) ping(ctx context.Context) error {
	db, err := sql.Open("pgx", p.DSN("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = db.PingContext(pctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("postgres not answering on port %d: %w", p.port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Version returns the server's version string (SHOW server_version).
func (p *Postgres) Version(ctx context.Context) string {
	db, err := sql.Open("pgx", p.DSN("postgres"))
	if err != nil {
		return ""
	}
	defer db.Close()
	var v string
	_ = db.QueryRowContext(ctx, "SHOW server_version").Scan(&v)
	return v
}

// LogTail returns the last n lines of the server log.
func (p *Postgres) LogTail(n int) string {
	b, err := os.ReadFile(p.logFile)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Pid returns the postmaster's process id (from postmaster.pid), or 0.
func (p *Postgres) Pid() int {
	b, err := os.ReadFile(filepath.Join(p.data, "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(first))
	return pid
}
