// Package auth verifies the identity tokens people present to the /v1 API:
// JWTs signed by one of several trusted identity providers (carrier
// authentication, bank certificates, PASS, Kakao, …), each configured with
// its issuer, audience, key source, allowed algorithms and clock skew.
//
// The provider set is configuration, not code. A token is matched to its
// provider by its "iss" claim, its signature checked against that
// provider's keys only (a JWKS URL fetched, cached and refreshed on an
// unknown "kid" at a bounded rate, or an in-process key source), then
// "aud", "exp" and "nbf" are validated. "alg":"none" and HMAC algorithms are
// never accepted.
//
//	v, err := auth.NewVerifier(auth.Config{Providers: []auth.ProviderConfig{{
//		Name: "pass", Issuer: "https://pass.example", Audience: "yeyak",
//		JWKSURL: "https://pass.example/jwks.json",
//	}}})
//	id, err := v.Verify(ctx, token) // id.PersonID is the registry person id
//
// The mapping from a token to the registry person id lives in one place,
// Identity's construction in Verify: the provider's subject claim (default
// "sub") is the person id.
package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"golang.org/x/sync/singleflight"

	"github.com/yeyak/yeyak/booking"
)

// Errors Verify and ParseAuthorization return; callers branch with errors.Is.
var (
	// ErrNoToken: the request carries no bearer token (401 unauthenticated).
	ErrNoToken = errors.New("auth: no bearer token")
	// ErrInvalidToken: the token is malformed, forged, expired, not yet
	// valid, for another audience, or from an untrusted issuer (401 invalid_token).
	ErrInvalidToken = errors.New("auth: invalid token")
)

// ProviderConfig is one trusted identity provider.
type ProviderConfig struct {
	// Name labels the provider in logs and metrics. Required.
	Name string
	// Issuer is the exact "iss" value of its tokens. Required, unique.
	Issuer string
	// Audience is the "aud" value tokens must carry for yeyak. Required.
	Audience string
	// JWKSURL is where the provider publishes its keys. Exactly one of
	// JWKSURL and Keys is set.
	JWKSURL string
	// Keys is an in-process key source (a static set, or the mock identity
	// provider in demo mode); it is asked on every verification.
	Keys func(ctx context.Context) (jwk.Set, error)
	// Algorithms allowed for this provider. nil means RS256 and ES256.
	// "none" and the HMAC family are refused by NewVerifier.
	Algorithms []string
	// Skew is the clock skew tolerated on exp/nbf/iat. 0 means 30s.
	Skew time.Duration
	// SubjectClaim carries the registry person id. "" means "sub".
	SubjectClaim string
	// BirthDateClaim carries an optional YYYY-MM-DD birth date. "" means "birthdate".
	BirthDateClaim string
	// RefreshInterval is how old a fetched JWKS may get before it is
	// fetched again. 0 means 15 minutes. A failed refresh keeps the old set.
	RefreshInterval time.Duration
	// MinRefreshInterval bounds refetches triggered by unknown kids. 0 means 30s.
	MinRefreshInterval time.Duration
}

// Config configures a Verifier.
type Config struct {
	// Providers are the trusted identity providers. At least one.
	Providers []ProviderConfig
	// HTTPClient fetches JWKS URLs. nil means a client with a 5s timeout.
	HTTPClient *http.Client
	// Now is the clock for exp/nbf. nil means time.Now.
	Now func() time.Time
	// MaxTokenBytes refuses longer tokens before parsing. 0 means 8192.
	MaxTokenBytes int
	// Logger receives JWKS fetch failures. nil means slog.Default().
	Logger *slog.Logger
}

// Identity is who a verified token says the caller is.
type Identity struct {
	// PersonID is the registry person id (from the provider's subject claim).
	PersonID string
	// BirthDate is the token's birth date claim, zero if absent.
	BirthDate booking.Date
	// Provider is the name of the provider that issued the token.
	Provider string
	// Expires is the token's expiry.
	Expires time.Time
}

