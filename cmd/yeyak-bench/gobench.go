package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// benchResult is one line of `go test -bench` output: the benchmark's
// name (without the -GOMAXPROCS suffix), its iterations, and every metric
// it reported by unit (ns/op, B/op, and b.ReportMetric's custom units such
// as bookings/s or p99-µs).
type benchResult struct {
	Name    string
	N       int64
	Metrics map[string]float64
}

// parseBench reads `go test -bench` output; lines that are not results are
// skipped.
func parseBench(out string) []benchResult {
	var res []benchResult
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		r := benchResult{Name: name, N: n, Metrics: map[string]float64{}}
		ok := true
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				ok = false
				break
			}
			r.Metrics[f[i+1]] = v
		}
		if ok {
			res = append(res, r)
		}
	}
	return res
}

// find returns the result named name.
func find(rs []benchResult, name string) (benchResult, bool) {
	for _, r := range rs {
		if r.Name == name {
			return r, true
		}
	}
	return benchResult{}, false
}

// metric returns the unit's value of the result named name, or an error
// naming what is missing.
func metric(rs []benchResult, name, unit string) (float64, error) {
	r, ok := find(rs, name)
	if !ok {
		return 0, fmt.Errorf("no result for %s", name)
	}
	v, ok := r.Metrics[unit]
	if !ok {
		return 0, fmt.Errorf("%s reported no %s", name, unit)
	}
	return v, nil
}

// goBenchCommand is the command line that reproduces a Go benchmark alone.
func goBenchCommand(pkg, pattern, benchtime string) string {
	return fmt.Sprintf("go test -run '^$' -bench '%s' -benchtime %s %s", pattern, benchtime, pkg)
}

// goBench runs the benchmarks of pkg matching pattern. Services must be
// there (YEYAK_REQUIRE_SERVICES=1): a figure never silently skips.
func goBench(ctx context.Context, pkg, pattern, benchtime string) ([]benchResult, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", pattern, "-benchtime", benchtime, "-count", "1", pkg)
	cmd.Env = append(os.Environ(), "YEYAK_REQUIRE_SERVICES=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", goBenchCommand(pkg, pattern, benchtime), err, tail(string(out), 15))
	}
	res := parseBench(string(out))
	if len(res) == 0 {
		return nil, fmt.Errorf("%s: no benchmark results\n%s", goBenchCommand(pkg, pattern, benchtime), tail(string(out), 15))
	}
	return res, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
