package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/yeyak/yeyak/mocks/testenv"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigFlagsAndEnv(t *testing.T) {
	var out bytes.Buffer
	cfg, fs, err := parseConfig([]string{"--listen", ":9999", "--demo"}, env(map[string]string{
		"YEYAK_LISTEN": ":1111", "YEYAK_OPS_TOKEN": "s3cret", "YEYAK_ROLE": "all",
		"YEYAK_ISSUER": "name=a,iss=https://a,aud=yeyak,jwks=https://a/jwks; name=b,iss=https://b,aud=yeyak,jwks=https://b/jwks",
	}), &out)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":9999" {
		t.Errorf("flag must win over env: listen = %q", cfg.Listen)
	}
	if cfg.OpsToken != "s3cret" || len(cfg.Issuers) != 2 || cfg.DB != "sqlite:yeyak-demo.db" {
		t.Errorf("env not applied / demo default db: %+v", cfg)
	}
	var printed bytes.Buffer
	cfg.print(&printed, fs)
	if strings.Contains(printed.String(), "s3cret") || !strings.Contains(printed.String(), "ops-token") {
		t.Errorf("secret not masked:\n%s", printed.String())
	}
	if got := maskDSN("postgres://u:pw@db:5432/yeyak"); strings.Contains(got, "pw") {
		t.Errorf("maskDSN kept the password: %s", got)
	}
}

