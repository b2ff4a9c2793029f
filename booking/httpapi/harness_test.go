package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/httpapi"
	"github.com/yeyak/yeyak/booking/httpapi/auth"
	"github.com/yeyak/yeyak/booking/sqlstore"
	"github.com/yeyak/yeyak/mocks/idp"
	"github.com/yeyak/yeyak/mocks/testenv"
)

// The test world: Seoul, 2026-08-09 12:00, the first day of a rotation
// that serves birth-day digit 9.
var (
	seoul, _ = time.LoadLocation("Asia/Seoul")
	today    = booking.MustDate("2026-08-09")
	testNow  = today.In(seoul).Add(12 * time.Hour)
	vday     = today.AddDays(3)
)

// People of the test world.
const (
	personA       = "P0000000001" // digit 9: may book today
	personB       = "P0000000002" // digit 9: may book today
	personC       = "P0000000003" // digit 2: not their rotation day
	personD       = "P0000000004" // digit 9: may book today
	personUnknown = "P0000000099" // not in the registry
	personDown    = "P0000000098" // digit 9; the registry cannot answer for them
)

var births = map[string]booking.Date{
	personA: booking.MustDate("1990-05-19"),
	personB: booking.MustDate("1985-03-29"),
	personC: booking.MustDate("1991-07-12"),
	personD: booking.MustDate("1979-11-09"),
}

type people struct{}

func (people) Person(_ context.Context, id string) (booking.Person, error) {
	if id == personDown {
		return booking.Person{}, booking.Errorf(booking.EREGISTRYDOWN, "registry unavailable (test)")
	}
	b, ok := births[id]
	if !ok {
		return booking.Person{}, booking.Errorf(booking.EUNKNOWNPERSON, "unknown")
	}
	return booking.Person{ID: id, BirthDate: b}, nil
}

func testCampaign() *booking.Campaign {
	return &booking.Campaign{
		ID: "c2026", Name: "Test campaign",
		Products: []booking.Product{{ID: "pfizer", Doses: 2, IntervalDays: 42}, {ID: "janssen"}},
		BornFrom: booking.MustDate("1950-01-01"), BornTo: booking.MustDate("2005-12-31"),
		VaccinationFrom: today.AddDays(1), VaccinationTo: today.AddDays(40),
		TimeZone: "Asia/Seoul",
		Phases: []booking.Phase{
			{Kind: booking.PhaseRotation, Starts: today, Days: 10, Opens: 0, Closes: 24 * time.Hour},
			{Kind: booking.PhaseOpen, Starts: today.AddDays(10), Opens: 0},
		},
		OpenUntil: today.AddDays(30).In(seoul),
	}
}

var testClinics = []booking.Clinic{
	{ID: "C000001", Name: "Jongno Clinic", Region: "11-110", Lat: 37.57, Lon: 126.98, Products: []string{"pfizer", "janssen"}},
	{ID: "C000002", Name: "Haeundae Clinic", Region: "26-350", Lat: 35.16, Lon: 129.16, Products: []string{"pfizer"}},
	{ID: "C000003", Name: "Gangnam Clinic", Region: "11-680", Lat: 37.50, Lon: 127.04, Products: []string{"pfizer"}},
}

// env is one API server over a real store.
type env struct {
	t      *testing.T
	db     *sqlstore.DB
	srv    *httptest.Server
	idp    *idp.IdP
	snap   *httpapi.Snapshot
	client *http.Client
	logs   *syncBuffer
	svc    httpapi.Service
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// sqlIdempotency adapts *sqlstore.DB (cmd/yeyakd has the same adapter).
type sqlIdempotency struct{ db *sqlstore.DB }

func (s sqlIdempotency) Claim(ctx context.Context, p, k, h string) (*httpapi.IdempotencyRecord, bool, error) {
	rec, claimed, err := s.db.ClaimIdempotencyKey(ctx, p, k, h)
	if err != nil || claimed {
		return nil, claimed, err
	}
	return &httpapi.IdempotencyRecord{RequestHash: rec.RequestHash, Status: rec.StatusCode, Body: rec.ResponseBody}, false, nil
}
func (s sqlIdempotency) Complete(ctx context.Context, p, k string, status int, body []byte) error {
	return s.db.CompleteIdempotencyKey(ctx, p, k, status, body)
}
func (s sqlIdempotency) Release(ctx context.Context, p, k string) error {
	return s.db.ReleaseIdempotencyKey(ctx, p, k)
}

type backend struct {
	name string
	dsn  func(t *testing.T) string
}

var backends = []backend{
	{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "api.db") }},
	{"postgres", func(t *testing.T) string { return testenv.Postgres(t) }},
}

