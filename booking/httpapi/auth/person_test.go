package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/httpapi/auth"
	"github.com/yeyak/yeyak/mocks/idp"
)

// ciVerifier trusts "pass" (subject = person id) and "bank", whose tokens
// carry a CI in the "ci" claim, mapped to person ids through a table.
func ciVerifier(t *testing.T, p *idp.IdP, table map[string]string, calls *int) *auth.Verifier {
	t.Helper()
	passIss, _ := p.Issuer("pass")
	bankIss, _ := p.Issuer("bank")
	v, err := auth.NewVerifier(auth.Config{Now: func() time.Time { return t0 }, Providers: []auth.ProviderConfig{
		{Name: "pass", Issuer: passIss, Audience: "yeyak", Keys: liveKeys(p, "pass")},
		{Name: "bank", Issuer: bankIss, Audience: "yeyak", Keys: liveKeys(p, "bank"), SubjectClaim: "ci",
			MapPerson: func(ctx context.Context, s auth.Subject) (string, error) {
				*calls++
				if s.Provider != "bank" || s.Claim != "ci" {
					return "", errors.New("mapper called with the wrong subject")
				}
				var channel string
				if err := s.Get("channel", &channel); err == nil && channel == "broken" {
					return "", errors.New("ci table unreachable")
				}
				if channel == "empty" {
					return "", nil
				}
				id, ok := table[s.Value]
				if !ok {
					return "", auth.ErrUnknownPerson
				}
				return id, nil
			}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPersonMapper(t *testing.T) {
	p := newIdP(t)
	ci := strings.Repeat("Q", 86) + "=="
	var calls int
	v := ciVerifier(t, p, map[string]string{ci: "P0000000042"}, &calls)
	exp := t0.Add(time.Hour)
	issue := func(name string, claims map[string]any) string {
		t.Helper()
		tok, err := p.IssueClaims(name, claims)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tests := []struct {
		name    string
		token   string
		person  string
		unknown bool // 403 unknown_person
		failed  bool // another mapper failure
		invalid bool // token refused before mapping
	}{
		{"verbatim default", issue("pass", map[string]any{"sub": "P1", "exp": exp}), "P1", false, false, false},
		{"mapped CI", issue("bank", map[string]any{"ci": ci, "sub": "bank-user-7", "exp": exp}), "P0000000042", false, false, false},
		{"unknown CI", issue("bank", map[string]any{"ci": "unknown", "exp": exp}), "", true, false, false},
		{"mapper down", issue("bank", map[string]any{"ci": ci, "channel": "broken", "exp": exp}), "", false, true, false},
		{"mapper returns nothing", issue("bank", map[string]any{"ci": ci, "channel": "empty", "exp": exp}), "", false, true, false},
		{"no CI claim", issue("bank", map[string]any{"sub": "P1", "exp": exp}), "", false, false, true},
		{"CI not a string", issue("bank", map[string]any{"ci": 42, "exp": exp}), "", false, false, true},
		{"oversized subject", issue("bank", map[string]any{"ci": strings.Repeat("x", 257), "exp": exp}), "", false, false, true},
		{"expired: mapper not asked", issue("bank", map[string]any{"ci": ci, "exp": t0.Add(-time.Hour)}), "", false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := calls
			id, err := v.Verify(context.Background(), tt.token)
			switch {
			case tt.person != "":
				if err != nil || id.PersonID != tt.person {
					t.Fatalf("Verify = %+v, %v; want person %s", id, err, tt.person)
				}
			case tt.unknown:
				if !errors.Is(err, auth.ErrUnknownPerson) || booking.ErrorCode(err) != booking.EUNKNOWNPERSON || errors.Is(err, auth.ErrInvalidToken) {
					t.Fatalf("Verify error = %v, want unknown_person (not invalid_token)", err)
				}
			case tt.failed:
				if err == nil || errors.Is(err, auth.ErrInvalidToken) || booking.ErrorCode(err) != booking.EINTERNAL {
					t.Fatalf("Verify error = %v, want an internal mapper failure", err)
				}
			case tt.invalid:
				if !errors.Is(err, auth.ErrInvalidToken) {
					t.Fatalf("Verify error = %v, want ErrInvalidToken", err)
				}
				if calls != before {
					t.Fatal("the mapper saw a token that failed verification")
				}
			}
		})
	}
}

func TestIdentitySession(t *testing.T) {
	p := newIdP(t)
	passIss, _ := p.Issuer("pass")
	bankIss, _ := p.Issuer("bank")
	v, err := auth.NewVerifier(auth.Config{Now: func() time.Time { return t0 }, Providers: []auth.ProviderConfig{
		{Name: "pass", Issuer: passIss, Audience: "yeyak", Keys: liveKeys(p, "pass")},
		{Name: "bank", Issuer: bankIss, Audience: "yeyak", Keys: liveKeys(p, "bank"), SessionClaim: "device"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	exp := t0.Add(time.Hour)
	session := func(name string, claims map[string]any) auth.Identity {
		t.Helper()
		claims["sub"], claims["exp"], claims["iat"] = "P1", exp, t0.Add(-time.Minute)
		tok, err := p.IssueClaims(name, claims)
		if err != nil {
			t.Fatal(err)
		}
		id, err := v.Verify(context.Background(), tok)
		if err != nil {
			t.Fatal(err)
		}
		if len(id.Session) != 32 || !id.IssuedAt.Equal(t0.Add(-time.Minute)) || !id.Expires.Equal(exp) {
			t.Fatalf("identity %+v", id)
		}
		return id
	}
	sidA1 := session("pass", map[string]any{"sid": "A"})
	sidA2 := session("pass", map[string]any{"sid": "A"}) // another token of sign-in A (new jti)
	sidB := session("pass", map[string]any{"sid": "B"})
	bankA := session("bank", map[string]any{"device": "A"})
	bankSidA := session("bank", map[string]any{"sid": "A", "jti": "j1"}) // "sid" is not bank's session claim
	jti1 := session("pass", map[string]any{"jti": "j1"})
	jti1b := session("pass", map[string]any{"jti": "j1"})
	jti2 := session("pass", map[string]any{"jti": "j2"})
	noneA := session("pass", map[string]any{"jti": "", "n": 1})
	noneB := session("pass", map[string]any{"jti": "", "n": 2})
	for _, c := range []struct {
		what string
		a, b auth.Identity
		same bool
	}{
		{"two tokens of one sid", sidA1, sidA2, true},
		{"different sids", sidA1, sidB, false},
		{"same sid, different providers", sidA1, bankA, false},
		{"provider's own session claim", bankSidA, session("bank", map[string]any{"jti": "j1"}), true},
		{"same jti", jti1, jti1b, true},
		{"different jti", jti1, jti2, false},
		{"sid and jti namespaces apart", session("pass", map[string]any{"sid": "j1"}), jti1, false},
		{"neither: the token itself", noneA, noneB, false},
	} {
		if got := c.a.Session == c.b.Session; got != c.same {
			t.Errorf("%s: same session = %v, want %v", c.what, got, c.same)
		}
	}
}

func TestParseProviderSpecIntervals(t *testing.T) {
	pc, err := auth.ParseProviderSpec("name=pass,iss=https://pass.example,aud=yeyak,jwks=https://pass.example/jwks.json," +
		"refresh=10m,minrefresh=45s,backoff=2s,maxbackoff=5m,session=device,sub=ci,birthdate=bd")
	if err != nil {
		t.Fatal(err)
	}
	if pc.RefreshInterval != 10*time.Minute || pc.MinRefreshInterval != 45*time.Second || pc.RetryBackoff != 2*time.Second ||
		pc.MaxRetryBackoff != 5*time.Minute || pc.SessionClaim != "device" || pc.SubjectClaim != "ci" || pc.BirthDateClaim != "bd" {
		t.Fatalf("parsed %+v", pc)
	}
	base := "name=x,iss=i,aud=a,jwks=https://x/jwks"
	for _, bad := range []string{
		base + ",refresh=soon",
		base + ",refresh=0s",
		base + ",backoff=-1s",
		base + ",skew=0s",
		base + ",name=y",
		"name=x,iss=i,aud=a,jwks=http://x.example/jwks",
	} {
		if _, err := auth.ParseProviderSpec(bad); err == nil {
			t.Errorf("ParseProviderSpec(%q) succeeded", bad)
		}
	}
}
