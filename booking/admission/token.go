package admission

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"time"
)

// Token kinds: a ticket is a place in line, a pass admits to the booking
// flow. Each is signed with its own prefix, so one never verifies as the
// other.
const (
	kindTicket = "t1"
	kindPass   = "p1"
)

// Errors from verifying a ticket or pass. Callers branch with errors.Is;
// Reason gives the metric label.
var (
	// ErrMissing: no token was presented.
	ErrMissing = errors.New("admission: no token")
	// ErrMalformed: the token does not parse, or is of the wrong kind.
	ErrMalformed = errors.New("admission: malformed token")
	// ErrUnknownKey: the token names a key that is not configured (retired).
	ErrUnknownKey = errors.New("admission: token signed with an unknown key")
	// ErrSignature: the MAC does not match: the token was tampered with or
	// belongs to another person.
	ErrSignature = errors.New("admission: token signature does not match")
	// ErrExpired: the token's expiry (server time) has passed.
	ErrExpired = errors.New("admission: token expired")
)

// Reason returns the metric label of a verification error: missing,
// malformed, unknown_key, bad_signature, expired or "other".
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrMissing):
		return "missing"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case errors.Is(err, ErrUnknownKey):
		return "unknown_key"
	case errors.Is(err, ErrSignature):
		return "bad_signature"
	case errors.Is(err, ErrExpired):
		return "expired"
	}
	return "other"
}

// claims is what a ticket or pass carries. The person id is not in the
// token (it is never shown or logged); it is bound through the MAC.
type claims struct {
	Seq     uint64    // arrival sequence number in the line
	Issued  time.Time // server time of signing
	Expires time.Time // server time after which the token is refused
}

const (
	payloadLen = 24 // seq, issued ms, expires ms
	macLen     = 16 // truncated HMAC-SHA256: 128 bits
)

var b64 = base64.RawURLEncoding

// signer signs with the first key and verifies with all.
type signer struct {
	keys []Key
}

func (s *signer) mac(secret []byte, kind, kid, person string, payload []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(kid))
	m.Write([]byte{0})
	m.Write([]byte(person))
	m.Write([]byte{0})
	m.Write(payload)
	return m.Sum(nil)[:macLen]
}

// sign returns "kind.kid.payload.mac" for person.
func (s *signer) sign(kind, person string, c claims) string {
	k := s.keys[0]
	var p [payloadLen]byte
	binary.BigEndian.PutUint64(p[0:], c.Seq)
	binary.BigEndian.PutUint64(p[8:], uint64(c.Issued.UnixMilli()))
	binary.BigEndian.PutUint64(p[16:], uint64(c.Expires.UnixMilli()))
	mac := s.mac(k.Secret, kind, k.ID, person, p[:])
	var b strings.Builder
	b.Grow(len(kind) + len(k.ID) + 3 + b64.EncodedLen(payloadLen) + b64.EncodedLen(macLen))
	b.WriteString(kind)
	b.WriteByte('.')
	b.WriteString(k.ID)
	b.WriteByte('.')
	b.WriteString(b64.EncodeToString(p[:]))
	b.WriteByte('.')
	b.WriteString(b64.EncodeToString(mac))
	return b.String()
}

// verify checks tok as a token of kind for person at server time now.
func (s *signer) verify(kind, tok, person string, now time.Time) (claims, error) {
	if tok == "" {
		return claims{}, ErrMissing
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 4 || parts[0] != kind {
		return claims{}, ErrMalformed
	}
	payload, err := b64.DecodeString(parts[2])
	if err != nil || len(payload) != payloadLen {
		return claims{}, ErrMalformed
	}
	mac, err := b64.DecodeString(parts[3])
	if err != nil || len(mac) != macLen {
		return claims{}, ErrMalformed
	}
	var key *Key
	for i := range s.keys {
		if s.keys[i].ID == parts[1] {
			key = &s.keys[i]
			break
		}
	}
	if key == nil {
		return claims{}, ErrUnknownKey
	}
	if !hmac.Equal(mac, s.mac(key.Secret, kind, key.ID, person, payload)) {
		return claims{}, ErrSignature
	}
	c := claims{
		Seq:     binary.BigEndian.Uint64(payload[0:]),
		Issued:  time.UnixMilli(int64(binary.BigEndian.Uint64(payload[8:]))),
		Expires: time.UnixMilli(int64(binary.BigEndian.Uint64(payload[16:]))),
	}
	if !now.Before(c.Expires) {
		return c, ErrExpired
	}
	return c, nil
}

// personKey is the keyed hash standing for a person in the store.
func personKey(salt []byte, person string) PersonKey {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(person))
	var k PersonKey
	copy(k[:], m.Sum(nil))
	return k
}