// Verifier checks tokens against the trusted providers. Safe for concurrent use.
type Verifier struct {
	byIssuer map[string]*provider
	client   *http.Client
	now      func() time.Time
	maxLen   int
	log      *slog.Logger
}

type provider struct {
	cfg   ProviderConfig
	algs  []jwa.SignatureAlgorithm
	fetch singleflight.Group

	mu        sync.Mutex
	set       jwk.Set
	fetchedAt time.Time
	triedAt   time.Time
}

// NewVerifier validates cfg and returns a Verifier. JWKS URLs are fetched
// lazily, on the first token of each provider.
func NewVerifier(cfg Config) (*Verifier, error) {
	if len(cfg.Providers) == 0 {
		return nil, errors.New("auth: no trusted identity provider configured")
	}
	v := &Verifier{byIssuer: map[string]*provider{}, client: cfg.HTTPClient, now: cfg.Now, maxLen: cfg.MaxTokenBytes, log: cfg.Logger}
	if v.client == nil {
		v.client = &http.Client{Timeout: 5 * time.Second}
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.maxLen <= 0 {
		v.maxLen = 8192
	}
	if v.log == nil {
		v.log = slog.Default()
	}
	for _, pc := range cfg.Providers {
		p, err := newProvider(pc)
		if err != nil {
			return nil, err
		}
		if _, dup := v.byIssuer[pc.Issuer]; dup {
			return nil, fmt.Errorf("auth: two providers with issuer %q", pc.Issuer)
		}
		v.byIssuer[pc.Issuer] = p
	}
	return v, nil
}

func newProvider(pc ProviderConfig) (*provider, error) {
	if pc.Name == "" || pc.Issuer == "" || pc.Audience == "" {
		return nil, fmt.Errorf("auth: provider %q: name, issuer and audience are required", pc.Name)
	}
	if (pc.JWKSURL == "") == (pc.Keys == nil) {
		return nil, fmt.Errorf("auth: provider %q: set exactly one of a JWKS URL and a key source", pc.Name)
	}
	if pc.JWKSURL != "" && !strings.HasPrefix(pc.JWKSURL, "https://") && !strings.HasPrefix(pc.JWKSURL, "http://") {
		return nil, fmt.Errorf("auth: provider %q: JWKS URL must be http(s)", pc.Name)
	}
	if pc.Algorithms == nil {
		pc.Algorithms = []string{"RS256", "ES256"}
	}
	if pc.Skew <= 0 {
		pc.Skew = 30 * time.Second
	}
	if pc.SubjectClaim == "" {
		pc.SubjectClaim = jwt.SubjectKey
	}
	if pc.BirthDateClaim == "" {
		pc.BirthDateClaim = "birthdate"
	}
	if pc.RefreshInterval <= 0 {
		pc.RefreshInterval = 15 * time.Minute
	}
	if pc.MinRefreshInterval <= 0 {
		pc.MinRefreshInterval = 30 * time.Second
	}
	p := &provider{cfg: pc}
	for _, name := range pc.Algorithms {
		alg, ok := jwa.LookupSignatureAlgorithm(name)
		if !ok || alg == jwa.NoSignature() || strings.HasPrefix(strings.ToUpper(name), "HS") {
			return nil, fmt.Errorf("auth: provider %q: algorithm %q is not allowed (asymmetric signatures only)", pc.Name, name)
		}
		p.algs = append(p.algs, alg)
	}
	if len(p.algs) == 0 {
		return nil, fmt.Errorf("auth: provider %q: no algorithm allowed", pc.Name)
	}
	return p, nil
}

// ParseAuthorization extracts the token from an "Authorization: Bearer …"
// header value. Returns ErrNoToken for an empty header, ErrInvalidToken for
// any other scheme or a malformed value.
func ParseAuthorization(h string) (string, error) {
	if h == "" {
		return "", ErrNoToken
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("%w: not a bearer token", ErrInvalidToken)
	}
	tok = strings.TrimSpace(tok)
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") || strings.Count(tok, ".") != 2 {
		return "", fmt.Errorf("%w: malformed bearer token", ErrInvalidToken)
	}
	return tok, nil
}

