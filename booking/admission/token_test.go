package admission

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTokenVerify(t *testing.T) {
	s := signer{keys: []Key{keyA}}
	now := t0
	good := s.sign(kindPass, "alice", claims{Seq: 7, Issued: now, Expires: now.Add(time.Minute)})
	tamper := func(tok string, part int) string {
		p := strings.Split(tok, ".")
		b := []byte(p[part])
		if b[3] == 'A' {
			b[3] = 'B'
		} else {
			b[3] = 'A'
		}
		p[part] = string(b)
		return strings.Join(p, ".")
	}
	tests := []struct {
		name   string
		kind   string
		tok    string
		person string
		at     time.Time
		want   error
	}{
		{"valid", kindPass, good, "alice", now, nil},
		{"another person's pass", kindPass, good, "bob", now, ErrSignature},
		{"expired", kindPass, good, "alice", now.Add(time.Minute), ErrExpired},
		{"tampered payload", kindPass, tamper(good, 2), "alice", now, ErrSignature},
		{"tampered mac", kindPass, tamper(good, 3), "alice", now, ErrSignature},
		{"key id swapped", kindPass, strings.Replace(good, ".a.", ".b.", 1), "alice", now, ErrUnknownKey},
		{"pass used as ticket", kindTicket, good, "alice", now, ErrMalformed},
		{"empty", kindPass, "", "alice", now, ErrMissing},
		{"garbage", kindPass, "p1.a.%%%.xx", "alice", now, ErrMalformed},
		{"too few parts", kindPass, "p1.a.AAAA", "alice", now, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := s.verify(tt.kind, tt.tok, tt.person, tt.at)
			if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
				t.Fatalf("verify = %v, want %v", err, tt.want)
			}
			if tt.want == nil && (c.Seq != 7 || !c.Expires.Equal(now.Add(time.Minute))) {
				t.Fatalf("claims = %+v", c)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	old := signer{keys: []Key{keyA}}
	tok := old.sign(kindPass, "alice", claims{Seq: 1, Issued: t0, Expires: t0.Add(time.Minute)})

	rotated := signer{keys: []Key{keyB, keyA}} // new key signs, old still verifies
	if _, err := rotated.verify(kindPass, tok, "alice", t0); err != nil {
		t.Fatalf("pass signed with the old key while it is configured: %v", err)
	}
	fresh := rotated.sign(kindPass, "alice", claims{Seq: 1, Issued: t0, Expires: t0.Add(time.Minute)})
	if !strings.HasPrefix(fresh, "p1.b.") {
		t.Fatalf("rotated signer signs with %q, want the first key b", fresh[:5])
	}
	retired := signer{keys: []Key{keyB}}
	if _, err := retired.verify(kindPass, tok, "alice", t0); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old key retired: verify = %v, want ErrUnknownKey", err)
	}
	// Same id, different secret: a forged key id does not help.
	forged := signer{keys: []Key{{ID: "a", Secret: []byte("another-secret-of-16+")}}}
	if _, err := forged.verify(kindPass, tok, "alice", t0); !errors.Is(err, ErrSignature) {
		t.Fatalf("different secret under the same id: verify = %v, want ErrSignature", err)
	}
}

func TestReason(t *testing.T) {
	for err, want := range map[error]string{
		ErrMissing: "missing", ErrMalformed: "malformed", ErrUnknownKey: "unknown_key",
		ErrSignature: "bad_signature", ErrExpired: "expired", errors.New("x"): "other",
	} {
		if got := Reason(err); got != want {
			t.Errorf("Reason(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	base := func() Config { return Config{Keys: []Key{keyA}, PersonFunc: headerPerson} }
	tests := []struct {
		name   string
		mutate func(*Config)
		ok     bool
	}{
		{"defaults", func(*Config) {}, true},
		{"no keys", func(c *Config) { c.Keys = nil }, false},
		{"short secret", func(c *Config) { c.Keys = []Key{{ID: "a", Secret: []byte("short")}} }, false},
		{"bad key id", func(c *Config) { c.Keys = []Key{{ID: "a.b", Secret: keyA.Secret}} }, false},
		{"duplicate key id", func(c *Config) { c.Keys = []Key{keyA, keyA} }, false},
		{"no person func", func(c *Config) { c.PersonFunc = nil }, false},
		{"ceiling below floor", func(c *Config) { c.Floor, c.Ceiling = 10, 5 }, false},
		{"bad decrease", func(c *Config) { c.Law.Decrease = 1.5 }, false},
		{"decrease 1", func(c *Config) { c.Law.Decrease = 1 }, false},
		{"negative headroom", func(c *Config) { c.Law.Headroom = -0.5 }, false},
		{"headroom 1", func(c *Config) { c.Law.Headroom = 1 }, true},
		{"negative settle", func(c *Config) { c.Law.Settle = -time.Second }, false},
		{"probe over 1", func(c *Config) { c.Law.Probe = 2 }, false},
		{"gradient under 1", func(c *Config) { c.Law.Gradient = 0.5 }, false},
		{"gradient 1", func(c *Config) { c.Law.Gradient = 1 }, true},
		{"openings too close", func(c *Config) {
			c.Openings = []time.Time{t0, t0.Add(10 * time.Minute)}
		}, false},
		{"openings far apart", func(c *Config) {
			c.Openings = []time.Time{t0.Add(24 * time.Hour), t0}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.mutate(&cfg)
			_, err := New(cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("New err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	c, err := base().withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Floor != 10 || c.Ceiling != 1000 || c.Initial != 10 || c.PassTTL != 5*time.Minute ||
		c.PreOpening != 30*time.Minute || c.Law.Decrease != 0.7 || c.Law.Increase != 10 || c.QueuePath != "/v1/queue" ||
		c.Law.Settle != 2*time.Second || c.Law.Probe != 0.1 || c.Law.Gradient != 4 {
		t.Fatalf("defaults: %+v", c)
	}
}
