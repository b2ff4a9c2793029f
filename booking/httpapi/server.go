package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/clinicsearch"
	"github.com/yeyak/yeyak/booking/httpapi/auth"
)

// Service is the booking use cases the API calls; *booking.Service has them.
type Service interface {
	Campaigns(ctx context.Context) ([]*booking.Campaign, error)
	Eligibility(ctx context.Context, personID, campaignID string, tokenBirth booking.Date) (booking.Decision, error)
	Book(ctx context.Context, req booking.BookRequest) (*booking.Booking, error)
	Assign(ctx context.Context, req booking.AssignRequest) (*booking.Booking, error)
	Cancel(ctx context.Context, personID, bookingID, traceparent string) (*booking.Booking, error)
	Reschedule(ctx context.Context, personID, bookingID, clinicID string, date booking.Date, traceparent string) (*booking.Booking, error)
	Booking(ctx context.Context, personID, id string) (*booking.Booking, error)
	Bookings(ctx context.Context, personID string) ([]*booking.Booking, error)
}

// Verifier turns a bearer token into an identity; *auth.Verifier has it.
type Verifier interface {
	Verify(ctx context.Context, token string) (auth.Identity, error)
}

// Pinger reports readiness (database reachable, migrations applied).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config configures the public /v1 API handler.
type Config struct {
	// Service books. Required.
	Service Service
	// Verifier checks bearer tokens. Required: there is no unauthenticated
	// path to a person's data.
	Verifier Verifier
	// Idempotency stores Idempotency-Keys of POST /v1/bookings. Required.
	Idempotency IdempotencyStore
	// Snapshot answers GET /v1/clinics from memory. Required; the caller
	// owns it (Start/Close).
	Snapshot *Snapshot
	// People, when set, gives the birth date of an authenticated caller
	// whose token has none, so /v1/clinics can show their wave (the
	// eligibility cache). nil: such callers see the current window's wave.
	People booking.PersonSource
	// Ready is checked by GET /readyz. nil means always ready.
	Ready Pinger
	// Registerer receives the HTTP metrics. nil means a private registry.
	Registerer prometheus.Registerer
	// PersonKey keys the HMAC that replaces person ids in logs. nil means
	// a random key per process (logs correlate within one process only).
	PersonKey []byte
	// Logger: nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Extra handlers mounted on the public listener by path pattern (demo
	// mode: "POST /demo/token", "GET /demo/people"; the waiting room's
	// "POST /v1/queue" …).
	Extra map[string]http.Handler
	// Edge wraps every request before routing (per-address limits,
	// concurrency caps). nil means none.
	Edge func(http.Handler) http.Handler
	// Flow wraps the booking-flow routes (/v1/me/eligibility, /v1/clinics,
	// /v1/bookings…) once the caller is known: IdentityFrom(r.Context())
	// holds the verified identity (on /v1/clinics only when a valid token
	// was sent). Surge admission, per-person rate limits and the session
	// rule go here; the first wrapper given runs first. nil means none.
	Flow []func(http.Handler) http.Handler
	// Gate wraps the booking-flow routes before anything else is spent on
	// a request (before the token's verification): a cheap refusal, such
	// as the waiting room's of a request without a pass during a surge
	// (admission.Controller.Gate). Its refusals are not observed. nil
	// means none.
	Gate func(http.Handler) http.Handler
	// EndSession, when set, serves DELETE /v1/me/session (sign out): it
	// ends the caller's session so another device may sign in (the
	// one-active-session rule). nil: the route answers 404.
	EndSession func(ctx context.Context, personID, session string) error
	// Observe, when set, is told of every booking-flow response that got
	// past the Flow wrappers (the work the booking path did): its route
	// pattern, status, error code ("" for a success) and latency from when
	// the router took the request (token verification and the person's
	// lookup included) — the admission controller's health signal.
	// Refusals by the waiting room, the limits or the session rule are not
	// observed.
	Observe func(route string, status int, code booking.Code, elapsed time.Duration)
}

// Server is the public /v1 API; it implements http.Handler.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	handler http.Handler // mux behind Edge
	log     *slog.Logger
	now     func() time.Time
	key     []byte
	metrics *metrics
}

