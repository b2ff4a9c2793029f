package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Codes the load gives answers that carry no API error code.
const (
	CodeTransport = "transport" // connection refused or reset, no answer
	CodeTimeout   = "timeout"   // no answer within RequestTimeout
	CodeUndecoded = "undecoded" // a 2xx whose body was not the expected JSON
)

// API codes the flow reacts to.
const (
	codeQueueRequired = "queue_required"
	codeInProgress    = "idempotency_in_progress"
	codeRateLimited   = "rate_limited"
	codeSoldOut       = "sold_out"
	codeAlreadyBooked = "already_booked"
	codeAlreadyCancel = "already_cancelled"
	codeUnknownPerson = "unknown_person"
	codeInvalidToken  = "invalid_token"
)

// expectedCodes are the refusals a well-behaved person can meet: the
// campaign's rules, the registry not knowing them, a dose running out.
// They are counted as refusals, not errors.
var expectedCodes = map[string]bool{
	"not_eligible": true, "not_in_cohort": true, "not_your_rotation_day": true, "not_your_window": true,
	"booking_closed": true, "outside_campaign_window": true, "change_not_allowed": true,
	"second_dose_unavailable": true, codeUnknownPerson: true, codeSoldOut: true, codeAlreadyBooked: true,
	codeAlreadyCancel: true,
}

// flowControl are answers that tell a client to slow down or wait: part of
// the protocol, not errors.
var flowControl = map[string]bool{codeQueueRequired: true, codeInProgress: true, codeRateLimited: true}

// request is one API call of a person.
type request struct {
	step   string
	method string
	path   string
	body   any    // sent as JSON when not nil
	key    string // Idempotency-Key
	auth   bool   // send the person's token
	flow   bool   // a booking-flow route: send the pass; may answer 429 queue_required
}

// answer is what one attempt (or the last of several) got.
type answer struct {
	status     int
	code       string // API error code, a Code* of the load, or "" for 2xx
	retryable  bool
	retryAfter time.Duration
	header     http.Header
	body       []byte
}

func (a answer) ok() bool { return a.code == "" && a.status >= 200 && a.status < 300 }

// ambiguous reports whether the call may have taken effect without the
// person learning it (no answer, or a 5xx).
func (a answer) ambiguous() bool {
	return a.code == CodeTransport || a.code == CodeTimeout || a.status >= 500
}

type apiError struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		Retryable bool   `json:"retryable"`
	} `json:"error"`
}

// once makes one attempt and records it.
func (v *visitor) once(ctx context.Context, rq request) answer {
	var body io.Reader
	if rq.body != nil {
		b, err := json.Marshal(rq.body)
		if err != nil {
			panic(err) // the load's own request types always marshal
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, v.r.cfg.Target+rq.path, body)
	if err != nil {
		return answer{code: CodeTransport}
	}
	if rq.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if rq.auth && v.token != "" {
		req.Header.Set("Authorization", "Bearer "+v.token)
	}
	if rq.key != "" {
		req.Header.Set("Idempotency-Key", rq.key)
	}
	if rq.flow && v.pass != "" {
		req.Header.Set(v.r.cfg.PassHeader, v.pass)
	}
	// The waiting room's calls and the sign-in go over connections apart
	// from the booking flow's: a sign-in goes to the identity provider (in
	// demo mode served by yeyakd, in the waiting room's lane), and a crowd
	// signing in must not hold the connections an admitted person of the
	// same address books over — a queue of the load tool's, not the
	// target's, that had added seconds to the surge's booking p99.
	c := v.client
	if rq.step == StepQueueJoin || rq.step == StepQueuePoll || rq.step == StepToken {
		c = v.queue
	}
	start := time.Now()
	resp, err := c.Do(req)
	var a answer
	if err != nil {
		a = answer{code: CodeTransport, retryable: true}
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			a.code = CodeTimeout
		}
		if ctx.Err() != nil {
			// The person was abandoned (drain over): not the target's doing.
			a.retryable = false
			v.r.rec.call(rq.step, time.Since(start), "abandoned", false)
			return a
		}
	} else {
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		a = answer{status: resp.StatusCode, header: resp.Header, body: b}
		if resp.StatusCode >= 500 {
			v.r.rec.serverErrors.Add(1)
		}
		if rerr != nil {
			a.code, a.retryable = CodeTransport, true
		} else if resp.StatusCode < 200 || resp.StatusCode >= 300 {
			var e apiError
			if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
				a.code, a.retryable = e.Error.Code, e.Error.Retryable
			} else {
				a.code = "http_" + strconv.Itoa(resp.StatusCode)
			}
			switch resp.StatusCode {
			case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
				a.retryable = true
			}
		}
		a.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), v.r.cfg.Now())
		if p := resp.Header.Get(v.r.cfg.PassHeader); p != "" && rq.flow {
			v.pass = p // free flow hands out passes too
		}
		if rq.flow && a.ok() && !v.admitted {
			v.admitted = true
			v.r.rec.admitted.Add(1)
			if v.r.cfg.OnAdmitted != nil {
				v.r.cfg.OnAdmitted()
			}
		}
	}
	v.r.rec.call(rq.step, time.Since(start), a.code, a.code != "" && !expectedCodes[a.code] && !flowControl[a.code])
	return a
}