// forEachBackend runs f on SQLite and on PostgreSQL.
func forEachBackend(t *testing.T, f func(t *testing.T, e *env)) {
	forEachBackendWith(t, nil, f)
}

// forEachBackendWith is forEachBackend with the API's configuration tweaked.
func forEachBackendWith(t *testing.T, tweak func(t *testing.T, cfg *httpapi.Config), f func(t *testing.T, e *env)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			var tw func(*httpapi.Config)
			if tweak != nil {
				tw = func(cfg *httpapi.Config) { tweak(t, cfg) }
			}
			f(t, newEnvWith(t, b.dsn(t), nil, tw))
		})
	}
}

// newEnv opens a store at dsn, seeds the test world and starts the API.
// wrap, when set, wraps the booking service (to inject faults).
func newEnv(t *testing.T, dsn string, wrap func(httpapi.Service) httpapi.Service) *env {
	t.Helper()
	return newEnvWith(t, dsn, wrap, nil)
}

// newEnvWith is newEnv with tweak applied to the API's configuration (it
// may use the env's verifier through cfg.Verifier).
func newEnvWith(t *testing.T, dsn string, wrap func(httpapi.Service) httpapi.Service, tweak func(cfg *httpapi.Config)) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, dsn, sqlstore.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	c := testCampaign()
	if err := c.Validate(); err != nil {
		t.Fatalf("test campaign: %v", err)
	}
	if err := db.PutCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := db.PutClinics(ctx, testClinics); err != nil {
		t.Fatal(err)
	}
	var quotas []booking.Quota
	for _, cl := range testClinics {
		for _, p := range cl.Products {
			for d := range 3 {
				quotas = append(quotas, booking.SplitSupply(c, booking.Supply{CampaignID: c.ID, ClinicID: cl.ID, Date: vday.AddDays(d), Product: p, Dose: 1, Doses: 22})...)
				// Dose-2 supply an interval later for two-dose products.
				if prod, ok := c.Product(p); ok && prod.DosesOf() >= 2 {
					quotas = append(quotas, booking.SplitSupply(c, booking.Supply{CampaignID: c.ID, ClinicID: cl.ID,
						Date: vday.AddDays(d + prod.IntervalDays), Product: p, Dose: 2, Doses: 22})...)
				}
			}
		}
	}
	if err := db.SetQuotas(ctx, quotas); err != nil {
		t.Fatal(err)
	}

	p, err := idp.New(idp.Config{Now: func() time.Time { return testNow }, Providers: []idp.ProviderConfig{{Name: "pass"}, {Name: "kakao", Algorithm: "RS256"}}})
	if err != nil {
		t.Fatal(err)
	}
	var provs []auth.ProviderConfig
	for _, name := range []string{"pass", "kakao"} {
		iss, _ := p.Issuer(name)
		provs = append(provs, auth.ProviderConfig{Name: name, Issuer: iss, Audience: "yeyak",
			Keys: func(ctx context.Context) (jwk.Set, error) { return p.PublicSet(ctx, name) }})
	}
	v, err := auth.NewVerifier(auth.Config{Providers: provs, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}

	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(io.MultiWriter(logs, testWriter(t)), &slog.HandlerOptions{Level: slog.LevelDebug}))
	// CampaignTTL -1: tests change campaigns under the service's feet.
	svc, err := booking.NewService(booking.ServiceConfig{Store: db, People: people{}, Now: func() time.Time { return testNow }, Logger: logger, CampaignTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	var api httpapi.Service = svc
	if wrap != nil {
		api = wrap(svc)
	}
	snap := httpapi.NewSnapshot(db, httpapi.SnapshotConfig{Logger: logger, Now: func() time.Time { return testNow }})
	if err := snap.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(snap.Close)
	cfg := httpapi.Config{
		Service: api, Verifier: v, Idempotency: sqlIdempotency{db}, Snapshot: snap, Ready: db, People: people{},
		Logger: logger, Now: func() time.Time { return testNow },
	}
	if tweak != nil {
		tweak(&cfg)
	}
	h, err := httpapi.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, db: db, srv: srv, idp: p, snap: snap, logs: logs, svc: api,
		client: &http.Client{Transport: newValidator(t, http.DefaultTransport)}}
}