// NewServer validates cfg and returns the handler for the public listener.
func NewServer(cfg Config) (*Server, error) {
	switch {
	case cfg.Service == nil:
		return nil, errors.New("httpapi: Service is required")
	case cfg.Verifier == nil:
		return nil, errors.New("httpapi: Verifier is required")
	case cfg.Idempotency == nil:
		return nil, errors.New("httpapi: Idempotency is required")
	case cfg.Snapshot == nil:
		return nil, errors.New("httpapi: Snapshot is required")
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger, now: cfg.Now, key: cfg.PersonKey}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if len(s.key) == 0 {
		s.key = make([]byte, 32)
		_, _ = rand.Read(s.key)
	}
	reg := cfg.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.routes()
	for pattern, h := range cfg.Extra {
		s.mux.Handle(pattern, h)
	}
	s.handler = http.HandlerFunc(s.route)
	if cfg.Edge != nil {
		s.handler = cfg.Edge(s.handler)
	}
	return s, nil
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /v1/openapi.yaml", s.openapi)
	s.mux.HandleFunc("GET /v1/campaigns", s.campaigns)
	s.mux.Handle("GET /v1/clinics", s.gate(s.maybeAuthed(s.flow(s.observed(http.HandlerFunc(s.clinics))))))
	s.mux.Handle("GET /v1/me/eligibility", s.authed(s.eligibility))
	if s.cfg.EndSession != nil {
		s.mux.Handle("DELETE /v1/me/session", s.authedPlain(s.endSession))
	}
	s.mux.Handle("POST /v1/bookings", s.authed(s.book))
	s.mux.Handle("POST /v1/bookings:assign", s.authed(s.assign))
	s.mux.Handle("GET /v1/bookings", s.authed(s.listBookings))
	s.mux.Handle("GET /v1/bookings/{id}", s.authed(s.getBooking))
	s.mux.Handle("DELETE /v1/bookings/{id}", s.authed(s.cancel))
	s.mux.Handle("POST /v1/bookings/{id}/reschedule", s.authed(s.reschedule))
}

// ServeHTTP answers r through Edge, then the router.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// route routes r, answering unknown paths and methods with the JSON error
// shape, and records metrics.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	h, pattern := s.mux.Handler(r)
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	if pattern == "" {
		// The mux's own 404/405: run it into a recorder to learn which, keep
		// its Allow header, answer with our error shape.
		rec := &headerRecorder{h: http.Header{}}
		h.ServeHTTP(rec, r)
		if rec.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", rec.h.Get("Allow"))
			writeCode(sw, CodeMethodNotAllowed, "Method not allowed on this path.")
		} else {
			writeCode(sw, booking.ENOTFOUND, "No such endpoint.")
		}
		pattern = "unmatched"
	} else {
		if s.cfg.Observe != nil {
			r = r.WithContext(context.WithValue(r.Context(), startKey{}, start))
		}
		s.mux.ServeHTTP(sw, r) // again through the mux: it sets path values
	}
	s.metrics.observe(pattern, sw.status, time.Since(start))

}

type statusWriter struct {
	http.ResponseWriter
	status int
	code   booking.Code // the error code written, if any
}

