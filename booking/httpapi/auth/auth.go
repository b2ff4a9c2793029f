// Package auth verifies the identity tokens people present to the /v1 API:
// JWTs signed by one of several trusted identity providers (carrier
// authentication, bank certificates, PASS, Kakao, …), each configured with
// its issuer, audience, key source, allowed algorithms and clock skew.
//
// The provider set is configuration, not code. A token is matched to its
// provider by its "iss" claim, its signature checked against that
// provider's keys only, then "aud", "exp" and "nbf" are validated.
// "alg":"none" and HMAC algorithms are never accepted.
//
//	v, err := auth.NewVerifier(auth.Config{Providers: []auth.ProviderConfig{{
//		Name: "pass", Issuer: "https://pass.example", Audience: "yeyak",
//		JWKSURL: "https://pass.example/jwks.json",
//	}}})
//	defer v.Close()
//	id, err := v.Verify(ctx, token) // id.PersonID is the registry person id
//
// # Keys
//
// A provider's keys come from a JWKS URL (https; plain http only to a
// loopback host) or an in-process key source (the mock identity provider in
// demo mode). A JWKS is fetched on the first token of its provider (or by
// Prefetch at start-up), cached, refreshed in the background once it is
// RefreshInterval old, and refetched when a token names an unknown "kid" —
// at most once per MinRefreshInterval. Fetches never run on a request's
// context: one at a time per provider, bounded by Config.FetchTimeout; a
// request waits for one at most Config.FetchWait. A failed fetch keeps the
// keys already known and backs off (RetryBackoff, doubling up to
// MaxRetryBackoff) before the next attempt, so a dead endpoint can neither
// stall requests nor be hammered by them. A token that cannot be checked
// for want of keys fails with ErrInvalidToken and ErrKeysUnavailable.
//
// # From a token to a registry person id: one place
//
// Which registry person a token speaks for is decided in exactly one place,
// the provider's PersonMapper (ProviderConfig.MapPerson), called by Verify
// after the signature and claims are valid. It receives the verified value
// of the provider's SubjectClaim (default "sub") and can read any other
// verified claim. The default mapper, VerbatimPerson, takes the claim's
// value as the person id: right for a provider that issues the registry's
// own ids. A provider whose subject is something else — a CI (connecting
// information, the 88-byte cross-service identifier Korean certificate
// providers issue), a provider-scoped user id — gets a mapper that looks
// the person id up. A mapper answers ErrUnknownPerson (or any error with
// the booking.EUNKNOWNPERSON code) when no person matches; the API turns it
// into 403 unknown_person. Whether a mapped person id is known to the
// registry is decided afterwards by the API and the registry, not here.
//
// # Sessions
//
// Identity.Session names the sign-in a token belongs to, for the
// one-active-session rule (package guard): the provider's session claim
// ("sid" by default, OpenID Connect's session id: stable across the token
// refreshes of one sign-in on one device), else the token's "jti", else the
// token itself. It is a hash, carrying nothing personal.
package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

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
	// JWKSURL is where the provider publishes its keys: https, or http to a
	// loopback host only. Exactly one of JWKSURL and Keys is set.
	JWKSURL string
	// Keys is an in-process key source (a static set, or the mock identity
	// provider in demo mode); it is asked on every verification.
	Keys func(ctx context.Context) (jwk.Set, error)
	// Algorithms allowed for this provider. nil means RS256 and ES256.
	// "none" and the HMAC family are refused by NewVerifier.
	Algorithms []string
	// Skew is the clock skew tolerated on exp/nbf/iat. 0 means 30s.
	Skew time.Duration
	// SubjectClaim carries the provider's identifier of the person, the
	// input of MapPerson. "" means "sub".
	SubjectClaim string
	// MapPerson turns the verified subject into the registry person id.
	// nil means VerbatimPerson (the subject is the person id). See the
	// package documentation.
	MapPerson PersonMapper
	// BirthDateClaim carries an optional YYYY-MM-DD birth date. "" means "birthdate".
	BirthDateClaim string
	// SessionClaim names the sign-in a token belongs to (Identity.Session).
	// "" means "sid"; a token without it falls back to "jti", then to the
	// token itself.
	SessionClaim string
	// RefreshInterval is how old a fetched JWKS may get before it is
	// refreshed in the background. 0 means 15 minutes. A failed refresh
	// keeps the old set.
	RefreshInterval time.Duration
	// MinRefreshInterval bounds refetches triggered by unknown kids. 0 means 30s.
	MinRefreshInterval time.Duration
	// RetryBackoff is the pause after a failed JWKS fetch before another
	// is tried; it doubles with each consecutive failure up to
	// MaxRetryBackoff. 0 means 1s.
	RetryBackoff time.Duration
	// MaxRetryBackoff caps RetryBackoff's doubling. 0 means 1 minute.
	MaxRetryBackoff time.Duration
}

