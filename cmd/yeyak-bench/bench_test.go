package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const sampleBench = `goos: linux
goarch: amd64
pkg: github.com/yeyak/yeyak/booking/sqlstore
cpu: AMD EPYC
BenchmarkBookPostgres/notify=in_tx-2         	    2611	   1127703 ns/op	       894.7 bookings/s
BenchmarkBookPostgres/notify=after_commit-2  	    2025	   1201280 ns/op	       837.6 bookings/s
BenchmarkCacheHitParallel-2   	 1147262	      1155 ns/op	       0 B/op	       0 allocs/op
BenchmarkNear14k/radius=10km-2         	    2000	     90134 ns/op	        43.39 p50-µs	       931.5 p99-µs	        18.85 results/op
BenchmarkFacadeStallWorstWait-2   	       2	 800891870 ns/op	       801.1 max-wait-ms	         1.053 overshoot-ms
BenchmarkBroken-2 	 12 	 notanumber ns/op
--- FAIL: BenchmarkOther
PASS
ok  	github.com/yeyak/yeyak/booking/sqlstore	18.089s
`

func TestParseBench(t *testing.T) {
	rs := parseBench(sampleBench)
	if len(rs) != 5 {
		t.Fatalf("%d results: %+v", len(rs), rs)
	}
	for _, c := range []struct {
		name, unit string
		want       float64
	}{
		{"BenchmarkBookPostgres/notify=in_tx", "bookings/s", 894.7},
		{"BenchmarkBookPostgres/notify=after_commit", "ns/op", 1201280},
		{"BenchmarkCacheHitParallel", "allocs/op", 0},
		{"BenchmarkNear14k/radius=10km", "p99-µs", 931.5},
		{"BenchmarkFacadeStallWorstWait", "max-wait-ms", 801.1},
	} {
		got, err := metric(rs, c.name, c.unit)
		if err != nil || got != c.want {
			t.Errorf("%s %s = %v, %v; want %v", c.name, c.unit, got, err, c.want)
		}
	}
	if r, _ := find(rs, "BenchmarkCacheHitParallel"); r.N != 1147262 {
		t.Errorf("iterations %d", r.N)
	}
	if _, err := metric(rs, "BenchmarkNear14k/radius=10km", "bookings/s"); err == nil {
		t.Error("a unit the benchmark did not report was found")
	}
	if _, err := metric(rs, "BenchmarkMissing", "ns/op"); err == nil {
		t.Error("a missing benchmark was found")
	}
}

func TestParseTPS(t *testing.T) {
	out := `pgbench (15.20 (Debian 15.20-0+deb12u1))
transaction type: <builtin: simple update>
number of clients: 8
latency average = 6.123 ms
initial connection time = 12.345 ms
tps = 1306.543210 (without initial connection time)
`
	tps, err := parseTPS(out)
	if err != nil || tps != 1306.54321 {
		t.Fatalf("tps %v, %v", tps, err)
	}
	if _, err := parseTPS("pgbench: error: connection refused"); err == nil {
		t.Error("no tps line parsed")
	}
}

func TestMarkdown(t *testing.T) {
	secs := []section{
		{Title: "Cache vs sync.Map", About: "What it is.", Rows: []row{{"cache hit", "10 ns/op", "sync.Map", "5.00 ns/op", ratio(10, 5)}},
			Commands: []string{goBenchCommand("./cache/", "X", "1s")}},
		{Title: "Broken", Err: errors.New("pgbench not installed:\nexec: not found")},
	}
	m := machine{CPU: "Test CPU", Cores: 2, Memory: "1.0 GiB", Go: "go1.26", Postgres: "15", Kernel: "6", LoadStart: "0.5", LoadEnd: "0.7"}
	doc := markdown(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), 5*time.Minute, m, secs)
	for _, want := range []string{
		"# yeyak benchmarks", "2026-11-27 12:00 UTC", "| CPU | Test CPU, 2 cores |", "| memory | 1.0 GiB |",
		"| Go | go1.26 |", "| PostgreSQL | 15 |", "## 1. Cache vs sync.Map", "| cache hit | 10 ns/op | sync.Map | 5.00 ns/op | 2.00× |",
		"go test -run '^$' -bench 'X' -benchtime 1s ./cache/", "## 2. Broken", "**Not measured:** pgbench not installed: exec: not found",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q:\n%s", want, doc)
		}
	}
	if ratio(1, 0) != "–" || ratio(4234.8, 1) != "4235×" || ratio(25.85, 1) != "25.9×" || ratio(3, 1000) != "0.003×" || num(1234.5, "x") != "1234 x" || num(12.34, "x") != "12.3 x" || num(1.234, "x") != "1.23 x" {
		t.Error("number formats")
	}
}