// setCode records the error code of the response (writeCode calls it),
// also in the writer it wraps when that records codes too.
func (w *statusWriter) setCode(c booking.Code) {
	w.code = c
	if cr, ok := w.ResponseWriter.(interface{ setCode(booking.Code) }); ok {
		cr.setCode(c)
	}
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type headerRecorder struct {
	h      http.Header
	status int
}

func (r *headerRecorder) Header() http.Header { return r.h }
func (r *headerRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return len(b), nil
}
func (r *headerRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

// PersonHash returns the keyed hash that stands for a person id in logs.
func (s *Server) PersonHash(personID string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(personID))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// fail writes err as an API error; internal errors are logged with their
// cause for the operator and shown as "Internal error.".
func (s *Server) fail(w http.ResponseWriter, r *http.Request, personID string, err error) {
	code, msg := errorCode(err)
	if code == booking.EINTERNAL && r.Context().Err() != nil && errors.Is(err, r.Context().Err()) {
		// The client went away (or the server is shutting down): not an
		// operator problem. Nothing was written (the store rolls back).
		s.log.Info("request abandoned by the client", "method", r.Method, "path", r.Pattern)
		writeCode(w, CodeUnavailable, "The request was cancelled.")
		return
	}
	if code == booking.EINTERNAL || code == booking.EREGISTRYDOWN || code == booking.EUNAVAILABLE {
		attrs := []any{"method", r.Method, "path", r.Pattern, "code", code, "err", err}
		if personID != "" {
			attrs = append(attrs, "person", s.PersonHash(personID))
		}
		switch code {
		case booking.EINTERNAL:
			s.log.Error("request failed", attrs...)
		case booking.EUNAVAILABLE:
			s.log.Warn("database unavailable", attrs...)
		default:
			s.log.Warn("registry unavailable", attrs...)
		}
	}
	writeCode(w, code, msg)
}

type authedHandler func(w http.ResponseWriter, r *http.Request, id auth.Identity)

type identityKey struct{}

// IdentityFrom returns the verified identity of the request's caller, as
// set by the API before the Flow wrappers run.
func IdentityFrom(ctx context.Context) (auth.Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(auth.Identity)
	return id, ok
}

// WithIdentity returns ctx carrying id (for tests of Flow wrappers).
func WithIdentity(ctx context.Context, id auth.Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// PersonOf returns a function giving the verified person of a request:
// from the context when the API already verified the token (the Flow
// wrappers), else by verifying the bearer token with v (routes mounted
// outside the API's authentication, such as the waiting room's). For
// admission.Config.PersonFunc.
func PersonOf(v Verifier) func(*http.Request) (string, bool) {
	return func(r *http.Request) (string, bool) {
		if id, ok := IdentityFrom(r.Context()); ok {
			return id.PersonID, true
		}
		tok, err := auth.ParseAuthorization(r.Header.Get("Authorization"))
		if err != nil {
			return "", false
		}
		id, err := v.Verify(r.Context(), tok)
		return id.PersonID, err == nil
	}
}

// startKey carries the time the router took a request (for observed).
type startKey struct{}

// observed reports h's responses to Observe: the booking-flow work that
// got past every Flow wrapper (a refusal by the waiting room, a limit or
// the session rule is not the booking path's health), with its route,
// status, error code and latency. The latency runs from when the router
// took the request: the token's verification and the person's lookup are
// part of what a booking costs.
func (s *Server) observed(h http.Handler) http.Handler {
	if s.cfg.Observe == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start, ok := r.Context().Value(startKey{}).(time.Time)
		if !ok {
			start = time.Now()
		}
		ow := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(ow, r)
		s.cfg.Observe(r.Pattern, ow.status, ow.code, time.Since(start))
	})
}

// gate wraps h in the configured Gate.
func (s *Server) gate(h http.Handler) http.Handler {
	if s.cfg.Gate == nil {
		return h
	}
	return s.cfg.Gate(h)
}

// flow wraps h in the configured Flow wrappers, the first outermost.
func (s *Server) flow(h http.Handler) http.Handler {
	for i := len(s.cfg.Flow) - 1; i >= 0; i-- {
		h = s.cfg.Flow[i](h)
	}
	return h
}

// authed verifies the bearer token and that the registry knows its person,
// puts the identity in the request context, then runs the Flow wrappers
// and h.
func (s *Server) authed(h authedHandler) http.Handler {
	inner := s.flow(s.observed(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := IdentityFrom(r.Context())
		h(w, r, id)
	})))
	return s.gate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := auth.ParseAuthorization(r.Header.Get("Authorization"))
		if err == nil {
			var id auth.Identity
			id, err = s.cfg.Verifier.Verify(r.Context(), tok)
			if err == nil {
				if err := s.knownPerson(r.Context(), id.PersonID); err != nil {
					s.fail(w, r, id.PersonID, err)
					return
				}
				inner.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
				return
			}
		}
		s.log.Debug("token refused", "path", r.Pattern, "err", err)
		w.Header().Set("WWW-Authenticate", `Bearer realm="yeyak"`)
		s.fail(w, r, "", err)
	}))
}

