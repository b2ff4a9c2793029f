package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yeyak/yeyak/cmd/yeyak-chaos/harness"
	"github.com/yeyak/yeyak/mocks/testenv"
)

// TestChaosShort runs the six fault scenarios and the surge in short mode
// (seconds each, a small world): what `make chaos` runs in full. It needs the PostgreSQL
// server binaries; without them it is skipped, unless
// YEYAK_REQUIRE_SERVICES=1.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real systems for about two minutes")
	}
	if _, err := harness.PostgresBin(); err != nil {
		testenv.Unavailable(t, "PostgreSQL server binaries (initdb, pg_ctl)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out, errs bytes.Buffer
	failed, err := run(ctx, []string{"--short"}, &out, &errs)
	t.Logf("yeyak-chaos --short:\n%s", out.String())
	if err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	if failed > 0 {
		t.Errorf("%d scenarios failed", failed)
	}
	lines := strings.Count(out.String(), "\nPASS ") + strings.Count(out.String(), "\nFAIL ")
	if strings.HasPrefix(out.String(), "PASS ") || strings.HasPrefix(out.String(), "FAIL ") {
		lines++
	}
	if lines != 7 {
		t.Errorf("%d verdict lines, want one per scenario (7)", lines)
	}
}

func TestFlags(t *testing.T) {
	o, err := parse([]string{"--short", "--run", "kafka", "--keep"}, &bytes.Buffer{})
	if err != nil || o.mode.Name != "short" || !o.filter.MatchString("kafka-down") || o.filter.MatchString("yeyakd-kill") || !o.keep {
		t.Errorf("parse: %+v %v", o, err)
	}
	if o, _ := parse(nil, &bytes.Buffer{}); o.mode.Name != "full" {
		t.Errorf("default mode %s", o.mode.Name)
	}
	if _, err := parse([]string{"--run", "("}, &bytes.Buffer{}); err == nil {
		t.Error("a bad --run was accepted")
	}
	var help bytes.Buffer
	if _, err := parse([]string{"-h"}, &help); !errors.Is(err, flag.ErrHelp) || !strings.Contains(help.String(), "-short") {
		t.Errorf("-h: %v\n%s", err, help.String())
	}
}

func TestWriteReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	legacy := "# yeyak benchmarks\n\nfigures\n\n" + harness.ChaosBegin + "\n## Chaos verdicts\n\nPASS old-line\n" + harness.ChaosEnd + "\n"
	if err := os.WriteFile(path, []byte(legacy), 0o644); err != nil {
		t.Fatal(err)
	}
	read := func() string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	// A surge-only run keeps what the section held (written before the
	// parts had markers) and adds the surge's table.
	sv := &verdict{name: "surge", booked: 7}
	sv.row("people", "%d", 2000)
	if err := writeReport(path, shortMode, []*verdict{sv}, at); err != nil {
		t.Fatal(err)
	}
	doc := read()
	if !strings.Contains(doc, "PASS old-line") || !strings.Contains(doc, "| people | 2000 |") || !strings.Contains(doc, "PASS surge") {
		t.Fatalf("surge-only report:\n%s", doc)
	}
	pass := &verdict{name: "kafka-down", booked: 3}
	fail := &verdict{name: "yeyakd-kill"}
	fail.fail("acknowledged booking lost: b1")
	if err := writeReport(path, shortMode, []*verdict{pass, fail}, at); err != nil {
		t.Fatal(err)
	}
	if err := writeReport(path, shortMode, []*verdict{pass}, at); err != nil { // replaces, never appends twice
		t.Fatal(err)
	}
	doc = read()
	if !strings.HasPrefix(doc, "# yeyak benchmarks\n\nfigures\n") || strings.Count(doc, "## Chaos verdicts") != 1 ||
		!strings.Contains(doc, "PASS kafka-down") || strings.Contains(doc, "yeyakd-kill") || strings.Contains(doc, "old-line") {
		t.Errorf("fault scenarios replaced:\n%s", doc)
	}
	if strings.Count(doc, "## Surge") != 1 || !strings.Contains(doc, "| people | 2000 |") {
		t.Errorf("the surge part was not kept:\n%s", doc)
	}
	if harness.Section(doc, harness.ChaosBegin, harness.ChaosEnd) == "" {
		t.Errorf("no chaos section (yeyak-bench keeps it by its markers):\n%s", doc)
	}
}

// TestVerdictLine: one line per scenario, PASS or FAIL, name, figures; the
// broken invariants under a FAIL.
func TestVerdictLine(t *testing.T) {
	v := &verdict{name: "kafka-down", booked: 12, took: 3 * time.Second}
	v.figure("Kafka broker stopped for 4s")
	if got := v.line(); !strings.HasPrefix(got, "PASS kafka-down — Kafka broker stopped for 4s, 12 booked") || strings.Contains(got, "\n") {
		t.Errorf("pass line %q", got)
	}
	v.fail("oversold: C1 …")
	if got := v.line(); !strings.HasPrefix(got, "FAIL kafka-down — ") || !strings.Contains(got, "\n    oversold: C1 …") {
		t.Errorf("fail line %q", got)
	}
}
