package booking

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error code. Codes cross the API boundary
// unchanged; never rename one, only add.
type Code string

// Error codes. The HTTP layer maps each to a status in one table.
//
// Some need a word more than their name: ESOLDOUT means the quota row
// (clinic, date, product, dose, wave) has no dose left or does not exist
// (Assign answers it only when no candidate had one). ESECONDDOSE means
// dose 1 of a two-dose product could not be booked because dose 2 has no
// dose left at the same clinic on the interval date or within the
// product's tolerance; nothing was booked. ECONFLICT means the change
// collides with the state it would change: a booking changed since it was
// read (worth retrying), or a supply file would go below what is booked
// (a *SupplyConflictError, not worth retrying unchanged).
const (
	EINVALID          Code = "invalid_request"
	ENOTFOUND         Code = "not_found"
	ENOTELIGIBLE      Code = "not_eligible"
	ENOTINCOHORT      Code = "not_in_cohort"
	ENOTYOURDAY       Code = "not_your_rotation_day"
	ENOTYOURWINDOW    Code = "not_your_window"
	ECLOSED           Code = "booking_closed"
	EOUTSIDECAMPAIGN  Code = "outside_campaign_window"
	EALREADYBOOKED    Code = "already_booked"
	ESOLDOUT          Code = "sold_out"
	ESECONDDOSE       Code = "second_dose_unavailable"
	ECHANGENOTALLOWED Code = "change_not_allowed"
	EALREADYCANCELLED Code = "already_cancelled"
	EREGISTRYDOWN     Code = "registry_unavailable"
	EUNKNOWNPERSON    Code = "unknown_person"
	ECONFLICT         Code = "conflict"
	// EUNAVAILABLE means yeyak's own storage cannot be reached (the
	// database is down, restarting or out of connections): retry shortly.
	EUNAVAILABLE Code = "unavailable"
	EINTERNAL    Code = "internal"
)

// Error is the domain error: a stable Code for machines and a Message for
// people. Message never contains personal data. Err, when set, is the cause
// kept for the operator's logs (it is not shown to callers).
type Error struct {
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same code, so callers can
// write errors.Is(err, &booking.Error{Code: booking.ESOLDOUT}) or use ErrorCode.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Code == e.Code && (t.Message == "" || t.Message == e.Message)
	}
	return false
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the human message of the first *Error in err's chain,
// or "Internal error." for any other error. It is safe to show to a caller.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}
