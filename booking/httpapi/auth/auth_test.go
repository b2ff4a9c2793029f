package auth_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
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

var t0 = time.Date(2026, 8, 9, 12, 0, 0, 0, time.UTC)

func newIdP(t *testing.T) *idp.IdP {
	t.Helper()
	p, err := idp.New(idp.Config{
		Now: func() time.Time { return t0 },
		Providers: []idp.ProviderConfig{
			{Name: "pass"},
			{Name: "bank", Algorithm: "RS256"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func liveKeys(p *idp.IdP, name string) func(context.Context) (jwk.Set, error) {
	return func(ctx context.Context) (jwk.Set, error) { return p.PublicSet(ctx, name) }
}

func newVerifier(t *testing.T, p *idp.IdP, now time.Time) *auth.Verifier {
	t.Helper()
	var ps []auth.ProviderConfig
	for _, name := range []string{"pass", "bank"} {
		iss, _ := p.Issuer(name)
		aud, _ := p.Audience(name)
		ps = append(ps, auth.ProviderConfig{Name: name, Issuer: iss, Audience: aud, Keys: liveKeys(p, name)})
	}
	v, err := auth.NewVerifier(auth.Config{Providers: ps, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestVerifyTokenTable(t *testing.T) {
	p := newIdP(t)
	v := newVerifier(t, p, t0)
	birth := booking.MustDate("1990-05-19")
	must := func(s string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	passIss, _ := p.Issuer("pass")
	valid := must(p.Issue("pass", "P1", birth, time.Hour))
	parts := strings.Split(valid, ".")
	pub, _ := p.PublicSet(context.Background(), "bank")
	pk, _ := pub.Key(0)
	pubJSON, _ := json.Marshal(pk)
	mac := hmac.New(sha256.New, pubJSON)
	hsHead := b64(map[string]any{"alg": "HS256", "typ": "JWT"})
	hsBody := b64(map[string]any{"iss": must(p.Issuer("bank")), "aud": "yeyak", "sub": "P1", "exp": t0.Add(time.Hour).Unix()})
	mac.Write([]byte(hsHead + "." + hsBody))
	hs := hsHead + "." + hsBody + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	tests := []struct {
		name    string
		token   string
		ok      bool
		person  string
		birth   booking.Date
		provide string
	}{
		{"valid pass", valid, true, "P1", birth, "pass"},
		{"valid bank RS256 no birthdate", must(p.Issue("bank", "P2", booking.Date{}, time.Hour)), true, "P2", booking.Date{}, "bank"},
		{"expired", must(p.Issue("pass", "P1", birth, -time.Hour)), false, "", booking.Date{}, ""},
		{"expired within skew", must(p.Issue("pass", "P1", birth, -10*time.Second)), true, "P1", birth, "pass"},
		{"not yet valid", must(p.IssueClaims("pass", map[string]any{"sub": "P1", "nbf": t0.Add(time.Hour), "exp": t0.Add(2 * time.Hour)})), false, "", booking.Date{}, ""},
		{"no exp", must(p.IssueClaims("pass", map[string]any{"sub": "P1"})), false, "", booking.Date{}, ""},
		{"no sub", must(p.IssueClaims("pass", map[string]any{"exp": t0.Add(time.Hour)})), false, "", booking.Date{}, ""},
		{"wrong audience", must(p.IssueClaims("pass", map[string]any{"sub": "P1", "aud": "other", "exp": t0.Add(time.Hour)})), false, "", booking.Date{}, ""},
		{"unknown issuer", must(p.IssueClaims("pass", map[string]any{"sub": "P1", "iss": "https://evil.example", "exp": t0.Add(time.Hour)})), false, "", booking.Date{}, ""},
		{"A's issuer signed with B's key", must(p.IssueClaims("bank", map[string]any{"sub": "P1", "iss": passIss, "exp": t0.Add(time.Hour)})), false, "", booking.Date{}, ""},
		{"alg none", b64(map[string]any{"alg": "none"}) + "." + parts[1] + ".", false, "", booking.Date{}, ""},
		{"HS256 signed with the public key", hs, false, "", booking.Date{}, ""},
		{"tampered payload", parts[0] + "." + b64(map[string]any{"iss": passIss, "aud": "yeyak", "sub": "P2", "exp": t0.Add(time.Hour).Unix()}) + "." + parts[2], false, "", booking.Date{}, ""},
		{"bad birthdate", must(p.IssueClaims("pass", map[string]any{"sub": "P1", "exp": t0.Add(time.Hour), "birthdate": "1990-02-30"})), false, "", booking.Date{}, ""},
		{"oversized", must(p.IssueClaims("pass", map[string]any{"sub": "P1", "exp": t0.Add(time.Hour), "pad": strings.Repeat("x", 9000)})), false, "", booking.Date{}, ""},
		{"garbage", "a.b.c", false, "", booking.Date{}, ""},
		{"empty", "", false, "", booking.Date{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := v.Verify(context.Background(), tt.token)
			if tt.ok {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if id.PersonID != tt.person || id.BirthDate != tt.birth || id.Provider != tt.provide {
					t.Fatalf("identity = %+v", id)
				}
				return
			}
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("Verify error = %v, want ErrInvalidToken", err)
			}
		})
	}
}

func TestNewVerifierRefusesInsecureConfig(t *testing.T) {
	keys := func(context.Context) (jwk.Set, error) { return jwk.NewSet(), nil }
	for _, pc := range []auth.ProviderConfig{
		{Name: "x", Issuer: "i", Audience: "a", Keys: keys, Algorithms: []string{"none"}},
		{Name: "x", Issuer: "i", Audience: "a", Keys: keys, Algorithms: []string{"HS256"}},
		{Name: "x", Issuer: "i", Audience: "a"},
		{Name: "x", Issuer: "i", Keys: keys},
		{Name: "x", Issuer: "i", Audience: "a", JWKSURL: "file:///etc/passwd"},
	} {
		if _, err := auth.NewVerifier(auth.Config{Providers: []auth.ProviderConfig{pc}}); err == nil {
			t.Errorf("NewVerifier(%+v) accepted an insecure or incomplete provider", pc)
		}
	}
	if _, err := auth.NewVerifier(auth.Config{}); err == nil {
		t.Error("NewVerifier with no provider succeeded")
	}
}

// TestJWKSRotationAndOutage fetches keys over HTTP: a rotated key is picked
// up on its first unknown kid, the old key keeps working until removed, and
// an unreachable JWKS endpoint keeps the keys already known.
func TestJWKSRotationAndOutage(t *testing.T) {
	p := newIdP(t)
	var down atomic.Bool
	var fetches atomic.Int32
	h := p.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	clk := newClock(t0)
	iss, _ := p.Issuer("pass")
	v, err := auth.NewVerifier(auth.Config{
		Now: clk.Now,
		Providers: []auth.ProviderConfig{{
			Name: "pass", Issuer: iss, Audience: "yeyak", JWKSURL: srv.URL + "/idp/pass/jwks.json",
			MinRefreshInterval: time.Minute,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ctx := context.Background()
	old, _ := p.Issue("pass", "P1", booking.Date{}, time.Hour)
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatalf("first token: %v", err)
	}
	oldKid, _ := p.KeyIDs("pass")
	if _, err := p.Rotate("pass"); err != nil {
		t.Fatal(err)
	}
	newTok, _ := p.Issue("pass", "P1", booking.Date{}, time.Hour)
	clk.Add(2 * time.Minute) // past the refresh rate limit
	if _, err := v.Verify(ctx, newTok); err != nil {
		t.Fatalf("token from rotated key: %v", err)
	}
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatalf("old key stopped working before removal: %v", err)
	}

	// Unknown kids do not hammer the endpoint: within MinRefreshInterval one fetch at most.
	before := fetches.Load()
	forged, _ := p.IssueClaims("bank", map[string]any{"iss": iss, "sub": "P1", "exp": clk.Now().Add(time.Hour)})
	for range 20 {
		if _, err := v.Verify(ctx, forged); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("foreign key accepted: %v", err)
		}
	}
	if n := fetches.Load() - before; n > 1 {
		t.Fatalf("%d JWKS fetches for unknown kids within the rate limit, want ≤ 1", n)
	}

	// Endpoint down: known keys keep working, even after the refresh interval.
	down.Store(true)
	clk.Add(time.Hour)
	tok, _ := p.Issue("pass", "P1", booking.Date{}, 3*time.Hour)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("verification failed while JWKS endpoint is down: %v", err)
	}
	down.Store(false)

	// Removal: once the old key leaves the JWKS (and a refresh happens), its tokens fail.
	if err := p.RemoveKey("pass", oldKid[0]); err != nil {
		t.Fatal(err)
	}
	clk.Add(20 * time.Minute)
	oldLong, _ := p.IssueClaims("pass", map[string]any{"sub": "P1", "exp": clk.Now().Add(time.Hour)}) // signed by the new key
	if _, err := v.Verify(ctx, oldLong); err != nil {
		t.Fatalf("new key token: %v", err)
	}
	// The stale set is refreshed in the background: the old key goes as
	// soon as that refresh lands.
	eventually(t, "token of a removed key refused", func() bool {
		_, err := v.Verify(ctx, old)
		return errors.Is(err, auth.ErrInvalidToken)
	})
}

// clock is a settable clock safe to read from the verifier's goroutines.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestParseAuthorization(t *testing.T) {
	tests := []struct {
		in   string
		want string
		err  error
	}{
		{"", "", auth.ErrNoToken},
		{"Bearer a.b.c", "a.b.c", nil},
		{"bearer a.b.c", "a.b.c", nil},
		{"Basic dXNlcjpwYXNz", "", auth.ErrInvalidToken},
		{"Bearer", "", auth.ErrInvalidToken},
		{"Bearer a.b", "", auth.ErrInvalidToken},
		{"Bearer a.b.c d", "", auth.ErrInvalidToken},
	}
	for _, tt := range tests {
		got, err := auth.ParseAuthorization(tt.in)
		if got != tt.want || !errors.Is(err, tt.err) && !(err == nil && tt.err == nil) {
			t.Errorf("ParseAuthorization(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestParseProviderSpec(t *testing.T) {
	pc, err := auth.ParseProviderSpec("name=pass,iss=https://pass.example,aud=yeyak,jwks=https://pass.example/jwks.json,algs=RS256|ES256,skew=10s")
	if err != nil {
		t.Fatal(err)
	}
	if pc.Name != "pass" || pc.Issuer != "https://pass.example" || pc.Audience != "yeyak" || pc.Skew != 10*time.Second || len(pc.Algorithms) != 2 {
		t.Fatalf("parsed %+v", pc)
	}
	for _, bad := range []string{"name=x", "name=x,iss=i,aud=a,jwks=https://x,algs=none", "name=x,iss=i,aud=a,jwks=https://x,color=red", "junk"} {
		if _, err := auth.ParseProviderSpec(bad); err == nil {
			t.Errorf("ParseProviderSpec(%q) succeeded", bad)
		}
	}
}

// FuzzParseAuthorization runs its checked-in seed corpus
// (testdata/fuzz/FuzzParseAuthorization) on every go test; go test -fuzz
// explores further. A parsed token is one compact JWS, and no header
// yields a token that verifies.
func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{"", "Bearer a.b.c", "Basic x", "Bearer  a.b.c", "Bearer a..", "bearer \x00.\x00.\x00"} {
		f.Add(s)
	}
	p, err := idp.New(idp.Config{Providers: []idp.ProviderConfig{{Name: "pass"}}})
	if err != nil {
		f.Fatal(err)
	}
	iss, _ := p.Issuer("pass")
	v, err := auth.NewVerifier(auth.Config{Providers: []auth.ProviderConfig{{Name: "pass", Issuer: iss, Audience: "yeyak", Keys: liveKeys(p, "pass")}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, err := auth.ParseAuthorization(h)
		if err != nil {
			if !errors.Is(err, auth.ErrNoToken) && !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("ParseAuthorization(%q) error %v is neither ErrNoToken nor ErrInvalidToken", h, err)
			}
			return
		}
		if tok == "" || strings.ContainsAny(tok, " \t\r\n") || strings.Count(tok, ".") != 2 {
			t.Fatalf("ParseAuthorization(%q) = %q: not one compact JWS", h, tok)
		}
		if again, err := auth.ParseAuthorization("Bearer " + tok); err != nil || again != tok {
			t.Fatalf("re-parsing %q = %q, %v", tok, again, err)
		}
		if _, err := v.Verify(context.Background(), tok); err == nil {
			t.Fatalf("fuzzed header %q verified", h)
		}
	})
}