// Config configures a Verifier.
type Config struct {
	// Providers are the trusted identity providers. At least one.
	Providers []ProviderConfig
	// HTTPClient fetches JWKS URLs. nil means a client with a 10s timeout
	// (FetchTimeout bounds each fetch anyway).
	HTTPClient *http.Client
	// FetchTimeout bounds one JWKS fetch. 0 means 5s.
	FetchTimeout time.Duration
	// FetchWait is the longest a request whose key is not known waits for
	// a JWKS fetch (its own or one in flight). 0 means 2s. A request whose
	// key is known never waits.
	FetchWait time.Duration
	// Now is the clock for exp/nbf and the refresh schedule. nil means time.Now.
	Now func() time.Time
	// MaxTokenBytes refuses longer tokens before parsing. 0 means 8192.
	MaxTokenBytes int
	// VerifiedTTL is how long a token once verified is answered from
	// memory without checking its signature again (never past its expiry):
	// a person's token arrives with every call of a booking flow, and an
	// ES256 or RS256 verification costs about a tenth of a millisecond of
	// CPU each time. A key removed from the provider's JWKS stops working
	// at most this late for tokens seen before. 0 means 1 minute; negative
	// turns the cache off.
	VerifiedTTL time.Duration
	// VerifiedMax bounds the cache of verified tokens (the oldest added
	// evicted first). 0 means 100,000 (about 30 MB when full).
	VerifiedMax int
	// Logger receives JWKS fetch failures. nil means slog.Default().
	Logger *slog.Logger
}

// Identity is who a verified token says the caller is.
type Identity struct {
	// PersonID is the registry person id, as the provider's PersonMapper
	// gave it.
	PersonID string
	// BirthDate is the token's birth date claim, zero if absent.
	BirthDate booking.Date
	// Provider is the name of the provider that issued the token.
	Provider string
	// Session names the sign-in the token belongs to: an opaque hash of
	// the provider and its session claim, "jti" or the token (see the
	// package documentation). Two tokens of one sign-in share it.
	Session string
	// IssuedAt is the token's "iat", zero if absent.
	IssuedAt time.Time
	// Expires is the token's expiry.
	Expires time.Time
}

// Verifier checks tokens against the trusted providers. Safe for concurrent
// use. Close stops its background JWKS fetches.
type Verifier struct {
	byIssuer map[string]*provider
	now      func() time.Time
	maxLen   int
	owner    *fetchOwner

	verifiedTTL time.Duration // <= 0: no cache
	// verified maps sha256(token) → identity, in shards picked by the
	// hash's first byte; lookups only read (Peek, a shared lock), so the
	// many requests of one launch morning do not queue on one mutex.
	verified [verifiedShards]*lru.Cache[[32]byte, verifiedToken]
}

// verifiedShards is the number of shards of the verified-token cache.
const verifiedShards = 32

// verifiedToken is a token verified earlier, answered from memory until.
type verifiedToken struct {
	id    Identity
	until time.Time
}