func testWriter(t *testing.T) io.Writer {
	if os.Getenv("YEYAK_TEST_LOGS") != "" {
		return tWriter{t}
	}
	return io.Discard
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// token returns a valid token for person from provider "pass", with the
// person's birth date claim.
func (e *env) token(person string) string {
	e.t.Helper()
	birth := births[person]
	if person == personDown {
		birth = booking.MustDate("1988-02-19") // the token's birth date claim
	}
	tok, err := e.idp.Issue("pass", person, birth, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// code returns error.code of an error reply.
func (r reply) code(t *testing.T) string {
	t.Helper()
	m := r.json(t)
	e, ok := m["error"].(map[string]any)
	if !ok {
		t.Fatalf("not an error body: %s", r.body)
	}
	return e["code"].(string)
}

// do sends a request; hdr holds extra headers ("Authorization" is set from
// tok when tok is not empty).
func (e *env) do(method, path, tok string, body string, hdr map[string]string) reply {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

func (e *env) book(tok, key, body string) reply {
	e.t.Helper()
	return e.do(http.MethodPost, "/v1/bookings", tok, body, map[string]string{"Idempotency-Key": key})
}

func bookBody(clinic string, date booking.Date, product string) string {
	return `{"campaign_id":"c2026","clinic_id":"` + clinic + `","date":"` + date.String() + `","product":"` + product + `"}`
}

// counts is what a refused request must not change.
type counts struct {
	Bookings, Outbox, Keys, Booked int
}

func (e *env) counts() counts {
	e.t.Helper()
	var c counts
	x := e.db.DB()
	for _, q := range []struct {
		dst *int
		sql string
	}{
		{&c.Bookings, "SELECT COUNT(*) FROM bookings"},
		{&c.Outbox, "SELECT COUNT(*) FROM outbox"},
		{&c.Keys, "SELECT COUNT(*) FROM idempotency_keys"},
		{&c.Booked, "SELECT COALESCE(SUM(booked),0) FROM quotas"},
	} {
		if err := x.Get(q.dst, q.sql); err != nil {
			e.t.Fatalf("%s: %v", q.sql, err)
		}
	}
	return c
}

// validator checks every response against openapi.yaml.
type validator struct {
	t      *testing.T
	router routers.Router
	base   http.RoundTripper
}

func loadDoc(t testing.TB) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(httpapi.OpenAPI())
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is invalid: %v", err)
	}
	return doc
}

func init() {
	// The waiting-room page is HTML: validate it as a string.
	openapi3filter.RegisterBodyDecoder("text/html", func(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(body)
		return string(b), err
	})
}

func newValidator(t *testing.T, base http.RoundTripper) *validator {
	doc := loadDoc(t)
	doc.Servers = nil // match any host: the test server's port is random
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &validator{t: t, router: r, base: base}
}

func (v *validator) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := v.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		// Not a documented route: it must still answer the error shape.
		var m struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if resp.StatusCode < 400 || json.Unmarshal(body, &m) != nil || m.Error.Code == "" {
			v.t.Errorf("%s %s: undocumented route answered %d %s", req.Method, req.URL.Path, resp.StatusCode, body)
		}
		return resp, nil
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		v.t.Errorf("%s %s → %d does not match openapi.yaml: %v\nbody: %s", req.Method, req.URL.Path, resp.StatusCode, err, body)
	}
	return resp, nil
}