// Verify checks token and returns the identity it carries. Every failure
// wraps ErrInvalidToken; the reason is for logs only.
func (v *Verifier) Verify(ctx context.Context, token string) (Identity, error) {
	if len(token) > v.maxLen {
		return Identity{}, fmt.Errorf("%w: token longer than %d bytes", ErrInvalidToken, v.maxLen)
	}
	msg, err := jws.Parse([]byte(token), jws.WithCompact())
	if err != nil {
		return Identity{}, fmt.Errorf("%w: parse: %v", ErrInvalidToken, err)
	}
	sigs := msg.Signatures()
	if len(sigs) != 1 {
		return Identity{}, fmt.Errorf("%w: %d signatures", ErrInvalidToken, len(sigs))
	}
	hdr := sigs[0].ProtectedHeaders()
	alg, _ := hdr.Algorithm()
	kid, _ := hdr.KeyID()

	// The issuer only selects which provider's keys to try; nothing in the
	// payload is trusted before the signature is verified with those keys.
	var unverified struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(msg.Payload(), &unverified); err != nil {
		return Identity{}, fmt.Errorf("%w: payload is not a JSON object", ErrInvalidToken)
	}
	p, ok := v.byIssuer[unverified.Iss]
	if !ok {
		return Identity{}, fmt.Errorf("%w: untrusted issuer", ErrInvalidToken)
	}
	if !slices.Contains(p.algs, alg) {
		return Identity{}, fmt.Errorf("%w: algorithm %q not allowed for provider %s", ErrInvalidToken, alg, p.cfg.Name)
	}
	key, err := v.key(ctx, p, kid)
	if err != nil {
		return Identity{}, err
	}
	tok, err := jwt.Parse([]byte(token),
		jwt.WithKey(alg, key),
		jwt.WithValidate(true),
		jwt.WithIssuer(p.cfg.Issuer),
		jwt.WithAudience(p.cfg.Audience),
		jwt.WithAcceptableSkew(p.cfg.Skew),
		jwt.WithClock(jwt.ClockFunc(v.now)),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithRequiredClaim(p.cfg.SubjectClaim),
	)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: provider %s: %v", ErrInvalidToken, p.cfg.Name, err)
	}
	id := Identity{Provider: p.cfg.Name}
	id.Expires, _ = tok.Expiration()
	var sub string
	if err := tok.Get(p.cfg.SubjectClaim, &sub); err != nil || sub == "" || len(sub) > 128 {
		return Identity{}, fmt.Errorf("%w: provider %s: subject claim %q missing or not a string", ErrInvalidToken, p.cfg.Name, p.cfg.SubjectClaim)
	}
	id.PersonID = sub
	if tok.Has(p.cfg.BirthDateClaim) {
		var s string
		if err := tok.Get(p.cfg.BirthDateClaim, &s); err != nil {
			return Identity{}, fmt.Errorf("%w: birth date claim is not a string", ErrInvalidToken)
		}
		d, err := booking.ParseDate(s)
		if err != nil {
			return Identity{}, fmt.Errorf("%w: birth date claim is not YYYY-MM-DD", ErrInvalidToken)
		}
		id.BirthDate = d
	}
	return id, nil
}

