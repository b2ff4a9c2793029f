package httpapi_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/httpapi"
	"github.com/yeyak/yeyak/booking/httpapi/auth"
	"github.com/yeyak/yeyak/booking/sqlstore"
	"github.com/yeyak/yeyak/mocks/idp"
	"github.com/yeyak/yeyak/mocks/testenv"
)

// anyoneDigit9 knows every person, all born on a day ending in 9.
type anyoneDigit9 struct{}

func (anyoneDigit9) Person(_ context.Context, id string) (booking.Person, error) {
	return booking.Person{ID: id, BirthDate: booking.MustDate("1980-01-09")}, nil
}

// TestWrk measures the API with wrk on PostgreSQL at 64 connections:
// GET /v1/clinics, POST /v1/bookings (distinct people, quota spread over
// 300 rows), and a bare net/http hello-world on the same machine. It is a
// measurement, not a check: it runs only with YEYAK_WRK=1 and wrk installed.
//
//	YEYAK_WRK=1 go test -run TestWrk -v ./booking/httpapi/
func TestWrk(t *testing.T) {
	if os.Getenv("YEYAK_WRK") != "1" {
		t.Skip("set YEYAK_WRK=1 to run the wrk measurement")
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Skip("wrk not installed")
	}
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, testenv.Postgres(t), sqlstore.Options{OutboxNotify: sqlstore.NotifyAfterCommit}) // as yeyakd runs
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := testCampaign()
	if err := db.PutCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	var clinics []booking.Clinic
	var quotas []booking.Quota
	for i := range 50 {
		cl := booking.Clinic{ID: fmt.Sprintf("W%05d", i), Name: "Clinic", Region: "11-110", Products: []string{"pfizer"}}
		clinics = append(clinics, cl)
		for d := range 6 {
			quotas = append(quotas, booking.SplitSupply(c, booking.Supply{ClinicID: cl.ID, Date: vday.AddDays(d), Product: "pfizer", Dose: 1, Doses: 11 * 100_000})...)
			// pfizer is two-dose: dose 2 is reserved with dose 1, 42 days on.
			quotas = append(quotas, booking.SplitSupply(c, booking.Supply{ClinicID: cl.ID, Date: vday.AddDays(d + 42), Product: "pfizer", Dose: 2, Doses: 100_000})...)
		}
	}
	if err := db.PutClinics(ctx, clinics); err != nil {
		t.Fatal(err)
	}
	if err := db.SetQuotas(ctx, quotas); err != nil {
		t.Fatal(err)
	}
	p, err := idp.New(idp.Config{Providers: []idp.ProviderConfig{{Name: "pass"}}})
	if err != nil {
		t.Fatal(err)
	}
	iss, _ := p.Issuer("pass")
	v, err := auth.NewVerifier(auth.Config{Providers: []auth.ProviderConfig{{Name: "pass", Issuer: iss, Audience: "yeyak",
		Keys: func(ctx context.Context) (jwk.Set, error) { return p.PublicSet(ctx, "pass") }}}})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := booking.NewService(booking.ServiceConfig{Store: db, People: anyoneDigit9{}, Now: func() time.Time { return testNow }, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	snap := httpapi.NewSnapshot(db, httpapi.SnapshotConfig{Logger: log})
	if err := snap.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	h, err := httpapi.NewServer(httpapi.Config{Service: svc, Verifier: v, Idempotency: sqlIdempotency{db}, Snapshot: snap, Ready: db,
		Logger: log, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	hello := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("hello")) }))
	defer hello.Close()

	// Tokens of distinct people; a request past the last one would replay.
	const people = 60_000
	dir := t.TempDir()
	var lua strings.Builder
	lua.WriteString("tokens = {\n")
	for i := range people {
		tok, err := p.Issue("pass", fmt.Sprintf("W%07d", i), booking.Date{}, 2*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&lua, "%q,\n", tok)
	}
	fmt.Fprintf(&lua, `}
local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
local n = 0
function request()
  n = n + 1
  local idx = ((n - 1) * 2 + tid) %% #tokens + 1
  local body = string.format('{"campaign_id":"c2026","clinic_id":"W%%05d","date":"%%s","product":"pfizer"}', idx %% 50, ({%s})[idx %% 6 + 1])
  return wrk.format("POST", "/v1/bookings", {["Authorization"] = "Bearer " .. tokens[idx], ["Content-Type"] = "application/json", ["Idempotency-Key"] = "wrk-" .. idx}, body)
end
`, datesLua())
	script := filepath.Join(dir, "book.lua")
	if err := os.WriteFile(script, []byte(lua.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	clinicsLua := filepath.Join(dir, "clinics.lua")
	tok, _ := p.Issue("pass", "W9999999", booking.Date{}, 2*time.Hour)
	if err := os.WriteFile(clinicsLua, []byte(`wrk.headers["Authorization"] = "Bearer `+tok+`"`), 0o600); err != nil {
		t.Fatal(err)
	}

	run := func(name string, args ...string) {
		out, err := exec.Command(wrk, append([]string{"-t2", "-c64", "-d10s", "--latency"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("wrk %s: %v\n%s", name, err, out)
		}
		t.Logf("=== %s\n%s", name, out)
	}
	run("hello-world (bare net/http)", hello.URL+"/")
	run("GET /v1/clinics (anonymous, 20 clinics)", srv.URL+"/v1/clinics?campaign=c2026&date="+vday.String())
	run("GET /v1/clinics (with token)", "-s", clinicsLua, srv.URL+"/v1/clinics?campaign=c2026&date="+vday.String())
	before := countBookings(t, db)
	run("POST /v1/bookings (distinct people)", "-s", script, srv.URL+"/v1/bookings")
	written := countBookings(t, db) - before
	t.Logf("bookings written: %d (dose 1 and its dose 2; of %d distinct people available)", written, people)
	if written == 0 {
		t.Fatal("no booking was written: the POST figure measured refusals")
	}
}

func datesLua() string {
	var s []string
	for d := range 6 {
		s = append(s, fmt.Sprintf("%q", vday.AddDays(d).String()))
	}
	return strings.Join(s, ",")
}

func countBookings(t *testing.T, db *sqlstore.DB) int {
	var n int
	if err := db.DB().Get(&n, "SELECT COUNT(*) FROM bookings"); err != nil {
		t.Fatal(err)
	}
	return n
}
