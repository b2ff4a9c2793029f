package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync"

	"github.com/yeyak/yeyak/booking"
)

// IdempotencyRecord is a stored Idempotency-Key: the hash of the request it
// was first used with and, once the request completed, its response.
type IdempotencyRecord struct {
	RequestHash string
	// Status is 0 while the first request is still in progress.
	Status int
	Body   []byte
}

// IdempotencyStore keeps Idempotency-Keys per person. booking/sqlstore's
// *DB provides it (through a thin adapter in cmd/yeyakd); MemoryIdempotency
// is an in-process one for tests.
type IdempotencyStore interface {
	// Claim inserts key as in progress and returns claimed=true, or, if it
	// exists, returns the existing record and claimed=false.
	Claim(ctx context.Context, personID, key, requestHash string) (rec *IdempotencyRecord, claimed bool, err error)
	// Complete stores the response of the request that claimed key.
	Complete(ctx context.Context, personID, key string, status int, body []byte) error
	// Release deletes an in-progress key after a request that wrote nothing.
	Release(ctx context.Context, personID, key string) error
}

// MaxIdempotencyKeyLen is the longest Idempotency-Key accepted.
const MaxIdempotencyKeyLen = 128

func checkIdempotencyKey(k string) error {
	if k == "" {
		return booking.Errorf(booking.EINVALID, "the Idempotency-Key header is required (a unique value per booking attempt, e.g. a UUID)")
	}
	if len(k) > MaxIdempotencyKeyLen {
		return booking.Errorf(booking.EINVALID, "Idempotency-Key is longer than %d bytes", MaxIdempotencyKeyLen)
	}
	for _, r := range k {
		if r < 0x21 || r > 0x7e {
			return booking.Errorf(booking.EINVALID, "Idempotency-Key must be printable ASCII without spaces")
		}
	}
	return nil
}

// requestHash hashes the decoded request, so the same booking sent with
// different whitespace or field order counts as the same body.
func requestHash(req BookingRequest) string {
	b, _ := json.Marshal(req)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// assignHash is requestHash for POST /v1/bookings:assign; the endpoint is
// part of the hash, so one key cannot serve both endpoints.
func assignHash(req AssignRequest) string {
	b, _ := json.Marshal(req)
	sum := sha256.Sum256(append([]byte("assign\x00"), b...))
	return hex.EncodeToString(sum[:])
}

// MemoryIdempotency is an in-memory IdempotencyStore (keys never expire);
// for tests and single-process demos.
type MemoryIdempotency struct {
	mu   sync.Mutex
	recs map[[2]string]*IdempotencyRecord
}

// NewMemoryIdempotency returns an empty MemoryIdempotency.
func NewMemoryIdempotency() *MemoryIdempotency {
	return &MemoryIdempotency{recs: map[[2]string]*IdempotencyRecord{}}
}

// Claim implements IdempotencyStore.
func (m *MemoryIdempotency) Claim(_ context.Context, personID, key, hash string) (*IdempotencyRecord, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{personID, key}
	if r, ok := m.recs[k]; ok {
		c := *r
		return &c, false, nil
	}
	m.recs[k] = &IdempotencyRecord{RequestHash: hash}
	return nil, true, nil
}

// Complete implements IdempotencyStore.
func (m *MemoryIdempotency) Complete(_ context.Context, personID, key string, status int, body []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.recs[[2]string{personID, key}]; ok {
		r.Status, r.Body = status, append([]byte(nil), body...)
	}
	return nil
}

// Release implements IdempotencyStore.
func (m *MemoryIdempotency) Release(_ context.Context, personID, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{personID, key}
	if r, ok := m.recs[k]; ok && r.Status == 0 {
		delete(m.recs, k)
	}
	return nil
}
