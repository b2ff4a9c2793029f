package admission

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const chromium = "/usr/bin/chromium"

// runChromium runs headless Chromium on url with extra flags and returns
// its standard output.
func runChromium(t *testing.T, url string, flags ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=5000",
	}, flags...)
	out, err := exec.CommandContext(ctx, chromium, append(args, url)...).Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", flags, err)
	}
	return out
}

// TestWaitingRoomPageInChromium serves the waiting-room page with a line of
// 1,234 people ahead and checks, in headless Chromium, that the page joins
// and shows the position; it also takes a screenshot
// (YEYAK_ADMISSION_SCREENSHOT=path keeps a copy, e.g. docs/admission-page.png).
func TestWaitingRoomPageInChromium(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("%s not found (apt-get install -y chromium): skipping the page check", chromium)
	}
	if testing.Short() {
		t.Skip("-short: skipping headless Chromium")
	}
	c, clk, _ := newTestController(t, func(cfg *Config) {
		cfg.Floor, cfg.Ceiling, cfg.Initial = 5, 5, 5
		cfg.Logger = discardLogger()
		// The page's requests carry no token here: every visitor is one person.
		cfg.PersonFunc = func(r *http.Request) (string, bool) {
			if p := r.Header.Get("X-Person"); p != "" {
				return p, true
			}
			return "browser-visitor", true
		}
	})
	for i := range 1234 {
		join(t, c, fmt.Sprint("ahead-", i))
	}
	srv := httptest.NewServer(c.Handler()) // listens on 127.0.0.1
	defer srv.Close()

	dom := runChromium(t, srv.URL+PagePath, "--dump-dom")
	pos := regexp.MustCompile(`id="position">([^<]*)<`).FindSubmatch(dom)
	if pos == nil || string(pos[1]) != "1,235" {
		t.Fatalf("page position = %q, want 1,235; DOM:\n%s", pos, dom)
	}
	if !regexp.MustCompile(`Estimated wait: about 4 minutes`).Match(dom) {
		t.Errorf("page does not show the estimated wait (1235 people at 5/s); DOM:\n%s", dom)
	}
	if p, _ := c.store.Place(context.Background(), personKey(c.cfg.PersonSalt, "browser-visitor")); p.State != StateWaiting || p.Ahead != 1234 {
		t.Errorf("the page's join: %+v", p)
	}

	shot := filepath.Join(t.TempDir(), "admission-page.png")
	runChromium(t, srv.URL+PagePath, "--screenshot="+shot, "--window-size=800,600", "--hide-scrollbars")
	b, err := os.ReadFile(shot)
	if err != nil || len(b) < 1000 || string(b[1:4]) != "PNG" {
		t.Fatalf("screenshot: %d bytes, %v", len(b), err)
	}
	if out := os.Getenv("YEYAK_ADMISSION_SCREENSHOT"); out != "" {
		if err := os.WriteFile(out, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot written to %s", out)
	}

	// Ten minutes later everyone ahead has been admitted: the page (a
	// reconnect, with no ticket stored) shows the visitor admitted.
	clk.Add(10 * time.Minute)
	dom = runChromium(t, srv.URL+PagePath, "--dump-dom")
	if !regexp.MustCompile(`id="position">admitted<`).Match(dom) || !regexp.MustCompile(`Your pass is saved in this tab`).Match(dom) {
		t.Fatalf("admitted visitor: DOM:\n%s", dom)
	}
}

// TestWaitingRoomPageMovesOn: a visitor who opened the page while 50
// people were ahead is taken to ?next= by the page itself once admitted,
// polling as told by Retry-After; each poll here advances the server's
// clock by ten seconds (virtual time in Chromium makes the waits instant).
// An absolute or protocol-relative next is never followed.
func TestWaitingRoomPageMovesOn(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("%s not found (apt-get install -y chromium): skipping the page check", chromium)
	}
	if testing.Short() {
		t.Skip("-short: skipping headless Chromium")
	}
	c, clk, _ := newTestController(t, func(cfg *Config) {
		cfg.Floor, cfg.Ceiling, cfg.Initial = 1, 1, 1
		cfg.Logger = discardLogger()
		cfg.PersonFunc = func(*http.Request) (string, bool) { return "browser-visitor", true }
	})
	q := c.Handler()
	mux := http.NewServeMux()
	var polls atomic.Int64
	arrived := make(chan string, 4)
	mux.HandleFunc("GET /v1/queue/{ticket}", func(w http.ResponseWriter, r *http.Request) {
		polls.Add(1)
		clk.Add(10 * time.Second)
		q.ServeHTTP(w, r)
	})
	mux.Handle("/", q)
	mux.HandleFunc("GET /booked", func(w http.ResponseWriter, r *http.Request) {
		arrived <- r.URL.Path
		fmt.Fprint(w, "<!doctype html><p>booking page</p>")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// visit opens the page in Chromium and returns once the page reached
	// /booked (true) or Chromium finished its virtual time and dumped the
	// page (false, with the DOM); it fails the test after a minute.
	visit := func(next string) (bool, string) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out strings.Builder
		cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir="+t.TempDir(), "--virtual-time-budget=3600000", "--dump-dom",
			srv.URL+PagePath+"?next="+next)
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-arrived:
			cancel()
			<-exited
			return true, ""
		case <-exited:
			return false, out.String()
		case <-time.After(60 * time.Second):
			cancel()
			<-exited
			t.Fatalf("Chromium neither moved on nor finished in 60 s (%d polls)", polls.Load())
			return false, ""
		}
	}
	for i := range 50 {
		join(t, c, fmt.Sprint("ahead-", i))
	}
	if ok, dom := visit("/booked"); !ok {
		t.Fatalf("the page did not move on to ?next= (%d polls); DOM:\n%s", polls.Load(), dom)
	}
	if n := polls.Load(); n < 3 {
		t.Fatalf("moved on after %d polls: the visitor should have waited for 50 people at 1/s", n)
	}
	// The visitor is admitted at once now (nobody ahead) but a
	// protocol-relative next must not be followed.
	ok, dom := visit("//" + strings.TrimPrefix(srv.URL, "http://") + "/booked")
	if ok {
		t.Fatal("the page followed a protocol-relative ?next=")
	}
	if !regexp.MustCompile(`id="position">admitted<`).MatchString(dom) {
		t.Fatalf("the visitor is not shown admitted; DOM:\n%s", dom)
	}
}
