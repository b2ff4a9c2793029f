package auth_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/httpapi/auth"
	"github.com/yeyak/yeyak/mocks/idp"
)

// TestVerifiedTokenCache: a token verified once is answered from memory
// (the key source is not asked again) for VerifiedTTL and never past its
// expiry; another token — even one byte changed — is verified afresh; with
// the cache off every call verifies.
func TestVerifiedTokenCache(t *testing.T) {
	p := newIdP(t)
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	var keyCalls atomic.Int64
	iss, _ := p.Issuer("pass")
	aud, _ := p.Audience("pass")
	newV := func(ttl time.Duration) *auth.Verifier {
		v, err := auth.NewVerifier(auth.Config{Now: clock, VerifiedTTL: ttl, Providers: []auth.ProviderConfig{{
			Name: "pass", Issuer: iss, Audience: aud,
			Keys: func(ctx context.Context) (jwk.Set, error) { keyCalls.Add(1); return p.PublicSet(ctx, "pass") },
		}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(v.Close)
		return v
	}
	ctx := context.Background()
	tok, err := p.Issue("pass", "P1", booking.Date{}, 90*time.Second) // expires at t0+90s
	if err != nil {
		t.Fatal(err)
	}
	v := newV(time.Minute)
	verify := func(tok string) error { _, err := v.Verify(ctx, tok); return err }
	if err := verify(tok); err != nil {
		t.Fatal(err)
	}
	first := keyCalls.Load()
	for range 5 {
		if err := verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	if got := keyCalls.Load(); got != first {
		t.Fatalf("the key source was asked %d more times for a cached token", got-first)
	}
	if err := verify(tok[:len(tok)-2] + "AA"); err == nil {
		t.Fatal("a token with a changed signature verified")
	}
	advance(61 * time.Second) // past VerifiedTTL: verified again
	if err := verify(tok); err != nil {
		t.Fatal(err)
	}
	if keyCalls.Load() == first {
		t.Fatal("a token cached past VerifiedTTL was not verified again")
	}
	advance(2 * time.Minute) // past its expiry (and skew): refused, cache or not
	if err := verify(tok); err == nil {
		t.Fatal("an expired token verified from the cache")
	}

	off := newV(-1)
	calls := keyCalls.Load()
	tok2, _ := p.Issue("pass", "P2", booking.Date{}, time.Hour)
	for range 3 {
		if _, err := off.Verify(ctx, tok2); err != nil {
			t.Fatal(err)
		}
	}
	if keyCalls.Load()-calls != 3 {
		t.Fatalf("with the cache off the key source was asked %d times for 3 calls", keyCalls.Load()-calls)
	}
}

// BenchmarkVerifyCachedParallel: the cached path from every core, with
// 10,000 distinct tokens (one per person), beside verifying afresh.
func BenchmarkVerifyCachedParallel(b *testing.B) {
	p, err := idp.New(idp.Config{Now: func() time.Time { return t0 }, Providers: []idp.ProviderConfig{{Name: "pass"}}})
	if err != nil {
		b.Fatal(err)
	}
	iss, _ := p.Issuer("pass")
	aud, _ := p.Audience("pass")
	for _, ttl := range []time.Duration{time.Minute, -1} {
		b.Run(map[bool]string{true: "cached", false: "uncached"}[ttl > 0], func(b *testing.B) {
			v, err := auth.NewVerifier(auth.Config{Now: func() time.Time { return t0 }, VerifiedTTL: ttl, Providers: []auth.ProviderConfig{{
				Name: "pass", Issuer: iss, Audience: aud, Keys: func(ctx context.Context) (jwk.Set, error) { return p.PublicSet(ctx, "pass") },
			}}})
			if err != nil {
				b.Fatal(err)
			}
			defer v.Close()
			toks := make([]string, 10_000)
			for i := range toks {
				toks[i], _ = p.Issue("pass", "P"+strconv.Itoa(i), booking.Date{}, time.Hour)
				if _, err := v.Verify(context.Background(), toks[i]); err != nil {
					b.Fatal(err)
				}
			}
			var next atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := v.Verify(context.Background(), toks[next.Add(1)%int64(len(toks))]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
