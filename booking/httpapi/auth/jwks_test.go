package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/httpapi/auth"
	"github.com/yeyak/yeyak/mocks/idp"
)

// jwksServer serves the mock provider's JWKS and can fail or hang on demand.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int32
	mode    atomic.Int32 // serve, fail (503) or hang until unhang
	release chan struct{}
	once    sync.Once
}

// unhang lets hanging requests answer (503).
func (js *jwksServer) unhang() { js.once.Do(func() { close(js.release) }) }

const (
	serve = iota
	fail
	hang
)

func newJWKSServer(t *testing.T, p *idp.IdP) *jwksServer {
	t.Helper()
	js := &jwksServer{release: make(chan struct{})}
	h := p.Handler()
	js.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		js.fetches.Add(1)
		switch js.mode.Load() {
		case fail:
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		case hang:
			select {
			case <-js.release:
			case <-r.Context().Done():
			}
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		js.unhang()
		js.Close()
	})
	return js
}

func jwksVerifier(t *testing.T, p *idp.IdP, js *jwksServer, clk *clock, cfg auth.Config, pc auth.ProviderConfig) *auth.Verifier {
	t.Helper()
	iss, _ := p.Issuer("pass")
	pc.Name, pc.Issuer, pc.Audience, pc.JWKSURL = "pass", iss, "yeyak", js.URL+"/idp/pass/jwks.json"
	cfg.Providers = []auth.ProviderConfig{pc}
	cfg.Now = clk.Now
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

// TestJWKSDeadEndpointNeitherStallsNorAmplifies: with no keys yet and the
// JWKS endpoint hanging, a burst of requests causes one fetch, each request
// gives up after FetchWait, and later requests fail at once during the
// backoff instead of fetching again.
func TestJWKSDeadEndpointNeitherStallsNorAmplifies(t *testing.T) {
	p := newIdP(t)
	js := newJWKSServer(t, p)
	js.mode.Store(hang)
	clk := newClock(t0)
	v := jwksVerifier(t, p, js, clk, auth.Config{FetchWait: 50 * time.Millisecond, FetchTimeout: time.Hour}, auth.ProviderConfig{})
	tok, _ := p.Issue("pass", "P1", booking.Date{}, time.Hour)

	var wg sync.WaitGroup
	errs := make(chan error, 50)
	start := time.Now()
	for range 50 {
		wg.Go(func() {
			_, err := v.Verify(context.Background(), tok)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("burst took %v with a hanging JWKS endpoint; requests must give up after FetchWait", took)
	}
	for err := range errs {
		if !errors.Is(err, auth.ErrKeysUnavailable) || !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("Verify error = %v, want ErrKeysUnavailable and ErrInvalidToken", err)
		}
	}
	eventually(t, "the fetch reached the endpoint", func() bool { return js.fetches.Load() >= 1 })
	if n := js.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for a burst of 50 requests, want 1 (singleflight)", n)
	}

	// The hung fetch ends (the endpoint answers 503): a backoff starts.
	js.mode.Store(fail)
	js.unhang()
	eventually(t, "backoff after the failed fetch", func() bool {
		_, err := v.Verify(context.Background(), tok)
		return errors.Is(err, auth.ErrKeysUnavailable) && js.fetches.Load() == 1
	})
	for range 100 {
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, auth.ErrKeysUnavailable) {
			t.Fatalf("Verify during backoff = %v", err)
		}
	}
	if n := js.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches during the backoff, want none after the first", n)
	}

	// Once the backoff is over and the endpoint is back, keys arrive.
	js.mode.Store(serve)
	clk.Add(2 * time.Second)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("Verify after recovery: %v", err)
	}
	if n := js.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
}