// authedPlain verifies the bearer token and runs h without the Flow
// wrappers (signing out must work whatever the waiting room or the
// session rule says).
func (s *Server) authedPlain(h authedHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := auth.ParseAuthorization(r.Header.Get("Authorization"))
		if err == nil {
			var id auth.Identity
			if id, err = s.cfg.Verifier.Verify(r.Context(), tok); err == nil {
				h(w, r.WithContext(WithIdentity(r.Context(), id)), id)
				return
			}
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="yeyak"`)
		s.fail(w, r, "", err)
	})
}

// endSession signs the caller's session out.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	if err := s.cfg.EndSession(r.Context(), id.PersonID, id.Session); err != nil {
		s.fail(w, r, id.PersonID, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// knownPerson refuses, with 403 unknown_person, a token whose person the
// registry positively does not know — on every /v1/me and /v1/bookings
// call, not only when booking. When the registry cannot answer the call
// goes on: cancelling or listing must not depend on it, and the booking
// path applies the campaign's registry policy itself.
func (s *Server) knownPerson(ctx context.Context, personID string) error {
	if s.cfg.People == nil {
		return nil
	}
	_, err := s.cfg.People.Person(ctx, personID)
	switch booking.ErrorCode(err) {
	case booking.ENOTFOUND, booking.EUNKNOWNPERSON:
		return &booking.Error{Code: booking.EUNKNOWNPERSON, Message: "The registry does not know this person.", Err: err}
	}
	return nil
}

// maybeAuthed puts the caller's identity in the context when the request
// carries a valid token (authentication is optional on h's route).
func (s *Server) maybeAuthed(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := s.identity(r); ok {
			r = r.WithContext(WithIdentity(r.Context(), id))
		}
		h.ServeHTTP(w, r)
	})
}

// identity returns the caller's identity when the request carries a valid
// token, for endpoints where authentication is optional.
func (s *Server) identity(r *http.Request) (auth.Identity, bool) {
	tok, err := auth.ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return auth.Identity{}, false
	}
	id, err := s.cfg.Verifier.Verify(r.Context(), tok)
	return id, err == nil
}

var traceparentRE = regexp.MustCompile(`^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)

// traceparent returns the request's W3C trace context if well formed.
func traceparent(r *http.Request) string {
	if tp := r.Header.Get("traceparent"); traceparentRE.MatchString(tp) {
		return tp
	}
	return ""
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.cfg.Ready.Ping(ctx); err != nil {
			s.log.Warn("not ready", "err", err)
			writeCode(w, CodeUnavailable, "The database is not reachable or not migrated.")
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) openapi(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(OpenAPI())
}

func (s *Server) campaigns(w http.ResponseWriter, r *http.Request) {
	cs, err := s.cfg.Service.Campaigns(r.Context())
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	out := campaignsResponse{Campaigns: make([]campaignJSON, 0, len(cs))}
	for _, c := range cs {
		out.Campaigns = append(out.Campaigns, toCampaignJSON(c))
	}
	writeJSON(w, http.StatusOK, out)
}

// Clinic listing limits.
const (
	DefaultClinicLimit = 20
	MaxClinicLimit     = 200
	// MaxNearLimit is the most clinics one page of a near search returns.
	MaxNearLimit = clinicsearch.MaxLimit
	maxRadiusKm  = clinicsearch.MaxRadiusKm
)

// clinics answers from the snapshot. remaining is for the caller's wave:
// with a valid token, the wave the caller may book now (from the token's
// birth date, else People); without a token, or when the caller may not
// book now, the wave of the window now falls in (CurrentWave). With
// near=lat,lon it is a radius search through the geo index: clinics with a
// dose left for that wave, nearest first, paged by cursor.
func (s *Server) clinics(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	campaignID := q.Get("campaign")
	if err := checkID("campaign", campaignID); err != nil {
		s.fail(w, r, "", err)
		return
	}
	cq := ClinicQuery{CampaignID: campaignID, Region: q.Get("region"), Product: q.Get("product"), Limit: DefaultClinicLimit}
	if len(cq.Region) > 16 || len(cq.Product) > maxIDLen {
		s.fail(w, r, "", booking.Errorf(booking.EINVALID, "region or product is too long"))
		return
	}
	if v := q.Get("date"); v != "" {
		d, err := booking.ParseDate(v)
		if err != nil {
			s.fail(w, r, "", err)
			return
		}
		cq.Date = d
	}
	near, hasNear := q["near"]
	maxLimit := MaxClinicLimit
	if hasNear {
		maxLimit = MaxNearLimit
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			s.fail(w, r, "", booking.Errorf(booking.EINVALID, "limit must be an integer from 1 to %d", maxLimit))
			return
		}
		cq.Limit = n
	}
	var nq NearQuery
	if hasNear {
		lat, lon, err := parseNear(near[0])
		if err != nil {
			s.fail(w, r, "", err)
			return
		}
		nq = NearQuery{Lat: lat, Lon: lon, Cursor: q.Get("cursor")}
		if v := q.Get("radius_km"); v != "" {
			rk, err := strconv.ParseFloat(v, 64)
			if err != nil || checkRadius(rk, false) != nil {
				s.fail(w, r, "", booking.Errorf(booking.EINVALID, "radius_km must be more than 0 and at most %d", maxRadiusKm))
				return
			}
			nq.RadiusKm = rk
		}
	} else if q.Has("cursor") || q.Has("radius_km") {
		s.fail(w, r, "", booking.Errorf(booking.EINVALID, "cursor and radius_km go with near=lat,lon"))
		return
	}
	c := s.cfg.Snapshot.Campaign(campaignID)
	if c == nil {
		s.fail(w, r, "", booking.Errorf(booking.ENOTFOUND, "No such campaign."))
		return
	}
	cq.Wave = s.callerWave(r, c, s.now())
	out := clinicsResponse{Wave: cq.Wave, Clinics: []clinicJSON{}}
	if hasNear {
		nq.ClinicQuery = cq
		list, next, asOf, ok, err := s.cfg.Snapshot.Near(nq)
		if err != nil {
			s.fail(w, r, "", err)
			return
		}
		if !ok {
			s.fail(w, r, "", booking.Errorf(booking.ENOTFOUND, "No such campaign."))
			return
		}
		out.AsOf, out.NextCursor = asOf.UTC(), next
		for _, nc := range list {
			cj := toClinicJSON(nc.ClinicAvailability)
			d := math.Round(nc.DistanceKm*1000) / 1000
			cj.DistanceKm = &d
			out.Clinics = append(out.Clinics, cj)
		}
	} else {
		list, asOf, ok := s.cfg.Snapshot.Clinics(cq)
		if !ok {
			s.fail(w, r, "", booking.Errorf(booking.ENOTFOUND, "No such campaign."))
			return
		}
		out.AsOf = asOf.UTC()
		for _, ca := range list {
			out.Clinics = append(out.Clinics, toClinicJSON(ca))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func toClinicJSON(ca ClinicAvailability) clinicJSON {
	cj := clinicJSON{ID: ca.Clinic.ID, Name: ca.Clinic.Name, Region: ca.Clinic.Region, Lat: ca.Clinic.Lat, Lon: ca.Clinic.Lon,
		Availability: make([]availabilityJSON, 0, len(ca.Availability))}
	for _, a := range ca.Availability {
		cj.Availability = append(cj.Availability, availabilityJSON(a))
	}
	return cj
}

// parseNear reads near=lat,lon.
func parseNear(v string) (lat, lon float64, err error) {
	a, b, ok := strings.Cut(v, ",")
	if ok {
		lat, err = strconv.ParseFloat(strings.TrimSpace(a), 64)
		if err == nil {
			lon, err = strconv.ParseFloat(strings.TrimSpace(b), 64)
		}
	}
	if !ok || err != nil {
		return 0, 0, booking.Errorf(booking.EINVALID, "near must be lat,lon in degrees, e.g. near=37.5665,126.9780")
	}
	return lat, lon, checkPoint(lat, lon)
}

// callerWave is the wave whose doses the caller sees: with a verified
// identity of someone who may book now, their wave (from the token's birth
// date, else People); otherwise the wave of the window now falls in.
func (s *Server) callerWave(r *http.Request, c *booking.Campaign, now time.Time) int {
	wave := CurrentWave(c, now)
	id, ok := IdentityFrom(r.Context())
	if !ok {
		return wave
	}
	birth := id.BirthDate
	if birth.IsZero() && s.cfg.People != nil {
		if p, err := s.cfg.People.Person(r.Context(), id.PersonID); err == nil {
			birth = p.BirthDate
		}
	}
	if !birth.IsZero() {
		if d := booking.CanBook(c, birth, now); d.OK {
			wave = d.Wave
		}
	}
	return wave
}

func (s *Server) eligibility(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	campaignID := r.URL.Query().Get("campaign")
	if err := checkID("campaign", campaignID); err != nil {
		s.fail(w, r, id.PersonID, err)
		return
	}
	d, err := s.cfg.Service.Eligibility(r.Context(), id.PersonID, campaignID, id.BirthDate)
	if err != nil {
		s.fail(w, r, id.PersonID, err)
		return
	}
	out := eligibilityResponse{Eligible: d.OK, Reason: string(d.Reason), Provisional: d.Provisional}
	if d.OK {
		// "You may book from now": the caller is inside their window.
		out.Reason = ReasonEligible
		out.Wave = &d.Wave
		out.ClosesAt = timePtr(d.ClosesAt)
		out.CanBookFrom = timePtr(s.now())
	} else {
		out.CanBookFrom = timePtr(d.OpensAt) // null when no window is left
	}
	writeJSON(w, http.StatusOK, out)
}

// ReasonEligible is GET /v1/me/eligibility's reason when the caller may
// book now.
const ReasonEligible = "eligible"

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// keyAndBody reads the Idempotency-Key and the JSON body of a
// booking-creating request, answering the error itself when either is bad.
func (s *Server) keyAndBody(w http.ResponseWriter, r *http.Request, id auth.Identity) (key string, body []byte, ok bool) {
	key = r.Header.Get("Idempotency-Key")
	err := checkIdempotencyKey(key)
	if err == nil {
		body, err = readJSONBody(w, r)
	}
	if err != nil {
		s.fail(w, r, id.PersonID, err)
		return "", nil, false
	}
	return key, body, true
}

func (s *Server) book(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	key, body, ok := s.keyAndBody(w, r, id)
	if !ok {
		return
	}
	req, err := DecodeBookingRequest(body)
	if err != nil {
		s.fail(w, r, id.PersonID, err)
		return
	}
	s.idempotent(w, r, id, key, requestHash(req), func(ctx context.Context) (*booking.Booking, error) {
		return s.cfg.Service.Book(ctx, booking.BookRequest{
			PersonID: id.PersonID, CampaignID: req.CampaignID, ClinicID: req.ClinicID,
			Date: req.Date, Product: req.Product, BirthDate: id.BirthDate, Traceparent: traceparent(r),
		})
	})
}

// assign books the nearest clinic with a dose for the caller: candidates
// come from the snapshot's geo index, nearest first; the service tries them
// in order, passing over any sold out meanwhile.
func (s *Server) assign(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	key, body, ok := s.keyAndBody(w, r, id)
	if !ok {
		return
	}
	req, err := DecodeAssignRequest(body)
	if err != nil {
		s.fail(w, r, id.PersonID, err)
		return
	}
	c := s.cfg.Snapshot.Campaign(req.CampaignID)
	if c == nil {
		s.fail(w, r, id.PersonID, booking.Errorf(booking.ENOTFOUND, "No such campaign."))
		return
	}
	radius := req.RadiusKm
	if radius == 0 {
		radius = clinicsearch.DefaultRadiusKm
	}
	wave := s.callerWave(r, c, s.now())
	s.idempotent(w, r, id, key, assignHash(req), func(ctx context.Context) (*booking.Booking, error) {
		return s.cfg.Service.Assign(ctx, booking.AssignRequest{
			PersonID: id.PersonID, CampaignID: req.CampaignID, Product: req.Product, Dates: req.Dates,
			Candidates: s.cfg.Snapshot.Slots(req.CampaignID, wave, *req.Near.Lat, *req.Near.Lon, radius, req.Product, req.Dates),
			BirthDate:  id.BirthDate, Traceparent: traceparent(r),
		})
	})
}

// idempotent runs a booking-creating request once per (person, key): a
// replay with the same request hash answers the stored 201, another hash
// 422 idempotency_key_reused, a request still running 409; a failure frees
// the key so a retry runs again.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, id auth.Identity, key, hash string, run func(context.Context) (*booking.Booking, error)) {
	ctx := r.Context()
	rec, claimed, err := s.cfg.Idempotency.Claim(ctx, id.PersonID, key, hash)
	if err != nil {
		s.fail(w, r, id.PersonID, err)
		return
	}
	if !claimed {
		switch {
		case rec.RequestHash != hash:
			writeCode(w, CodeIdempotencyKeyReused, "This Idempotency-Key was already used with a different request.")
		case rec.Status == 0:
			writeCode(w, CodeIdempotencyInProgress, "A request with this Idempotency-Key is still in progress.")
		default:
			w.Header().Set("Idempotent-Replayed", "true")
			writeRaw(w, rec.Status, rec.Body)
		}
		return
	}
	// From here the key is ours: complete or release it even if the client
	// goes away.
	bg := context.WithoutCancel(ctx)
	b, err := run(ctx)
	if err != nil {
		// Nothing was written: free the key so a retry runs again.
		if rerr := s.cfg.Idempotency.Release(bg, id.PersonID, key); rerr != nil {
			s.log.Error("release idempotency key", "person", s.PersonHash(id.PersonID), "err", rerr)
		}
		s.fail(w, r, id.PersonID, err)
		return
	}
	s.cfg.Snapshot.Poke()
	resp, merr := marshalLine(bookingResponse{Booking: toBookingJSON(b)})
	if merr != nil {
		s.fail(w, r, id.PersonID, merr)
		return
	}
	if err := s.cfg.Idempotency.Complete(bg, id.PersonID, key, http.StatusCreated, resp); err != nil {
		s.log.Error("complete idempotency key; a retry with this key will see 409 idempotency_in_progress",
			"person", s.PersonHash(id.PersonID), "err", err)
	}
	w.Header().Set("Location", "/v1/bookings/"+b.ID)
	writeRaw(w, http.StatusCreated, resp)
}

func (s *Server) listBookings(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	bs, err := s.cfg.Service.Bookings(r.Context(), id.PersonID)
	if err != nil {
		s.fail(w, r, id.PersonID, err)
		return
	}
	out := bookingsResponse{Bookings: make([]bookingJSON, 0, len(bs))}
	for _, b := range bs {
		out.Bookings = append(out.Bookings, toBookingJSON(b))
	}
	writeJSON(w, http.StatusOK, out)
}

// bookingID checks the {id} path value; a malformed id is simply not found.
func bookingID(r *http.Request) (string, error) {
	v := r.PathValue("id")
	if checkID("id", v) != nil {
		return "", booking.Errorf(booking.ENOTFOUND, "No such booking.")
	}
	return v, nil
}

func (s *Server) getBooking(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	bid, err := bookingID(r)
	if err == nil {
		var b *booking.Booking
		if b, err = s.cfg.Service.Booking(r.Context(), id.PersonID, bid); err == nil {
			writeJSON(w, http.StatusOK, bookingResponse{Booking: toBookingJSON(b)})
			return
		}
	}
	s.fail(w, r, id.PersonID, err)
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	bid, err := bookingID(r)
	if err == nil {
		var b *booking.Booking
		if b, err = s.cfg.Service.Cancel(r.Context(), id.PersonID, bid, traceparent(r)); err == nil {
			s.cfg.Snapshot.Poke()
			writeJSON(w, http.StatusOK, bookingResponse{Booking: toBookingJSON(b)})
			return
		}
	}
	s.fail(w, r, id.PersonID, err)
}

func (s *Server) reschedule(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	bid, err := bookingID(r)
	if err != nil {
		s.fail(w, r, id.PersonID, err)
		return
	}
	body, err := readJSONBody(w, r)
	if err != nil {
		s.fail(w, r, id.PersonID, err)
		return
	}
	req, err := DecodeRescheduleRequest(body)
	if err != nil {
		s.fail(w, r, id.PersonID, err)
		return
	}
	b, err := s.cfg.Service.Reschedule(r.Context(), id.PersonID, bid, req.ClinicID, req.Date, traceparent(r))
	if err != nil {
		s.fail(w, r, id.PersonID, err)
		return
	}
	s.cfg.Snapshot.Poke()
	writeJSON(w, http.StatusOK, bookingResponse{Booking: toBookingJSON(b)})
}
