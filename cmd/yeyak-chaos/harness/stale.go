package harness

import (
	"context"
	"os"
	"path/filepath"
	"time"
)

// staleAfter is the age after which a harness directory is taken for a
// leftover of a run that died before cleaning up.
const staleAfter = time.Hour

// removeStale removes leftovers of runs that died before cleaning up:
// temporary directories named pattern older than staleAfter, after
// stopping the PostgreSQL server one of them may still run.
func removeStale(pattern string, stop func(dir string)) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), pattern))
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < staleAfter {
			continue
		}
		if stop != nil {
			stop(d)
		}
		_ = os.RemoveAll(d)
	}
}

// removeStalePostgres stops and removes the servers of dead runs.
func removeStalePostgres(bin string) {
	removeStale("yeyak-chaos-pg-*", func(dir string) {
		data := filepath.Join(dir, "data")
		if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err != nil {
			return
		}
		p := &Postgres{bin: bin, dir: dir, data: data}
		if os.Geteuid() == 0 {
			p.asUser = postgresUser()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = p.run(ctx, "pg_ctl", "-D", data, "-m", "immediate", "-w", "-t", "20", "stop")
	})
}
