package admission

import (
	"embed"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// PassHeader is the request header that carries a pass.
const PassHeader = "X-Yeyak-Pass"

// PagePath is where Handler serves the waiting-room page.
const PagePath = "/queue"

//go:embed page/queue.html
var pageFS embed.FS

// Error codes of the admission answers, in the API's error body
// {"error":{"code","message","retryable"}}.
const (
	CodeQueueRequired    = "queue_required"
	CodeUnauthenticated  = "unauthenticated"
	CodeTicketNotFound   = "ticket_not_found"
	CodeTicketExpired    = "ticket_expired"
	CodeQueueUnavailable = "queue_unavailable"
)

type errorBody struct {
	Error errorObject `json:"error"`
}

type errorObject struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, msg string, retryable bool) {
	writeJSON(w, status, errorBody{errorObject{Code: code, Message: msg, Retryable: retryable}})
}

// Middleware guards the booking-flow routes (/v1/me/eligibility,
// /v1/clinics, /v1/bookings…). A request with a valid pass of its person
// passes. Without one, it passes while nobody waits and the free-flow token
// bucket allows (the person's response then carries a fresh pass in
// X-Yeyak-Pass, so a surge starting mid-flow does not strand them);
// otherwise it is answered 429 queue_required with Location and
// Retry-After, and free flow stays closed for Config.FreeFlowHold after
// that refusal (the refused are on their way to the line: nobody after
// them may pass them). Times sent by the client are never read.
func (c *Controller) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := c.cfg.Now()
		person, known := c.cfg.PersonFunc(r)
		pass := r.Header.Get(PassHeader)
		var passErr error = ErrMissing
		if known && pass != "" {
			if _, passErr = c.sign.verify(kindPass, pass, person, now); passErr == nil {
				next.ServeHTTP(w, r)
				return
			}
		} else if pass != "" {
			passErr = ErrSignature // a pass with no person to bind it to
		}
		if st := c.advance(r.Context(), now, false); !c.lineOpen(st, now) {
			again := known && c.freeAgain(person, now) // let in before, without the pass now: no token
			if again || c.free.AllowN(now, 1) {
				if known {
					if !again {
						c.freePeople.Add(person, now)
					}
					w.Header().Set(PassHeader, c.sign.sign(kindPass, person, claims{Issued: now, Expires: now.Add(c.cfg.PassTTL)}))
					c.m.passesIssued.Inc()
				}
				next.ServeHTTP(w, r)
				return
			}
		}
		c.refuse(w, now, passErr)
	})
}

// Gate refuses, before anything else is spent on it, a booking-flow
// request that presents no pass while people wait in line (or for a draw,
// or free flow is held closed after a refusal):
// Middleware could only refuse it later. Mounted in front of the token's
// verification, it keeps a crowd's first attempts cheap (no signature to
// check, no person to look up): the crowd's verification work moves to the
// queue's join, which the host can bound, and the admitted people's
// requests keep the CPU. Requests with a pass, and every request while
// nobody waits, go on to the next handler (Middleware behind it still
// decides).
func (c *Controller) Gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(PassHeader) == "" {
			now := c.cfg.Now()
			if st := c.advance(r.Context(), now, false); c.lineOpen(st, now) {
				c.refuse(w, now, ErrMissing)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// refuse answers 429 queue_required: the rate is the binding constraint.
// Free flow stays closed FreeFlowHold from now (see Config.FreeFlowHold).
func (c *Controller) refuse(w http.ResponseWriter, now time.Time, passErr error) {
	c.refusedAt.Store(now.UnixNano())
	c.law.markConstrained()
	c.m.passesRejected.WithLabelValues(Reason(passErr)).Inc()
	c.m.refused.Inc()
	w.Header().Set("Location", c.cfg.QueuePath)
	w.Header().Set("Retry-After", "1")
	msg := "The booking service is busy: join the queue at " + c.cfg.QueuePath + " and present the pass you receive."
	if passErr != ErrMissing {
		msg = "The pass is not valid (" + Reason(passErr) + "): join the queue at " + c.cfg.QueuePath + "."
	}
	writeError(w, http.StatusTooManyRequests, CodeQueueRequired, msg, true)
}

// Handler serves the queue: POST {QueuePath} (join, or get one's place
// again), GET {QueuePath}/{ticket} (poll) and GET /queue (the waiting-room
// page). Mount it with Mount, or route those paths to it.
func (c *Controller) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+c.cfg.QueuePath, c.serveJoin)
	mux.HandleFunc("GET "+c.cfg.QueuePath+"/{ticket}", c.servePoll)
	mux.HandleFunc("GET "+PagePath, c.servePage)
	return mux
}

// Mount routes the queue's paths on mux to Handler.
func (c *Controller) Mount(mux *http.ServeMux) {
	h := c.Handler()
	mux.Handle("POST "+c.cfg.QueuePath, h)
	mux.Handle("GET "+c.cfg.QueuePath+"/{ticket}", h)
	mux.Handle("GET "+PagePath, h)
}

func (c *Controller) writeStatus(w http.ResponseWriter, code int, s Status) {
	if s.PollAfterSeconds > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(s.PollAfterSeconds, 10))
	}
	writeJSON(w, code, s)
}

func (c *Controller) serveJoin(w http.ResponseWriter, r *http.Request) {
	// The body is ignored: nothing the client says moves its place.
	person, ok := c.cfg.PersonFunc(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, CodeUnauthenticated, "Sign in to join the queue.", false)
		return
	}
	s, err := c.Join(r.Context(), person)
	if err != nil {
		c.log.Error("join failed", "err", err)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, CodeQueueUnavailable, "The queue is unavailable; try again shortly.", true)
		return
	}
	code := http.StatusOK
	if s.created {
		code = http.StatusCreated
	}
	c.writeStatus(w, code, s)
}

func (c *Controller) servePoll(w http.ResponseWriter, r *http.Request) {
	person, ok := c.cfg.PersonFunc(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, CodeUnauthenticated, "Sign in to see your place.", false)
		return
	}
	s, err := c.Poll(r.Context(), person, r.PathValue("ticket"))
	switch {
	case err == nil:
		c.writeStatus(w, http.StatusOK, s)
	case errors.Is(err, ErrExpired), errors.Is(err, ErrForgotten):
		writeError(w, http.StatusGone, CodeTicketExpired, "This place has expired; join the queue again.", false)
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrSignature), errors.Is(err, ErrUnknownKey), errors.Is(err, ErrMissing):
		writeError(w, http.StatusNotFound, CodeTicketNotFound, "No such ticket for you; join the queue.", false)
	default:
		c.log.Error("poll failed", "err", err)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, CodeQueueUnavailable, "The queue is unavailable; try again shortly.", true)
	}
}

func (c *Controller) servePage(w http.ResponseWriter, r *http.Request) {
	b, err := pageFS.ReadFile("page/queue.html")
	if err != nil {
		http.Error(w, "page missing", http.StatusInternalServerError)
		return
	}
	page := strings.ReplaceAll(string(b), "{{QUEUE_PATH}}", c.cfg.QueuePath)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
	_, _ = w.Write([]byte(page))
}
