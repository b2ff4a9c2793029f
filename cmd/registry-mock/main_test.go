package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to write and read from two goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunServesAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	db := filepath.Join(t.TempDir(), "legacy.db")
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--people", "500", "--seed", "3",
			"--faults", `{"latency":"1ms"}`, "--sql", "sqlite:" + db}, &out, &errOut)
	}()
	urlRe := regexp.MustCompile(`gateway\s+(http://\S+)/api/v1\s+e\.g\. GET (\S+)\ncontrol\s+(http://\S+)/mock/faults`)
	var m []string
	deadline := time.Now().Add(10 * time.Second)
	for m = urlRe.FindStringSubmatch(out.String()); m == nil; m = urlRe.FindStringSubmatch(out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no URLs printed; stdout %q stderr %q", out.String(), errOut.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "legacy schema seeded with") {
		t.Fatalf("no seeding line: %q", out.String())
	}
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(m[1] + "/api/v1/ping"); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("ping: %d %s", code, body)
	}
	if code, body := get(m[2]); code != 200 || !strings.Contains(body, `"brthDt"`) {
		t.Fatalf("example person: %d %s", code, body)
	}
	if code, body := get(m[3] + "/mock/faults"); code != 200 || !strings.Contains(body, `"latency":"1ms"`) {
		t.Fatalf("faults: %d %s", code, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--faults", `{"errorRate":`},
		{"--sql", "nodsn"},
		{"--nope"},
	} {
		if err := run(context.Background(), append(args, "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--people", "10"), io.Discard, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
