package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/httpapi/auth"
)

// API error codes that are not booking codes. Like booking.Code they are a
// stable contract: never rename one, only add.
const (
	// CodeUnauthenticated: no bearer token (401).
	CodeUnauthenticated booking.Code = "unauthenticated"
	// CodeInvalidToken: the token failed verification (401).
	CodeInvalidToken booking.Code = "invalid_token"
	// CodeBodyTooLarge: the body is over MaxBodyBytes (413).
	CodeBodyTooLarge booking.Code = "body_too_large"
	// CodeUnsupportedMediaType: the body is not application/json (415).
	CodeUnsupportedMediaType booking.Code = "unsupported_media_type"
	// CodeIdempotencyKeyReused: the Idempotency-Key was used with another body (422).
	CodeIdempotencyKeyReused booking.Code = "idempotency_key_reused"
	// CodeIdempotencyInProgress: a request with the same key is still running (409).
	CodeIdempotencyInProgress booking.Code = "idempotency_in_progress"
	// CodeRateLimited: too many requests (429, with Retry-After).
	CodeRateLimited booking.Code = "rate_limited"
	// CodeMethodNotAllowed: the path exists but not with this method (405).
	CodeMethodNotAllowed booking.Code = "method_not_allowed"
	// CodeUnavailable: the service itself is not ready (503).
	CodeUnavailable = booking.EUNAVAILABLE

	// The waiting room's answers (written by booking/admission, which
	// must use the same strings; a test checks they do).

	// CodeQueueRequired: a surge is on; join the queue and present a pass (429).
	CodeQueueRequired booking.Code = "queue_required"
	// CodeTicketNotFound: no such ticket for the caller (404).
	CodeTicketNotFound booking.Code = "ticket_not_found"
	// CodeTicketExpired: the ticket or its place expired; join again (410).
	CodeTicketExpired booking.Code = "ticket_expired"
	// CodeQueueUnavailable: the queue's store cannot answer (503).
	CodeQueueUnavailable booking.Code = "queue_unavailable"
	// CodeSessionActive: another session of the same person is active (409).
	CodeSessionActive booking.Code = "session_active"
)

// errorSpec is how one code crosses HTTP.
type errorSpec struct {
	status    int
	retryable bool
}

// errorTable maps every code to its HTTP status: the one place where the
// mapping lives. Rule refusals (not your rotation day, closed, not in the
// cohort, …) are 422: the request is well formed but the campaign rules do
// not allow it now; the message says when the next window opens.
var errorTable = map[booking.Code]errorSpec{
	booking.EINVALID:          {http.StatusBadRequest, false},
	CodeUnauthenticated:       {http.StatusUnauthorized, false},
	CodeInvalidToken:          {http.StatusUnauthorized, false},
	booking.EUNKNOWNPERSON:    {http.StatusForbidden, false},
	booking.ENOTFOUND:         {http.StatusNotFound, false},
	CodeMethodNotAllowed:      {http.StatusMethodNotAllowed, false},
	booking.EALREADYBOOKED:    {http.StatusConflict, false},
	booking.ESOLDOUT:          {http.StatusConflict, false},
	booking.ECONFLICT:         {http.StatusConflict, true},
	booking.EALREADYCANCELLED: {http.StatusConflict, false},
	CodeIdempotencyInProgress: {http.StatusConflict, true},
	CodeBodyTooLarge:          {http.StatusRequestEntityTooLarge, false},
	CodeUnsupportedMediaType:  {http.StatusUnsupportedMediaType, false},
	CodeIdempotencyKeyReused:  {http.StatusUnprocessableEntity, false},
	booking.ENOTELIGIBLE:      {http.StatusUnprocessableEntity, false},
	booking.ENOTINCOHORT:      {http.StatusUnprocessableEntity, false},
	booking.ENOTYOURDAY:       {http.StatusUnprocessableEntity, false},
	booking.ENOTYOURWINDOW:    {http.StatusUnprocessableEntity, false},
	booking.ECLOSED:           {http.StatusUnprocessableEntity, false},
	booking.EOUTSIDECAMPAIGN:  {http.StatusUnprocessableEntity, false},
	booking.ECHANGENOTALLOWED: {http.StatusUnprocessableEntity, false},
	booking.ESECONDDOSE:       {http.StatusUnprocessableEntity, false},
	CodeRateLimited:           {http.StatusTooManyRequests, true},
	booking.EINTERNAL:         {http.StatusInternalServerError, true},
	booking.EREGISTRYDOWN:     {http.StatusServiceUnavailable, true},
	CodeUnavailable:           {http.StatusServiceUnavailable, true},
	CodeQueueRequired:         {http.StatusTooManyRequests, true},
	CodeTicketNotFound:        {http.StatusNotFound, false},
	CodeTicketExpired:         {http.StatusGone, false},
	CodeQueueUnavailable:      {http.StatusServiceUnavailable, true},
	CodeSessionActive:         {http.StatusConflict, true},
}

// StatusOf returns the HTTP status of an error code (500 for a code the
// table does not know).
func StatusOf(code booking.Code) int {
	if s, ok := errorTable[code]; ok {
		return s.status
	}
	return http.StatusInternalServerError
}

// Codes lists every error code the API can answer, for documentation tests.
func Codes() []booking.Code {
	out := make([]booking.Code, 0, len(errorTable))
	for c := range errorTable {
		out = append(out, c)
	}
	return out
}

// retryAfterSeconds is the Retry-After sent with retryable 429/503 answers.
const retryAfterSeconds = 5

type errorBody struct {
	Error errorObject `json:"error"`
}

type errorObject struct {
	Code      booking.Code `json:"code"`
	Message   string       `json:"message"`
	Retryable bool         `json:"retryable"`
}

// writeCode writes {"error":{…}} for code with a human message.
func writeCode(w http.ResponseWriter, code booking.Code, msg string) {
	spec, ok := errorTable[code]
	if !ok {
		code, spec, msg = booking.EINTERNAL, errorTable[booking.EINTERNAL], "Internal error."
	}
	if spec.status == http.StatusServiceUnavailable || spec.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	if code == CodeIdempotencyInProgress {
		w.Header().Set("Retry-After", "1")
	}
	if cr, ok := w.(interface{ setCode(booking.Code) }); ok {
		cr.setCode(code)
	}
	writeJSON(w, spec.status, errorBody{errorObject{Code: code, Message: msg, Retryable: spec.retryable}})
}

// errorCode maps any error to the code and message shown to the caller:
// booking errors keep theirs; auth errors become unauthenticated or
// invalid_token; anything else is internal with "Internal error.".
func errorCode(err error) (booking.Code, string) {
	switch {
	case errors.Is(err, auth.ErrKeysUnavailable):
		// The provider's keys cannot be fetched: not the caller's fault.
		return CodeUnavailable, "The identity provider's keys are unavailable; try again shortly."
	case errors.Is(err, auth.ErrNoToken):
		return CodeUnauthenticated, "A bearer token from a trusted identity provider is required."
	case errors.Is(err, auth.ErrInvalidToken):
		return CodeInvalidToken, "The bearer token is invalid or expired."
	}
	code := booking.ErrorCode(err)
	if _, known := errorTable[code]; !known || code == booking.EINTERNAL {
		return booking.EINTERNAL, "Internal error."
	}
	return code, booking.ErrorMessage(err)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":{"code":"internal","message":"Internal error.","retryable":true}}`)
	}
	writeRaw(w, status, append(body, '\n'))
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
