package auth

import (
	"context"

	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/yeyak/yeyak/booking"
)

// Limits on what a token may name.
const (
	// maxSubjectBytes bounds the subject claim (a CI is 88 bytes).
	maxSubjectBytes = 256
	// maxPersonIDBytes bounds the person id a PersonMapper returns.
	maxPersonIDBytes = 128
)

// ErrUnknownPerson is what a PersonMapper returns when no registry person
// matches a verified subject. It carries booking.EUNKNOWNPERSON, which the
// API answers with 403 unknown_person; test for it with errors.Is.
var ErrUnknownPerson = &booking.Error{Code: booking.EUNKNOWNPERSON, Message: "No registry person matches this identity."}

// Subject is what a verified token says about who holds it: the input of a
// PersonMapper. Everything in it has passed signature and claim checks.
type Subject struct {
	// Provider is the name of the provider that issued the token.
	Provider string
	// Claim is the provider's subject claim (ProviderConfig.SubjectClaim).
	Claim string
	// Value is that claim's value: non-empty, at most 256 bytes.
	Value string

	token jwt.Token
}

// Get decodes another verified claim of the token into dst (a pointer), for
// mappers that need more than the subject (a CI together with a birth date,
// say).
func (s Subject) Get(claim string, dst any) error {
	return s.token.Get(claim, dst)
}

// PersonMapper maps a verified subject to the registry person id: the one
// place where a token becomes a person (see the package documentation).
// It runs on every verification, so a mapper that looks ids up caches
// them itself. It returns ErrUnknownPerson (or another error with the
// booking.EUNKNOWNPERSON code) when no person matches; any other error
// fails the request with that error's code (internal by default).
type PersonMapper func(ctx context.Context, s Subject) (personID string, err error)

// VerbatimPerson is the default PersonMapper: the subject claim's value is
// the registry person id.
func VerbatimPerson(_ context.Context, s Subject) (string, error) {
	return s.Value, nil
}