// TestAdmissionLawFromFlags: the law's flags reach the law (they were
// once parsed and checked but never passed on).
func TestAdmissionLawFromFlags(t *testing.T) {
	cfg, _, err := parseConfig([]string{"--demo", "--admission-target-p90", "100ms", "--admission-target-p99", "500ms",
		"--admission-max-sched", "15ms"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	l := admissionLaw(cfg)
	if l.TargetP90 != 100*time.Millisecond || l.TargetP99 != 500*time.Millisecond || l.MaxSchedLatency != 15*time.Millisecond {
		t.Fatalf("law %+v, want the flags' targets 100ms/500ms and scheduling latency 15ms", l)
	}
}

func TestConfigRefusals(t *testing.T) {
	for _, args := range [][]string{
		{"--now", "2021-08-09T20:00:00+09:00", "--issuer", "name=a,iss=i,aud=a,jwks=https://x"},
		{"--demo", "--now", "yesterday"},
		{"--demo", "--role", "web"},
		{"--demo", "--role", "api"}, // embedded kafka needs role all
		{},                          // no issuer outside demo
		{"--issuer", "name=a,iss=https://a,aud=a,jwks=https://a/j"},         // no kafka outside demo
		{"--demo", "--admission-keys", "k1:short"},                          // secret under 16 bytes
		{"--demo", "--admission-keys", "nocolon"},                           // malformed keys
		{"--demo", "--admission-floor", "100", "--admission-ceiling", "10"}, // floor above ceiling
		{"--demo", "--admission-target-p90", "2s"},                          // p90 target above the p99 one
		{"--demo", "--admission-target-p90", "0s"},                          // no target
		{"--demo", "--admission-max-sched", "0s"},                           // no scheduling bound
		{"--demo", "--redis", "http://127.0.0.1:6379"},                      // not a redis URL
		{"--demo", "--demo-registry-policy", "maybe"},                       // no such policy
		{"--demo", "--idempotency-max-age", "1m"},                           // keys must outlive retries
		{"--demo", "extra"},
	} {
		if _, _, err := parseConfig(args, env(nil), io.Discard); err == nil {
			t.Errorf("parseConfig(%q) succeeded", args)
		}
	}
}

func TestHelpDocumentsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	_, _, err := parseConfig([]string{"-h"}, env(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	newFlagSet(&config{}, io.Discard).VisitAll(func(f *flag.Flag) {
		if !strings.Contains(out.String(), "--"+f.Name) || !strings.Contains(out.String(), envName(f.Name)) {
			t.Errorf("-h does not document --%s / %s", f.Name, envName(f.Name))
		}
	})
}

// TestDemoBinaryEndToEnd builds the real yeyakd, starts it with --demo on
// free ports, books through HTTP and stops it with SIGTERM.
func TestDemoBinaryEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "yeyakd")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	port, opsPort := testenv.FreePort(t), testenv.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := exec.Command(bin, "--demo", "--demo-people", "3000", "--demo-clinics", "20",
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--ops-listen", fmt.Sprintf("127.0.0.1:%d", opsPort),
		"--db", "sqlite:"+filepath.Join(dir, "demo.db"), "--warm-lead", "48h")
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("yeyakd exited before ready: %v\nstderr:\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("yeyakd not ready after 60s\nstderr:\n%s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	getJSON := func(method, path, tok, body string, hdr map[string]string, want int, v any) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	var ppl struct {
		People []struct {
			PersonID   string `json:"person_id"`
			MayBookNow bool   `json:"may_book_now"`
		} `json:"people"`
	}
	getJSON("GET", "/demo/people?limit=20", "", "", nil, 200, &ppl)
	person := "" // the last who may book: the printed tour uses the first
	for _, p := range ppl.People {
		if p.MayBookNow {
			person = p.PersonID
		}
	}
	if person == "" {
		t.Fatalf("nobody may book now: %+v", ppl)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	getJSON("POST", "/demo/token", "", `{"person_id":"`+person+`"}`, nil, 200, &tok)
	var cl struct {
		Clinics []struct {
			ID           string `json:"id"`
			Availability []struct {
				Date      string `json:"date"`
				Product   string `json:"product"`
				Remaining int    `json:"remaining"`
			} `json:"availability"`
		} `json:"clinics"`
	}
	getJSON("GET", "/v1/clinics?campaign=demo&limit=5", tok.AccessToken, "", nil, 200, &cl)
	body := ""
	for _, c := range cl.Clinics {
		for _, a := range c.Availability {
			if a.Remaining > 0 && body == "" {
				body = fmt.Sprintf(`{"campaign_id":"demo","clinic_id":"%s","date":"%s","product":"%s"}`, c.ID, a.Date, a.Product)
			}
		}
	}
	if body == "" {
		t.Fatalf("no availability: %+v", cl)
	}
	var bk struct {
		Booking struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"booking"`
	}
	getJSON("POST", "/v1/bookings", tok.AccessToken, body, map[string]string{"Idempotency-Key": "e2e-1"}, 201, &bk)
	if bk.Booking.Status != "confirmed" {
		t.Fatalf("booking: %+v", bk)
	}
	getJSON("GET", "/v1/bookings/"+bk.Booking.ID, tok.AccessToken, "", nil, 200, &bk)

	// The printed tour works when pasted into a shell, and again when
	// pasted a second time (fresh Idempotency-Key each time).
	_, tour, ok := strings.Cut(stdout.String(), "Paste these lines into a shell:\n")
	if !ok || !strings.Contains(tour, "/demo/token") {
		t.Fatalf("no tour printed:\n%s", stdout.String())
	}
	for paste := 1; paste <= 2; paste++ {
		sh := exec.Command("bash", "-c", tour)
		out, err := sh.CombinedOutput()
		if err != nil {
			t.Fatalf("tour paste %d: %v\n%s", paste, err, out)
		}
		for _, want := range []string{`"eligible":true`, `"status":"confirmed"`, "HTTP/1.1 201", "Idempotent-Replayed: true", `"status":"cancelled"`, "openapi: 3.1.0"} {
			if !strings.Contains(string(out), want) {
				t.Fatalf("tour paste %d: output lacks %q:\n%s", paste, want, out)
			}
		}
		if strings.Contains(string(out), `"error"`) {
			t.Fatalf("tour paste %d answered an error:\n%s", paste, out)
		}
	}
	// Every booking reached the (mock) registry through outbox, relay and
	// sync consumer: nothing pending, applied events counted.
	deadline = time.Now().Add(30 * time.Second)
	for {
		var ob struct {
			Pending   int `json:"pending"`
			Consumers []struct {
				Applied int `json:"applied"`
			} `json:"consumers"`
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ops/outbox", opsPort))
		if err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&ob)
			resp.Body.Close()
		}
		// 1 booking above + (book, cancel) per paste = 5 events.
		if ob.Pending == 0 && len(ob.Consumers) == 1 && ob.Consumers[0].Applied >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events not applied to the registry in 30s: %+v", ob)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The pre-warmer loaded the next rotation day's digit group (it opens
	// within --warm-lead 48h).
	deadline = time.Now().Add(30 * time.Second)
	for {
		var ws struct {
			State  string `json:"state"`
			Loaded int    `json:"loaded"`
		}
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ops/warmer", opsPort)); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&ws)
			resp.Body.Close()
		}
		if ws.State == "done" && ws.Loaded > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pre-warmer did not load the next digit group in 30s: %+v", ws)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Privacy: no raw person id in any log line of the whole run (API,
	// cache, registry, relay, consumer) nor in a metric label.
	metrics, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", opsPort))
	if err != nil {
		t.Fatal(err)
	}
	mbody, _ := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	ids := regexp.MustCompile(`P[0-9]{10}`).FindAllString(tour, -1)
	ids = append(ids, person)
	if len(ids) < 2 {
		t.Fatalf("no person ids found in the tour:\n%s", tour)
	}
	for _, id := range ids {
		if strings.Contains(string(mbody), id) {
			t.Errorf("the metrics contain the raw person id %s", id)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("yeyakd exit after SIGTERM: %v\nstderr:\n%s", err, stderr.String())
		}
	case <-ctx.Done():
		t.Fatalf("yeyakd did not stop within 30s of SIGTERM\nstderr:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), `"msg":"stopped"`) {
		t.Errorf("no clean stop logged:\n%s", stderr.String())
	}
	for _, id := range ids { // the process has exited: its logs are complete
		if strings.Contains(stderr.String(), id) {
			t.Errorf("the logs contain the raw person id %s", id)
		}
	}
	_ = os.Remove(bin)
}

// TestREADMEDocumentsEveryFlag: the README's configuration table names
// every flag, so it cannot fall behind yeyakd -h.
func TestREADMEDocumentsEveryFlag(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	newFlagSet(&config{}, io.Discard).VisitAll(func(f *flag.Flag) {
		if !strings.Contains(readme, "`--"+f.Name+"`") {
			t.Errorf("README.md's configuration table does not name --%s", f.Name)
		}
	})
}
