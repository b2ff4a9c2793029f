package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/yeyak/yeyak/cmd/yeyak-chaos/harness"
	"github.com/yeyak/yeyak/cmd/yeyak-load/load"
)

func TestFlags(t *testing.T) {
	cfg, summary, err := parse([]string{"--target", "http://127.0.0.1:1", "--people", "500", "--seed", "7", "--shape", "spike",
		"--people-count", "100", "--other-share", "0", "--today", "2026-01-02", "--summary", "out.json", "--quiet"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Population.People != 500 || cfg.Population.Seed != 7 || cfg.Shape != load.ShapeSpike || cfg.Count != 100 ||
		cfg.OtherDigitShare >= 0 || cfg.Today.String() != "2026-01-02" || summary != "out.json" || cfg.Progress != nil {
		t.Errorf("parsed %+v, summary %q", cfg, summary)
	}
	var help bytes.Buffer
	if _, _, err := parse([]string{"-h"}, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, f := range []string{"-target", "-shape", "-rate", "-decay", "-concurrency", "-people-count", "-duration", "-summary", "-cancel-share"} {
		if !strings.Contains(help.String(), f) {
			t.Errorf("-h does not document %s", f)
		}
	}
	for _, bad := range [][]string{{"--people", "0"}, {"--today", "tomorrow"}, {"extra"}} {
		if _, _, err := parse(bad, &bytes.Buffer{}); err == nil {
			t.Errorf("parse(%q) succeeded", bad)
		}
	}
}

// TestCrowdAgainstYeyakd builds the real yeyakd, runs it with --demo on a
// temporary SQLite database, sends a small launch spike through the
// command, and checks the database afterwards: every acknowledged booking
// is there as acknowledged, nobody holds two, no quota is oversold, and
// no booking exists that the crowd was not told about.
func TestCrowdAgainstYeyakd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs yeyakd")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin, err := harness.BuildYeyakd(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, "demo.db")
	// Noon in Seoul: at the wall clock's 23:30–24:00 (Seoul) the crowd
	// would wait for midnight's draw instead of being admitted.
	clock := harness.NoonClock()
	y, err := harness.StartYeyakd(ctx, harness.YeyakdConfig{Bin: bin, Dir: dir, Clock: clock,
		Args: []string{"--demo", "--demo-people", "5000", "--demo-clinics", "20", "--db", "sqlite:" + dbPath}})
	if err != nil {
		t.Fatal(err)
	}
	defer y.Kill()

	summaryPath := filepath.Join(dir, "summary.json")
	var stdout, stderr bytes.Buffer
	err = run(ctx, []string{"--target", y.URL(), "--people", "5000", "--shape", "spike", "--people-count", "200", "--decay", "1s",
		"--cancel-share", "0.1", "--reschedule-share", "0.1", "--record", "--summary", summaryPath, "--today", clock.Today().String()}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	raw, err := os.ReadFile(summaryPath)
	if err != nil {
		t.Fatal(err)
	}
	var s load.Summary
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", stdout.String())
	if s.People.Started != 200 || s.People.Finished != 200 {
		t.Errorf("people %+v, want 200 started and finished", s.People)
	}
	if len(s.Errors) != 0 {
		t.Errorf("unexpected errors: %v", s.Errors)
	}
	if s.Booked < 100 || int64(len(s.Bookings)) != s.Booked {
		t.Errorf("booked %d, %d records: want most of 200 people booked", s.Booked, len(s.Bookings))
	}
	if s.Outcomes["refused:not_your_rotation_day"] == 0 || s.Outcomes["cancelled"] == 0 || s.Outcomes["rescheduled"] == 0 {
		t.Errorf("outcomes %v: want other-digit refusals, cancels and reschedules", s.Outcomes)
	}
	if st := s.Steps[load.StepBook]; st.Calls == 0 || st.P99Ms <= 0 || st.P50Ms > st.P99Ms {
		t.Errorf("book latencies %+v", st)
	}
	if !strings.Contains(stderr.String(), "booked ") {
		t.Errorf("no progress line on stderr: %q", stderr.String())
	}
	if err := y.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := harness.Check(ctx, db, nil, s.Bookings)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range res.Violations {
		t.Error(v)
	}
	// People book dose 1 (a dose 2 may be reserved with it).
	var total int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM bookings WHERE dose = 1").Scan(&total); err != nil {
		t.Fatal(err)
	}
	if total != s.Booked {
		t.Errorf("the database holds %d first-dose bookings, the crowd was told of %d", total, s.Booked)
	}
}
