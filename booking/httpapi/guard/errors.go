package guard

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Error codes guard answers with. They are part of the /v1 API's stable
// error contract (booking/httpapi/errors.go holds the API's table; its
// CodeRateLimited and CodeUnavailable are these strings): never rename one.
const (
	// CodeRateLimited: a rate limit or the per-address concurrency cap
	// refused the request (429, retryable, Retry-After).
	CodeRateLimited = "rate_limited"
	// CodeSessionActive: another session of the same person is active, or
	// the person started a session too recently (409, retryable,
	// Retry-After until the other session ends).
	CodeSessionActive = "session_active"
	// CodeUnavailable: the session store could not be asked and
	// SessionConfig.FailClosed is set (503, retryable, Retry-After).
	CodeUnavailable = "unavailable"
)

// ErrorWriter writes an API error answer: status, a stable code, a human
// message and how long the client should wait before retrying (0: no
// Retry-After). Plug the API's own writer in through Config.WriteError to
// keep one error path; WriteError is the default.
type ErrorWriter func(w http.ResponseWriter, status int, code, msg string, retryAfter time.Duration)

// WriteError writes the /v1 API's error shape,
// {"error":{"code":…,"message":…,"retryable":true}}, with the API's
// headers and Retry-After in whole seconds (rounded up, at least 1) when
// retryAfter is positive. Every guard refusal is retryable.
func WriteError(w http.ResponseWriter, status int, code, msg string, retryAfter time.Duration) {
	h := w.Header()
	if retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(RetryAfterSeconds(retryAfter)))
	}
	body, _ := json.Marshal(errorBody{errorObject{Code: code, Message: msg, Retryable: true}})
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// RetryAfterSeconds is d as a Retry-After value: whole seconds, rounded
// up, at least 1.
func RetryAfterSeconds(d time.Duration) int {
	s := math.Ceil(d.Seconds())
	if s < 1 {
		return 1
	}
	if s > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(s)
}

type errorBody struct {
	Error errorObject `json:"error"`
}

type errorObject struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable"`
}
