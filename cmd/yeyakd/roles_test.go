package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/yeyak/yeyak/mocks/testenv"
	"github.com/yeyak/yeyak/outbox"
)

// proc is one yeyakd process of a test.
type proc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

// startYeyakd runs bin with args until the test ends (SIGTERM, then kill).
func startYeyakd(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, &syncWriter{w: p.stderr}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// TestSplitRoles runs the API, the outbox relay and the registry sync
// consumer as three yeyakd processes (--role api|relay|sync) on one
// PostgreSQL database and one Kafka-protocol broker: a booking made on the
// API process is published by the relay process and applied by the sync
// process.
func TestSplitRoles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dsn := testenv.Postgres(t)
	brokers, stopKafka, err := outbox.StartEmbeddedKafka(context.Background(), []string{outbox.DefaultTopic, outbox.DefaultTopic + outbox.DeadLetterSuffix}, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopKafka)
	dir := t.TempDir()
	bin := filepath.Join(dir, "yeyakd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "migrate", "--db", dsn).CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	common := []string{"--demo", "--demo-people", "3000", "--demo-clinics", "20", "--db", dsn, "--kafka", strings.Join(brokers, ","),
		"--admission=false", "--log-level", "warn"}
	ops := map[string]int{}
	procs := map[string]*proc{}
	apiPort := testenv.FreePort(t)
	for _, role := range []string{"api", "relay", "sync"} {
		ops[role] = testenv.FreePort(t)
		args := append([]string{"--role", role, "--ops-listen", fmt.Sprintf("127.0.0.1:%d", ops[role]),
			"--listen", fmt.Sprintf("127.0.0.1:%d", apiPort)}, common...)
		procs[role] = startYeyakd(t, bin, args...)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	get := func(url string, v any) bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(v) == nil
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			for role, p := range procs {
				select {
				case err := <-p.done:
					t.Fatalf("yeyakd --role %s exited: %v\n%s", role, err, p.stderr)
				default:
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 60s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	var ready map[string]any
	waitFor("API ready", func() bool { return get(base+"/readyz", &ready) })

	// Book through the API process.
	var ppl struct {
		People []struct {
			PersonID   string `json:"person_id"`
			MayBookNow bool   `json:"may_book_now"`
		} `json:"people"`
	}
	if !get(base+"/demo/people?limit=20", &ppl) {
		t.Fatal("demo people")
	}
	person := ""
	for _, p := range ppl.People {
		if p.MayBookNow {
			person = p.PersonID
			break
		}
	}
	resp, err := http.Post(base+"/demo/token", "application/json", strings.NewReader(`{"person_id":"`+person+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	var cl struct {
		Clinics []struct {
			ID           string `json:"id"`
			Availability []struct {
				Date, Product string
				Remaining     int
			} `json:"availability"`
		} `json:"clinics"`
	}
	req, _ := http.NewRequest("GET", base+"/v1/clinics?campaign=demo&limit=5", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&cl)
	resp.Body.Close()
	body := ""
	for _, c := range cl.Clinics {
		for _, a := range c.Availability {
			if a.Remaining > 0 && body == "" {
				body = fmt.Sprintf(`{"campaign_id":"demo","clinic_id":"%s","date":"%s","product":"%s"}`, c.ID, a.Date, a.Product)
			}
		}
	}
	req, _ = http.NewRequest("POST", base+"/v1/bookings", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "split-1")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("book: %d %s", resp.StatusCode, b)
	}

	// The relay process publishes (dose 1 and its dose 2), the sync
	// process applies both events to its registry.
	type outboxView struct {
		Pending int `json:"pending"`
		Relay   *struct {
			Published int `json:"published_total"`
		} `json:"relay"`
		Consumers []struct {
			Applied int `json:"applied"`
		} `json:"consumers"`
	}
	waitFor("the relay process publishes", func() bool {
		var o outboxView
		return get(fmt.Sprintf("http://127.0.0.1:%d/ops/outbox", ops["relay"]), &o) && o.Relay != nil && o.Relay.Published >= 2 && o.Pending == 0
	})
	waitFor("the sync process applies", func() bool {
		var o outboxView
		return get(fmt.Sprintf("http://127.0.0.1:%d/ops/outbox", ops["sync"]), &o) && len(o.Consumers) == 1 && o.Consumers[0].Applied >= 2
	})
	var api outboxView
	if !get(fmt.Sprintf("http://127.0.0.1:%d/ops/outbox", ops["api"]), &api) || api.Relay != nil || len(api.Consumers) != 0 {
		t.Fatalf("the API process runs a relay or a consumer: %+v", api)
	}
}