// key finds the verification key for kid, refreshing the provider's JWKS
// when it is old or does not know kid (at most once per MinRefreshInterval).
func (v *Verifier) key(ctx context.Context, p *provider, kid string) (jwk.Key, error) {
	if p.cfg.Keys != nil {
		set, err := p.cfg.Keys(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: provider %s keys: %v", ErrInvalidToken, p.cfg.Name, err)
		}
		return pick(set, kid, p.cfg.Name)
	}
	now := v.now()
	p.mu.Lock()
	set, fetchedAt, triedAt := p.set, p.fetchedAt, p.triedAt
	p.mu.Unlock()
	needRefresh := set == nil || now.Sub(fetchedAt) > p.cfg.RefreshInterval
	if !needRefresh && kid != "" {
		if _, ok := set.LookupKeyID(kid); !ok {
			needRefresh = true
		}
	}
	if needRefresh && (set == nil || now.Sub(triedAt) >= p.cfg.MinRefreshInterval) {
		fresh, err := v.refresh(ctx, p)
		if err != nil {
			v.log.Warn("jwks fetch failed; keeping the keys already known", "provider", p.cfg.Name, "err", err)
		} else {
			set = fresh
		}
	}
	if set == nil {
		return nil, fmt.Errorf("%w: provider %s: no keys available", ErrInvalidToken, p.cfg.Name)
	}
	return pick(set, kid, p.cfg.Name)
}

func pick(set jwk.Set, kid, name string) (jwk.Key, error) {
	if kid == "" {
		if set.Len() == 1 {
			k, _ := set.Key(0)
			return k, nil
		}
		return nil, fmt.Errorf("%w: provider %s: token has no kid", ErrInvalidToken, name)
	}
	k, ok := set.LookupKeyID(kid)
	if !ok {
		return nil, fmt.Errorf("%w: provider %s: unknown kid", ErrInvalidToken, name)
	}
	return k, nil
}

func (v *Verifier) refresh(ctx context.Context, p *provider) (jwk.Set, error) {
	res, err, _ := p.fetch.Do("jwks", func() (any, error) {
		p.mu.Lock()
		p.triedAt = v.now()
		p.mu.Unlock()
		// Detached from the caller's cancellation so one impatient client
		// does not fail the fetch for everyone waiting on it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(fctx, http.MethodGet, p.cfg.JWKSURL, nil)
		if err != nil {
			return nil, err
		}
		resp, err := v.client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("jwks: status %d", resp.StatusCode)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return nil, err
		}
		set, err := jwk.Parse(body)
		if err != nil {
			return nil, fmt.Errorf("jwks: %w", err)
		}
		p.mu.Lock()
		p.set, p.fetchedAt = set, v.now()
		p.mu.Unlock()
		return set, nil
	})
	if err != nil {
		return nil, fmt.Errorf("provider %s: %w", p.cfg.Name, err)
	}
	return res.(jwk.Set), nil
}

// ParseProviderSpec parses the command-line form of a provider:
// "name=pass,iss=https://pass.example,aud=yeyak,jwks=https://pass.example/jwks.json[,algs=RS256|ES256][,skew=30s][,sub=claim][,birthdate=claim]".
func ParseProviderSpec(s string) (ProviderConfig, error) {
	var pc ProviderConfig
	for field := range strings.SplitSeq(s, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(field), "=")
		if !ok {
			return pc, fmt.Errorf("auth: provider spec field %q is not key=value", field)
		}
		switch k {
		case "name":
			pc.Name = val
		case "iss":
			pc.Issuer = val
		case "aud":
			pc.Audience = val
		case "jwks":
			pc.JWKSURL = val
		case "algs":
			pc.Algorithms = strings.Split(val, "|")
		case "skew":
			d, err := time.ParseDuration(val)
			if err != nil {
				return pc, fmt.Errorf("auth: provider spec skew: %w", err)
			}
			pc.Skew = d
		case "sub":
			pc.SubjectClaim = val
		case "birthdate":
			pc.BirthDateClaim = val
		default:
			return pc, fmt.Errorf("auth: provider spec: unknown field %q", k)
		}
	}
	if _, err := newProvider(pc); err != nil {
		return pc, err
	}
	return pc, nil
}
