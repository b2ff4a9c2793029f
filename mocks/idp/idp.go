// Package idp is a mock identity provider for tests and demo mode: several
// named providers, each with its own signing keys, a JWKS endpoint and key
// rotation, issuing the signed JWTs yeyak's /v1 API verifies.
//
// It stands in for the certificate providers people use to prove who they
// are (carrier authentication, bank certificates, PASS, Kakao, …). It is
// never used by production code paths: yeyakd mounts it only with --demo.
//
//	p, _ := idp.New(idp.Config{Providers: []idp.ProviderConfig{{Name: "demo"}}})
//	tok, _ := p.Issue("demo", "P0000000042", booking.MustDate("1990-05-12"), 15*time.Minute)
//	// GET /idp/demo/jwks.json on p.Handler() publishes the verification keys.
package idp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/yeyak/yeyak/booking"
)

// BirthDateClaim is the claim carrying the person's birth date (YYYY-MM-DD),
// as in OpenID Connect's standard "birthdate" claim.
const BirthDateClaim = "birthdate"

// ProviderConfig describes one mock provider.
type ProviderConfig struct {
	// Name identifies the provider in URLs and calls ("pass", "kakao").
	// Required; letters, digits, '-' and '_' only.
	Name string
	// Issuer is the "iss" claim. "" means "https://idp.example/" + Name.
	Issuer string
	// Audience is the "aud" claim. "" means "yeyak".
	Audience string
	// Algorithm is "ES256" (the default, fast key generation) or "RS256".
	Algorithm string
}

// Config configures an IdP.
type Config struct {
	// Providers to create, each with one fresh signing key.
	Providers []ProviderConfig
	// Now is the clock for iat/nbf/exp. nil means time.Now.
	Now func() time.Time
}

// IdP is a set of mock identity providers. It is safe for concurrent use.
type IdP struct {
	now func() time.Time

	mu        sync.RWMutex
	providers map[string]*provider
}

type provider struct {
	cfg  ProviderConfig
	alg  jwa.SignatureAlgorithm
	keys []signingKey // published keys; the last one signs
	seq  int
}

type signingKey struct {
	kid  string
	priv jwk.Key
	pub  jwk.Key
}

// ErrUnknownProvider is returned for a provider name the IdP does not have.
var ErrUnknownProvider = errors.New("idp: unknown provider")