type provider struct {
	cfg  ProviderConfig
	algs []jwa.SignatureAlgorithm
	jwks *jwksSource // nil for an in-process key source
}

// NewVerifier validates cfg and returns a Verifier. JWKS URLs are fetched
// lazily, on the first token of each provider, or by Prefetch.
func NewVerifier(cfg Config) (*Verifier, error) {
	if len(cfg.Providers) == 0 {
		return nil, errors.New("auth: no trusted identity provider configured")
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = 5 * time.Second
	}
	if cfg.FetchWait <= 0 {
		cfg.FetchWait = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxTokenBytes <= 0 {
		cfg.MaxTokenBytes = 8192
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.VerifiedTTL == 0 {
		cfg.VerifiedTTL = time.Minute
	}
	if cfg.VerifiedMax <= 0 {
		cfg.VerifiedMax = 100_000
	}
	ctx, cancel := context.WithCancel(context.Background())
	v := &Verifier{byIssuer: map[string]*provider{}, now: cfg.Now, maxLen: cfg.MaxTokenBytes,
		owner: &fetchOwner{ctx: ctx, cancel: cancel}, verifiedTTL: cfg.VerifiedTTL}
	if cfg.VerifiedTTL > 0 {
		for i := range v.verified {
			// New errors only for a size <= 0.
			v.verified[i], _ = lru.New[[32]byte, verifiedToken](max(1, cfg.VerifiedMax/verifiedShards))
		}
	}
	for _, pc := range cfg.Providers {
		p, err := newProvider(pc)
		if err != nil {
			cancel()
			return nil, err
		}
		if _, dup := v.byIssuer[pc.Issuer]; dup {
			cancel()
			return nil, fmt.Errorf("auth: two providers with issuer %q", pc.Issuer)
		}
		if p.cfg.JWKSURL != "" {
			p.jwks = &jwksSource{
				name: p.cfg.Name, url: p.cfg.JWKSURL, client: client, now: cfg.Now, log: cfg.Logger,
				refresh: p.cfg.RefreshInterval, minRefresh: p.cfg.MinRefreshInterval,
				backoff: p.cfg.RetryBackoff, maxBackoff: p.cfg.MaxRetryBackoff,
				fetchTimeout: cfg.FetchTimeout, wait: cfg.FetchWait, owner: v.owner,
			}
		}
		v.byIssuer[pc.Issuer] = p
	}
	return v, nil
}

// Prefetch fetches the JWKS of every provider that has none yet and waits
// until they arrive or ctx ends. It returns the providers whose keys could
// not be had; the Verifier keeps trying them on demand, so an error here
// need not stop a start-up.
func (v *Verifier) Prefetch(ctx context.Context) error {
	var errs []error
	for _, p := range v.byIssuer {
		if p.jwks != nil {
			if err := p.jwks.prefetch(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Close stops the background JWKS fetches and waits for them to end.
// Verify keeps working afterwards with the keys already known.
func (v *Verifier) Close() {
	v.owner.close()
}

func newProvider(pc ProviderConfig) (*provider, error) {
	if pc.Name == "" || pc.Issuer == "" || pc.Audience == "" {
		return nil, fmt.Errorf("auth: provider %q: name, issuer and audience are required", pc.Name)
	}
	if (pc.JWKSURL == "") == (pc.Keys == nil) {
		return nil, fmt.Errorf("auth: provider %q: set exactly one of a JWKS URL and a key source", pc.Name)
	}
	if pc.JWKSURL != "" {
		if err := checkJWKSURL(pc.JWKSURL); err != nil {
			return nil, fmt.Errorf("auth: provider %q: %w", pc.Name, err)
		}
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
	if pc.MapPerson == nil {
		pc.MapPerson = VerbatimPerson
	}
	if pc.BirthDateClaim == "" {
		pc.BirthDateClaim = "birthdate"
	}
	if pc.SessionClaim == "" {
		pc.SessionClaim = "sid"
	}
	if pc.RefreshInterval <= 0 {
		pc.RefreshInterval = 15 * time.Minute
	}
	if pc.MinRefreshInterval <= 0 {
		pc.MinRefreshInterval = 30 * time.Second
	}
	if pc.RetryBackoff <= 0 {
		pc.RetryBackoff = time.Second
	}
	if pc.MaxRetryBackoff <= 0 {
		pc.MaxRetryBackoff = time.Minute
	}
	if pc.MaxRetryBackoff < pc.RetryBackoff {
		pc.MaxRetryBackoff = pc.RetryBackoff
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

// Verify checks token and returns the identity it carries. Every token
// failure wraps ErrInvalidToken (and ErrKeysUnavailable when the provider's
// keys could not be had); the reason is for logs only. An error of the
// provider's PersonMapper is returned wrapped as it is (ErrUnknownPerson:
// 403 unknown_person).
func (v *Verifier) Verify(ctx context.Context, token string) (Identity, error) {
	if v.verifiedTTL <= 0 || len(token) > v.maxLen {
		return v.verify(ctx, token)
	}
	h := sha256.Sum256([]byte(token))
	shard := v.verified[int(h[0])%verifiedShards]
	now := v.now()
	if c, ok := shard.Peek(h); ok {
		if now.Before(c.until) {
			return c.id, nil
		}
		shard.Remove(h)
	}
	id, err := v.verify(ctx, token)
	if err == nil {
		// Never past the token's expiry (checked without skew here: a
		// token inside its skew is verified again each time).
		until := now.Add(v.verifiedTTL)
		if !id.Expires.IsZero() && id.Expires.Before(until) {
			until = id.Expires
		}
		shard.Add(h, verifiedToken{id: id, until: until})
	}
	return id, err
}

// verify is Verify without the cache.
func (v *Verifier) verify(ctx context.Context, token string) (Identity, error) {
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
	id.IssuedAt, _ = tok.IssuedAt()
	var sub string
	if err := tok.Get(p.cfg.SubjectClaim, &sub); err != nil || sub == "" || len(sub) > maxSubjectBytes {
		return Identity{}, fmt.Errorf("%w: provider %s: subject claim %q missing or not a string", ErrInvalidToken, p.cfg.Name, p.cfg.SubjectClaim)
	}
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
	id.Session = sessionOf(p.cfg, tok, token)
	person, err := p.cfg.MapPerson(ctx, Subject{Provider: p.cfg.Name, Claim: p.cfg.SubjectClaim, Value: sub, token: tok})
	if err != nil {
		return Identity{}, fmt.Errorf("auth: provider %s: map subject to person: %w", p.cfg.Name, err)
	}
	if person == "" || len(person) > maxPersonIDBytes {
		return Identity{}, fmt.Errorf("auth: provider %s: person mapper returned an empty or oversized person id", p.cfg.Name)
	}
	id.PersonID = person
	return id, nil
}

// sessionOf is Identity.Session: a hash of the provider and the first of
// its session claim, "jti" and the token itself.
func sessionOf(pc ProviderConfig, tok jwt.Token, raw string) string {
	kind, val := "token", raw
	var s string
	if tok.Get(pc.SessionClaim, &s) == nil && s != "" {
		kind, val = "sid", s
	} else if jti, ok := tok.JwtID(); ok && jti != "" {
		kind, val = "jti", jti
	}
	h := sha256.New()
	for _, part := range []string{pc.Name, kind, val} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// key finds the verification key for kid in the provider's key source.
func (v *Verifier) key(ctx context.Context, p *provider, kid string) (jwk.Key, error) {
	if p.jwks != nil {
		return p.jwks.key(ctx, kid)
	}
	set, err := p.cfg.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: provider %s keys: %w: %v", ErrInvalidToken, p.cfg.Name, ErrKeysUnavailable, err)
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