// TestJWKSBackoffDoubles: consecutive failures double the pause between
// fetches up to MaxRetryBackoff; a success resets it.
func TestJWKSBackoffDoubles(t *testing.T) {
	p := newIdP(t)
	js := newJWKSServer(t, p)
	js.mode.Store(fail)
	clk := newClock(t0)
	// FetchWait is long: each Verify sees its own fetch end (a 503 is quick).
	v := jwksVerifier(t, p, js, clk, auth.Config{FetchWait: time.Hour}, auth.ProviderConfig{RetryBackoff: time.Second, MaxRetryBackoff: 4 * time.Second})
	tok, _ := p.Issue("pass", "P1", booking.Date{}, time.Hour)
	verify := func() error { _, err := v.Verify(context.Background(), tok); return err }

	steps := []struct {
		advance time.Duration
		fetches int32
	}{
		{0, 1},                      // first attempt; backoff 1s
		{999 * time.Millisecond, 1}, // still backing off
		{time.Millisecond, 2},       // 1s after: second attempt; backoff 2s
		{time.Second, 2},
		{time.Second, 3}, // third; backoff 4s
		{3 * time.Second, 3},
		{time.Second, 4}, // fourth; backoff capped at 4s
		{3 * time.Second, 4},
		{time.Second, 5},
	}
	for i, st := range steps {
		clk.Add(st.advance)
		if err := verify(); !errors.Is(err, auth.ErrKeysUnavailable) {
			t.Fatalf("step %d: Verify = %v, want ErrKeysUnavailable", i, err)
		}
		if n := js.fetches.Load(); n != st.fetches {
			t.Fatalf("step %d (+%v): fetches = %d, want %d", i, st.advance, n, st.fetches)
		}
	}
	js.mode.Store(serve)
	clk.Add(4 * time.Second)
	if err := verify(); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

// TestJWKSStaleSetRefreshesInBackground: a request whose key is known does
// not wait for a refresh, even when the endpoint hangs.
func TestJWKSStaleSetRefreshesInBackground(t *testing.T) {
	p := newIdP(t)
	js := newJWKSServer(t, p)
	clk := newClock(t0)
	v := jwksVerifier(t, p, js, clk, auth.Config{FetchWait: time.Hour}, auth.ProviderConfig{RefreshInterval: 10 * time.Minute})
	tok, _ := p.Issue("pass", "P1", booking.Date{}, time.Hour)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	js.mode.Store(hang)
	clk.Add(11 * time.Minute)
	done := make(chan error, 1)
	go func() { _, err := v.Verify(context.Background(), tok); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Verify with a stale set: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Verify waited for the background refresh of a stale set (FetchWait is 1h)")
	}
	eventually(t, "background refresh started", func() bool { return js.fetches.Load() == 2 })
}

// TestJWKSRequestContextDoesNotCancelFetch: a caller giving up does not
// fail the fetch for others; the fetch ends with its own deadline.
func TestJWKSRequestContextDoesNotCancelFetch(t *testing.T) {
	p := newIdP(t)
	js := newJWKSServer(t, p)
	clk := newClock(t0)
	v := jwksVerifier(t, p, js, clk, auth.Config{}, auth.ProviderConfig{})
	tok, _ := p.Issue("pass", "P1", booking.Date{}, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := v.Verify(ctx, tok) // starts a fetch, returns at once
	if err == nil {
		// The fetch won the race against the cancelled context: fine too.
		return
	}
	eventually(t, "the detached fetch delivered the keys", func() bool {
		_, err := v.Verify(context.Background(), tok)
		return err == nil
	})
	if n := js.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
}

func TestPrefetchAndClose(t *testing.T) {
	p := newIdP(t)
	js := newJWKSServer(t, p)
	clk := newClock(t0)
	v := jwksVerifier(t, p, js, clk, auth.Config{}, auth.ProviderConfig{})
	if err := v.Prefetch(context.Background()); err != nil {
		t.Fatalf("Prefetch: %v", err)
	}
	if n := js.fetches.Load(); n != 1 {
		t.Fatalf("fetches after Prefetch = %d, want 1", n)
	}
	tok, _ := p.Issue("pass", "P1", booking.Date{}, time.Hour)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	if n := js.fetches.Load(); n != 1 {
		t.Fatalf("Verify fetched again after Prefetch: %d fetches", n)
	}

	// A dead endpoint: Prefetch reports it; Close cuts a hanging fetch short.
	dead := newJWKSServer(t, p)
	dead.mode.Store(hang)
	v2 := jwksVerifier(t, p, dead, clk, auth.Config{FetchTimeout: time.Hour}, auth.ProviderConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := v2.Prefetch(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Prefetch against a hanging endpoint = %v, want deadline exceeded", err)
	}
	closed := make(chan struct{})
	go func() { v2.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not cancel the hanging fetch")
	}
	// After Close nothing is fetched, even past any backoff; verification
	// fails for want of keys.
	clk.Add(time.Hour)
	before := dead.fetches.Load()
	if _, err := v2.Verify(context.Background(), tok); !errors.Is(err, auth.ErrKeysUnavailable) {
		t.Fatalf("Verify after Close = %v, want ErrKeysUnavailable", err)
	}
	if dead.fetches.Load() != before {
		t.Fatal("a fetch started after Close")
	}

	failing := newJWKSServer(t, p)
	failing.mode.Store(fail)
	v3 := jwksVerifier(t, p, failing, clk, auth.Config{}, auth.ProviderConfig{})
	if err := v3.Prefetch(context.Background()); !errors.Is(err, auth.ErrKeysUnavailable) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Prefetch against a failing endpoint = %v, want ErrKeysUnavailable with the cause", err)
	}
}

func TestKeySourceFailureIsKeysUnavailable(t *testing.T) {
	p := newIdP(t)
	iss, _ := p.Issuer("pass")
	v, err := auth.NewVerifier(auth.Config{Now: func() time.Time { return t0 }, Providers: []auth.ProviderConfig{{
		Name: "pass", Issuer: iss, Audience: "yeyak",
		Keys: func(context.Context) (jwk.Set, error) { return nil, errors.New("hsm offline") },
	}}})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := p.Issue("pass", "P1", booking.Date{}, time.Hour)
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, auth.ErrKeysUnavailable) || !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("Verify = %v, want ErrKeysUnavailable", err)
	}
}

func TestJWKSURLMustBeHTTPS(t *testing.T) {
	keysFine := []string{
		"https://pass.example/jwks.json",
		"HTTPS://pass.example:8443/jwks.json",
		"http://127.0.0.1:8080/jwks.json",
		"http://127.5.6.7/jwks.json",
		"http://localhost:9000/jwks.json",
		"http://[::1]:9000/jwks.json",
	}
	refused := []string{
		"http://pass.example/jwks.json",
		"http://10.0.0.1/jwks.json",
		"http://0.0.0.0/jwks.json",
		"http://localhost.evil.example/jwks.json",
		"http://127.0.0.1.nip.io/jwks.json",
		"ftp://pass.example/jwks.json",
		"file:///etc/passwd",
		"https://",
		"https://user:secret@pass.example/jwks.json",
		"//pass.example/jwks.json",
		"pass.example/jwks.json",
	}
	for _, u := range keysFine {
		if _, err := auth.NewVerifier(auth.Config{Providers: []auth.ProviderConfig{{Name: "x", Issuer: "i", Audience: "a", JWKSURL: u}}}); err != nil {
			t.Errorf("JWKS URL %q refused: %v", u, err)
		}
	}
	for _, u := range refused {
		if _, err := auth.NewVerifier(auth.Config{Providers: []auth.ProviderConfig{{Name: "x", Issuer: "i", Audience: "a", JWKSURL: u}}}); err == nil {
			t.Errorf("JWKS URL %q accepted", u)
		}
	}
}