// New creates the providers in cfg.
func New(cfg Config) (*IdP, error) {
	p := &IdP{now: cfg.Now, providers: map[string]*provider{}}
	if p.now == nil {
		p.now = time.Now
	}
	for _, pc := range cfg.Providers {
		if err := p.AddProvider(pc); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// AddProvider creates one more provider with a fresh signing key.
func (p *IdP) AddProvider(pc ProviderConfig) error {
	if !validName(pc.Name) {
		return fmt.Errorf("idp: invalid provider name %q", pc.Name)
	}
	if pc.Issuer == "" {
		pc.Issuer = "https://idp.example/" + pc.Name
	}
	if pc.Audience == "" {
		pc.Audience = "yeyak"
	}
	if pc.Algorithm == "" {
		pc.Algorithm = "ES256"
	}
	var alg jwa.SignatureAlgorithm
	switch pc.Algorithm {
	case "ES256":
		alg = jwa.ES256()
	case "RS256":
		alg = jwa.RS256()
	default:
		return fmt.Errorf("idp: provider %s: unsupported algorithm %q (ES256 or RS256)", pc.Name, pc.Algorithm)
	}
	pr := &provider{cfg: pc, alg: alg}
	if err := pr.addKey(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, dup := p.providers[pc.Name]; dup {
		return fmt.Errorf("idp: provider %q already exists", pc.Name)
	}
	p.providers[pc.Name] = pr
	return nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func (pr *provider) addKey() error {
	var raw any
	var err error
	switch pr.cfg.Algorithm {
	case "RS256":
		raw, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		raw, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return fmt.Errorf("idp: generate key: %w", err)
	}
	priv, err := jwk.Import(raw)
	if err != nil {
		return fmt.Errorf("idp: import key: %w", err)
	}
	pr.seq++
	kid := fmt.Sprintf("%s-%d-%d", pr.cfg.Name, pr.seq, time.Now().UnixNano()%1_000_000)
	for _, k := range []struct {
		name string
		v    any
	}{{jwk.KeyIDKey, kid}, {jwk.AlgorithmKey, pr.alg}, {jwk.KeyUsageKey, "sig"}} {
		if err := priv.Set(k.name, k.v); err != nil {
			return fmt.Errorf("idp: set %s: %w", k.name, err)
		}
	}
	pub, err := jwk.PublicKeyOf(priv)
	if err != nil {
		return fmt.Errorf("idp: public key: %w", err)
	}
	pr.keys = append(pr.keys, signingKey{kid: kid, priv: priv, pub: pub})
	return nil
}

func (p *IdP) provider(name string) (*provider, error) {
	pr, ok := p.providers[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownProvider, name)
	}
	return pr, nil
}

// Issuer returns the provider's "iss" value.
func (p *IdP) Issuer(name string) (string, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	pr, err := p.provider(name)
	if err != nil {
		return "", err
	}
	return pr.cfg.Issuer, nil
}

// Audience returns the provider's "aud" value.
func (p *IdP) Audience(name string) (string, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	pr, err := p.provider(name)
	if err != nil {
		return "", err
	}
	return pr.cfg.Audience, nil
}

// Issue returns a signed token for personID valid for ttl from now, with the
// birth date claim when birth is not zero.
func (p *IdP) Issue(name, personID string, birth booking.Date, ttl time.Duration) (string, error) {
	now := p.now()
	claims := map[string]any{
		jwt.SubjectKey:    personID,
		jwt.IssuedAtKey:   now,
		jwt.NotBeforeKey:  now,
		jwt.ExpirationKey: now.Add(ttl),
	}
	if !birth.IsZero() {
		claims[BirthDateClaim] = birth.String()
	}
	return p.IssueClaims(name, claims)
}

// SessionClaim is the claim naming the provider's sign-in session.
const SessionClaim = "sid"

// demoSession is the session id of a person on a device.
func demoSession(person, device string) string {
	h := sha256.Sum256([]byte(person + "\x00" + device))
	return hex.EncodeToString(h[:12])
}

// IssueClaims signs an arbitrary claim set with the provider's current key.
// "iss", "aud" and "jti" are filled in unless present, so tests can forge
// wrong-audience or expired tokens signed with a genuine key. time.Time
// values become NumericDate seconds.
func (p *IdP) IssueClaims(name string, claims map[string]any) (string, error) {
	p.mu.RLock()
	pr, err := p.provider(name)
	if err != nil {
		p.mu.RUnlock()
		return "", err
	}
	key := pr.keys[len(pr.keys)-1]
	alg := pr.alg
	iss, aud := pr.cfg.Issuer, pr.cfg.Audience
	p.mu.RUnlock()

	b := jwt.NewBuilder().Issuer(iss).Audience([]string{aud}).JwtID(booking.NewID())
	for k, v := range claims {
		b = b.Claim(k, v)
	}
	tok, err := b.Build()
	if err != nil {
		return "", fmt.Errorf("idp: build token: %w", err)
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.KeyIDKey, key.kid); err != nil {
		return "", fmt.Errorf("idp: set kid: %w", err)
	}
	if err := hdr.Set(jws.TypeKey, "JWT"); err != nil {
		return "", fmt.Errorf("idp: set typ: %w", err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(alg, key.priv, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("idp: sign: %w", err)
	}
	return string(signed), nil
}

// Rotate adds a new signing key to the provider and returns its kid. New
// tokens are signed with it; the previous keys stay published in the JWKS
// (so tokens they signed keep validating) until RemoveKey.
func (p *IdP) Rotate(name string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr, err := p.provider(name)
	if err != nil {
		return "", err
	}
	if err := pr.addKey(); err != nil {
		return "", err
	}
	return pr.keys[len(pr.keys)-1].kid, nil
}

// KeyIDs lists the provider's published key ids, oldest first; the last one signs.
func (p *IdP) KeyIDs(name string) ([]string, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	pr, err := p.provider(name)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(pr.keys))
	for i, k := range pr.keys {
		ids[i] = k.kid
	}
	return ids, nil
}

// RemoveKey unpublishes a key. The current signing key cannot be removed
// (rotate first).
func (p *IdP) RemoveKey(name, kid string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr, err := p.provider(name)
	if err != nil {
		return err
	}
	for i, k := range pr.keys {
		if k.kid != kid {
			continue
		}
		if i == len(pr.keys)-1 {
			return fmt.Errorf("idp: %s: key %s is the signing key; rotate before removing it", name, kid)
		}
		pr.keys = append(pr.keys[:i:i], pr.keys[i+1:]...)
		return nil
	}
	return fmt.Errorf("idp: %s: no key %q", name, kid)
}

// PublicSet returns the provider's published keys as a JWK set. It can be
// handed to a verifier as a live key source (it reflects rotations).
func (p *IdP) PublicSet(_ context.Context, name string) (jwk.Set, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	pr, err := p.provider(name)
	if err != nil {
		return nil, err
	}
	set := jwk.NewSet()
	for _, k := range pr.keys {
		if err := set.AddKey(k.pub); err != nil {
			return nil, fmt.Errorf("idp: add key: %w", err)
		}
	}
	return set, nil
}

// PrivateKey returns the provider's current signing key, for tests that
// forge tokens (e.g. sign with the right key but the wrong algorithm).
func (p *IdP) PrivateKey(name string) (jwk.Key, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	pr, err := p.provider(name)
	if err != nil {
		return nil, err
	}
	return pr.keys[len(pr.keys)-1].priv, nil
}

// Handler serves GET /idp/{provider}/jwks.json.
func (p *IdP) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /idp/{provider}/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		set, err := p.PublicSet(r.Context(), r.PathValue("provider"))
		if err != nil {
			writeError(w, http.StatusNotFound, "not_found", "No such provider.")
			return
		}
		body, err := json.Marshal(set)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "internal", "Internal error.")
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write(body)
	})
	return mux
}

