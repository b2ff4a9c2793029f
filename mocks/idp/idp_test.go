package idp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/mocks/idp"
)

func TestProvidersHaveTheirOwnKeys(t *testing.T) {
	p, err := idp.New(idp.Config{Providers: []idp.ProviderConfig{{Name: "a"}, {Name: "b", Algorithm: "RS256"}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tok, err := p.Issue("a", "P1", booking.MustDate("2000-01-31"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	setA, _ := p.PublicSet(ctx, "a")
	setB, _ := p.PublicSet(ctx, "b")
	parsed, err := jwt.Parse([]byte(tok), jwt.WithKeySet(setA))
	if err != nil {
		t.Fatalf("token does not verify with its provider's keys: %v", err)
	}
	if sub, _ := parsed.Subject(); sub != "P1" {
		t.Fatalf("sub = %q", sub)
	}
	var bd string
	if err := parsed.Get(idp.BirthDateClaim, &bd); err != nil || bd != "2000-01-31" {
		t.Fatalf("birthdate = %q, %v", bd, err)
	}
	if _, err := jwt.Parse([]byte(tok), jwt.WithKeySet(setB)); err == nil {
		t.Fatal("token of provider a verified with provider b's keys")
	}
	if _, err := p.Issue("nope", "P1", booking.Date{}, time.Minute); !errors.Is(err, idp.ErrUnknownProvider) {
		t.Fatalf("unknown provider: %v", err)
	}
}

func TestRotateAndRemove(t *testing.T) {
	p, err := idp.New(idp.Config{Providers: []idp.ProviderConfig{{Name: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := p.KeyIDs("a")
	kid, err := p.Rotate("a")
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := p.KeyIDs("a")
	if len(ids) != 2 || ids[1] != kid {
		t.Fatalf("after rotate: %v", ids)
	}
	if err := p.RemoveKey("a", kid); err == nil {
		t.Fatal("removed the signing key")
	}
	if err := p.RemoveKey("a", first[0]); err != nil {
		t.Fatal(err)
	}
	ids, _ = p.KeyIDs("a")
	if len(ids) != 1 || ids[0] != kid {
		t.Fatalf("after remove: %v", ids)
	}
}

func TestHTTP(t *testing.T) {
	p, err := idp.New(idp.Config{Providers: []idp.ProviderConfig{{Name: "demo"}}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/idp/", p.Handler())
	mux.Handle("/demo/token", p.DemoTokenHandler("demo", time.Minute, func(_ context.Context, id string) (booking.Date, error) {
		if id == "unknown" {
			return booking.Date{}, errors.New("unknown")
		}
		return booking.MustDate("1985-03-09"), nil
	}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/idp/demo/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	set, err := jwk.ParseReader(resp.Body)
	resp.Body.Close()
	if err != nil || set.Len() != 1 {
		t.Fatalf("jwks: %v (%d keys)", err, set.Len())
	}
	if k, _ := set.Key(0); k != nil {
		if priv, _ := jwk.IsPrivateKey(k); priv {
			t.Fatal("JWKS publishes a private key")
		}
	}
	if resp, _ := http.Get(srv.URL + "/idp/other/jwks.json"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown provider JWKS: %d", resp.StatusCode)
	}

	resp, err = http.Post(srv.URL+"/demo/token", "application/json", strings.NewReader(`{"person_id":"P42"}`))
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != 200 || out.AccessToken == "" {
		t.Fatalf("demo token: %d %+v", resp.StatusCode, out)
	}
	tok, err := jwt.Parse([]byte(out.AccessToken), jwt.WithKeySet(set))
	if err != nil {
		t.Fatalf("demo token does not verify with the JWKS: %v", err)
	}
	if sub, _ := tok.Subject(); sub != "P42" {
		t.Fatalf("sub = %q", sub)
	}
	// Tokens of one person and device share a session id; another device
	// or person has another.
	sid := func(body string) string {
		t.Helper()
		resp, err := http.Post(srv.URL+"/demo/token", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		tok, err := jwt.Parse([]byte(out.AccessToken), jwt.WithKeySet(set))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		var s string
		if err := tok.Get(idp.SessionClaim, &s); err != nil || s == "" {
			t.Fatalf("%s: no %s claim", body, idp.SessionClaim)
		}
		return s
	}
	web, web2 := sid(`{"person_id":"P42"}`), sid(`{"person_id":"P42","device":"web"}`)
	phone, other := sid(`{"person_id":"P42","device":"phone"}`), sid(`{"person_id":"P43"}`)
	if web != web2 || web == phone || web == other {
		t.Fatalf("sessions: web %s web %s phone %s other person %s", web, web2, phone, other)
	}
	for _, tc := range []struct {
		body string
		want int
	}{
		{`{"person_id":"unknown"}`, 404},
		{`{"person":"P1"}`, 400},
		{`{}`, 400},
		{`not json`, 400},
	} {
		resp, err := http.Post(srv.URL+"/demo/token", "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("POST /demo/token %s: %d, want %d", tc.body, resp.StatusCode, tc.want)
		}
	}
}