// call makes rq with retries: retryable answers are tried again (same
// Idempotency-Key) up to Attempts times, after Retry-After or a jittered
// exponential backoff; 429 queue_required sends the person to the waiting
// room and then repeats the call with the pass. out, when not nil,
// receives the JSON body of a 2xx.
func (v *visitor) call(ctx context.Context, rq request, out any) answer {
	cfg := &v.r.cfg
	var a answer
	queued, reauthed := 0, false
	for attempt := 0; attempt < cfg.Attempts; {
		a = v.once(ctx, rq)
		if a.ok() {
			if out != nil && len(a.body) > 0 {
				if err := json.Unmarshal(a.body, out); err != nil {
					a.code = CodeUndecoded
					v.r.rec.error(rq.step, CodeUndecoded)
				}
			}
			return a
		}
		if a.code == codeInvalidToken && rq.auth && !reauthed && rq.step != StepToken {
			// The identity provider's keys changed (a restarted demo
			// target): sign in again, as a frontend would, once.
			reauthed = true
			if v.getToken(ctx) == "" {
				continue
			}
			return a
		}
		if a.code == codeQueueRequired && rq.flow && queued < 3 {
			queued++
			if err := v.waitInLine(ctx); err != nil {
				return a
			}
			continue // the queue does not use up attempts
		}
		attempt++
		if !a.retryable || attempt >= cfg.Attempts || ctx.Err() != nil {
			return a
		}
		v.r.rec.retries.Add(1)
		wait := a.retryAfter
		if wait <= 0 {
			wait = backoff(attempt, v.rng)
		}
		if !sleep(ctx, min(wait, cfg.MaxRetryWait)) {
			return a
		}
	}
	return a
}

// backoff is the wait before attempt n (n >= 1): 200ms·2^(n−1) capped at
// 5 s, jittered into [d/2, d].
func backoff(n int, r *rand.Rand) time.Duration {
	d := 200 * time.Millisecond << min(n-1, 5)
	d = min(d, 5*time.Second)
	return d/2 + time.Duration(r.Int64N(int64(d/2)+1))
}

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// sleep waits d or until ctx ends; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// queueStatus is the body of POST /v1/queue and GET /v1/queue/{ticket}.
type queueStatus struct {
	Ticket               string `json:"ticket"`
	State                string `json:"state"`
	Position             int64  `json:"position"`
	EstimatedWaitSeconds int64  `json:"estimated_wait_seconds"`
	PollAfterSeconds     int64  `json:"poll_after_seconds"`
	Pass                 string `json:"pass"`
}

// errQueue ends a person's wait in the waiting room.
var errQueue = errors.New("load: not admitted from the waiting room")

// waitInLine is the waiting-room step: join (POST QueuePath), poll the
// ticket as Retry-After says until admitted, keep the pass. The whole wait
// is recorded under StepQueueWait, each call under StepQueueJoin and
// StepQueuePoll. When the line closes (QueueDrain) the person leaves it,
// keeping the last place the queue told them.
func (v *visitor) waitInLine(ctx context.Context) error {
	cfg := &v.r.cfg
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, cfg.QueueTimeout)
	defer cancel()
	if v.r.line != nil {
		stop := context.AfterFunc(v.r.line, cancel)
		defer stop()
	}
	defer func() {
		v.inLine = v.r.line != nil && v.r.line.Err() != nil && parent.Err() == nil && !v.placeAt.IsZero() && v.place.Pass == ""
	}()
	start := time.Now()
	var st queueStatus
	a := v.call(ctx, request{step: StepQueueJoin, method: http.MethodPost, path: cfg.QueuePath, auth: true}, &st)
	if a.ok() {
		v.r.rec.joined(a.status == http.StatusCreated)
	}
	ticket := ""
	for {
		if !a.ok() {
			return errQueue
		}
		v.place, v.placeAt = st, time.Now()
		if st.Pass != "" {
			v.pass = st.Pass
			v.r.rec.wait(StepQueueWait, time.Since(start))
			v.r.rec.lineAdmitted.Add(1)
			return nil
		}
		wait := a.retryAfter
		if wait <= 0 {
			wait = time.Duration(st.PollAfterSeconds) * time.Second
		}
		if wait <= 0 {
			wait = time.Second
		}
		// As the waiting-room page does: the whole Retry-After, however
		// long (MaxRetryWait caps the waits between a failed call's
		// attempts, not a place in line; the line's close and
		// QueueTimeout end the wait).
		if !sleep(ctx, wait) {
			return errQueue
		}
		if st.Ticket != "" {
			ticket = st.Ticket
		}
		st = queueStatus{}
		a = v.call(ctx, request{step: StepQueuePoll, method: http.MethodGet, path: cfg.QueuePath + "/" + ticket, auth: true}, &st)
	}
}