// BirthDateFunc looks up a person's birth date for the demo token endpoint;
// it returns an error for people the registry does not know.
type BirthDateFunc func(ctx context.Context, personID string) (booking.Date, error)

// DemoTokenHandler serves POST /demo/token {"person_id":"…"} →
// {"access_token":"…","token_type":"Bearer","expires_in":N}, a token from
// provider valid for ttl (0 means 30 minutes). birth, when not nil, adds
// the birth date claim; its error answers 404 unknown_person, as a real
// provider would refuse someone it cannot identify. Demo mode only: it
// hands a token to anyone who asks.
func (p *IdP) DemoTokenHandler(name string, ttl time.Duration, birth BirthDateFunc) http.Handler {
	if ttl <= 0 {
		ttl = 30 * time.Minute
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Use POST.")
			return
		}
		var req struct {
			PersonID string `json:"person_id"`
			// Device names the device signing in (default "web"): tokens of
			// one person and device share a session id (the "sid" claim),
			// as a provider's session cookie would; another device is
			// another session.
			Device string `json:"device"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || req.PersonID == "" || len(req.PersonID) > 64 || len(req.Device) > 64 {
			writeError(w, http.StatusBadRequest, "invalid_request", `Body must be {"person_id":"…"} (and optionally "device":"…").`)
			return
		}
		if req.Device == "" {
			req.Device = "web"
		}
		var bd booking.Date
		if birth != nil {
			d, err := birth(r.Context(), req.PersonID)
			if err != nil {
				writeError(w, http.StatusNotFound, "unknown_person", "The identity provider does not know this person.")
				return
			}
			bd = d
		}
		now := p.now()
		claims := map[string]any{
			jwt.SubjectKey: req.PersonID, jwt.IssuedAtKey: now, jwt.NotBeforeKey: now, jwt.ExpirationKey: now.Add(ttl),
			SessionClaim: demoSession(req.PersonID, req.Device),
		}
		if !bd.IsZero() {
			claims[BirthDateClaim] = bd.String()
		}
		tok, err := p.IssueClaims(name, claims)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "internal", "Internal error.")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"access_token": tok, "token_type": "Bearer", "expires_in": int(ttl / time.Second),
		})
	})
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error": map[string]any{"code": code, "message": msg, "retryable": false},
	})
}
