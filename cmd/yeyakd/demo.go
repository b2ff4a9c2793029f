package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/httpapi/auth"
	"github.com/yeyak/yeyak/booking/sqlstore"
	"github.com/yeyak/yeyak/mocks/idp"
	"github.com/yeyak/yeyak/mocks/population"
	"github.com/yeyak/yeyak/mocks/registry"
)

// Demo mode: what --demo seeds and mounts.
const (
	demoCampaignID  = "demo"
	demoProvider    = "demo"
	demoDosesPerDay = 110 // 10 per wave over 11 waves
	demoVaxDays     = 14
)

// demo holds the demo's synthetic world: the population in the mock
// registry, the generated clinics and supply, and the mock identity provider.
type demo struct {
	pop      population.Config
	registry *registry.Registry
	idp      *idp.IdP
	campaign *booking.Campaign
	clinics  []booking.Clinic
	now      func() time.Time
	log      *slog.Logger
}

// demoCampaign is a campaign whose rotation starts today in Seoul with
// windows open all day, so the tour works at any hour: 10 rotation days,
// then the open phase; vaccination from tomorrow for two weeks.
func demoCampaign(now time.Time, pop population.Config) *booking.Campaign {
	seoul, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		seoul = time.FixedZone("KST", 9*3600)
	}
	today := booking.DateOf(now.In(seoul))
	return &booking.Campaign{
		ID:       demoCampaignID,
		Name:     "Demo campaign (rotation from " + today.String() + ")",
		Products: []booking.Product{{ID: "pfizer", Doses: 2, IntervalDays: 21, ToleranceDays: 3}, {ID: "moderna", Doses: 2, IntervalDays: 28, ToleranceDays: 3}},
		BornFrom: population.DefaultBornFrom, BornTo: population.DefaultBornTo,
		VaccinationFrom: today.AddDays(1), VaccinationTo: today.AddDays(demoVaxDays),
		TimeZone: "Asia/Seoul",
		Phases: []booking.Phase{
			{Kind: booking.PhaseRotation, Starts: today, Days: 10, Opens: 0, Closes: 24 * time.Hour, ChangeOutsideWindow: true},
			{Kind: booking.PhaseOpen, Starts: today.AddDays(10), Opens: 0},
		},
		OpenUntil: today.AddDays(30).In(seoul).Add(18 * time.Hour),
	}
}

// newDemo seeds the database (idempotently: capacities are set, bookings
// kept) and builds the mock registry and identity provider.
func newDemo(ctx context.Context, cfg *config, db *sqlstore.DB, now func() time.Time, log *slog.Logger) (*demo, error) {
	pop := population.Config{Seed: 2021, People: cfg.DemoPeople, Clinics: cfg.DemoClinics}
	d := &demo{pop: pop, now: now, log: log}
	d.campaign = demoCampaign(now(), pop)
	d.campaign.RegistryPolicy = booking.RegistryPolicy(cfg.DemoPolicy)
	if err := d.campaign.Validate(); err != nil {
		return nil, fmt.Errorf("demo campaign: %w", err)
	}
	d.clinics = population.Clinics(pop)
	start := time.Now()
	supply := population.Supply(pop, d.campaign, d.clinics, demoDosesPerDay)
	for i := range supply {
		supply[i].CampaignID = d.campaign.ID
	}
	// A fresh database is seeded in bulk; a restart on an existing one
	// (the campaign has quota rows: ECONFLICT) keeps its bookings and only
	// refreshes the campaign (its dates move with today), clinics and
	// capacities.
	res, err := db.SeedCampaign(ctx, sqlstore.Seed{Campaign: d.campaign, Clinics: d.clinics, Supply: supply})
	quotaRows := res.QuotaRows
	switch booking.ErrorCode(err) {
	case "":
	case booking.ECONFLICT:
		if err := db.PutCampaign(ctx, d.campaign); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		if err := db.PutClinics(ctx, d.clinics); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		var quotas []booking.Quota
		for _, s := range supply {
			quotas = append(quotas, booking.SplitSupply(d.campaign, s)...)
		}
		if err := db.SetQuotas(ctx, quotas); err != nil {
			return nil, fmt.Errorf("demo quotas: %w", err)
		}
		quotaRows = len(quotas)
	default:
		return nil, fmt.Errorf("demo: %w", err)
	}
	log.Info("demo data seeded", "campaign", d.campaign.ID, "clinics", len(d.clinics), "quota_rows", quotaRows,
		"people", pop.Size(), "took", time.Since(start).Round(time.Millisecond).String())
	d.registry = registry.New(registry.Config{Population: pop, Now: now, Logger: log})
	p, err := idp.New(idp.Config{Now: now, Providers: []idp.ProviderConfig{{Name: demoProvider, Issuer: "https://idp.demo.yeyak.invalid/demo", Audience: "yeyak"}}})
	if err != nil {
		return nil, err
	}
	d.idp = p
	return d, nil
}

// provider is the demo identity provider as a trusted issuer (in-process keys).
func (d *demo) provider() auth.ProviderConfig {
	iss, _ := d.idp.Issuer(demoProvider)
	aud, _ := d.idp.Audience(demoProvider)
	return auth.ProviderConfig{Name: demoProvider, Issuer: iss, Audience: aud,
		Keys: func(ctx context.Context) (jwk.Set, error) { return d.idp.PublicSet(ctx, demoProvider) }}
}

// demoSignInPattern is the demo's sign-in route (in the crowd's lane).
const demoSignInPattern = "POST /demo/token"

// handlers are mounted on the public listener in demo mode only.
func (d *demo) handlers() map[string]http.Handler {
	return map[string]http.Handler{
		demoSignInPattern:               d.idp.DemoTokenHandler(demoProvider, 30*time.Minute, d.birthDate),
		"GET /demo/people":              http.HandlerFunc(d.people),
		"GET /idp/{provider}/jwks.json": d.idp.Handler(),
	}
}

// birthDate is what the demo identity provider knows of a person: anyone
// of the synthetic population (including people the registry does not
// know, who then get 403 unknown_person from the API).
func (d *demo) birthDate(_ context.Context, id string) (booking.Date, error) {
	i, ok := population.IndexOf(id)
	if !ok || i >= d.pop.Size() {
		return booking.Date{}, fmt.Errorf("unknown person")
	}
	return population.PersonAt(d.pop, i).BirthDate, nil
}

type demoPerson struct {
	PersonID    string       `json:"person_id"`
	BirthDate   booking.Date `json:"birth_date"`
	Digit       int          `json:"digit"`
	MayBookNow  bool         `json:"may_book_now"`
	Reason      string       `json:"reason,omitempty"`
	CanBookFrom *time.Time   `json:"can_book_from,omitempty"`
}

// people serves GET /demo/people?digit=D&limit=N: sample people of the
// population whose day of birth ends in D (default: today's digit), with
// whether they may book now.
func (d *demo) people(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	digit := d.todaysDigit()
	if v := q.Get("digit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 9 {
			demoError(w, http.StatusBadRequest, "digit must be 0..9")
			return
		}
		digit = n
	}
	limit := 5
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			demoError(w, http.StatusBadRequest, "limit must be 1..100")
			return
		}
		limit = n
	}
	out := []demoPerson{}
	for _, p := range population.PeopleWithDigit(d.pop, digit, limit) {
		out = append(out, d.describe(p))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"digit": digit, "people": out})
}

func (d *demo) describe(p population.Person) demoPerson {
	dp := demoPerson{PersonID: p.ID, BirthDate: p.BirthDate, Digit: p.Digit()}
	if !p.Eligible() {
		dp.Reason = string(booking.ENOTELIGIBLE)
		return dp
	}
	dec := booking.CanBook(d.campaign, p.BirthDate, d.now())
	dp.MayBookNow = dec.OK
	if !dec.OK {
		dp.Reason = string(dec.Reason)
		if !dec.OpensAt.IsZero() {
			t := dec.OpensAt.UTC()
			dp.CanBookFrom = &t
		}
	}
	return dp
}

func (d *demo) todaysDigit() int {
	loc := d.campaign.Location()
	today := booking.DateOf(d.now().In(loc))
	k := today.Sub(d.campaign.Phases[0].Starts)
	if k < 0 || k >= 10 {
		return today.Day % 10
	}
	return d.campaign.Phases[0].RotationDigit(k)
}

func demoError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": "invalid_request", "message": msg, "retryable": false}})
}

// tourPerson is someone who may book now, for the printed tour.
func (d *demo) tourPerson() (population.Person, bool) {
	for _, p := range population.PeopleWithDigit(d.pop, d.todaysDigit(), 200) {
		if p.Eligible() && booking.CanBook(d.campaign, p.BirthDate, d.now()).OK {
			return p, true
		}
	}
	return population.Person{}, false
}

// baseURL turns a listen address into a URL curl can use.
func baseURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// printTour prints a copy-paste curl tour.
func (d *demo) printTour(w io.Writer, listen string) {
	base := baseURL(listen)
	p, ok := d.tourPerson()
	if !ok {
		fmt.Fprintln(w, "demo: nobody may book right now (is --now outside the campaign?)")
		return
	}
	cl := d.clinics[0]
	product := cl.Products[0]
	date := d.campaign.VaccinationFrom
	body := fmt.Sprintf(`{"campaign_id":"%s","clinic_id":"%s","date":"%s","product":"%s"}`, d.campaign.ID, cl.ID, date, product)
	bearer := `-H "Authorization: Bearer $TOKEN"`
	var b strings.Builder
	fmt.Fprintf(&b, "\n=== yeyak demo is up: %s (ops: metrics and controls on the ops listener) ===\n", base)
	fmt.Fprintf(&b, "Today's rotation digit is %d. Paste these lines into a shell:\n\n", d.todaysDigit())
	fmt.Fprintf(&b, "# people whose rotation day is today, and whether they may book now\n")
	fmt.Fprintf(&b, "curl -s '%s/demo/people?digit=%d&limit=3'; echo\n\n", base, d.todaysDigit())
	fmt.Fprintf(&b, "# a token from the mock identity provider for %s (born %s)\n", p.ID, p.BirthDate)
	fmt.Fprintf(&b, "TOKEN=$(curl -s -X POST %s/demo/token -H 'Content-Type: application/json' -d '{\"person_id\":\"%s\"}' | sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/'); echo \"$TOKEN\" | cut -c1-40\n\n", base, p.ID)
	fmt.Fprintf(&b, "# may I book, and from when?\ncurl -s %s '%s/v1/me/eligibility?campaign=%s'; echo\n\n", bearer, base, d.campaign.ID)
	fmt.Fprintf(&b, "# clinics with what my wave can still book\ncurl -s %s '%s/v1/clinics?campaign=%s&date=%s&product=%s&limit=3'; echo\n\n", bearer, base, d.campaign.ID, date, product)
	book := fmt.Sprintf("curl -s -X POST %s/v1/bookings %s -H 'Content-Type: application/json' -H \"Idempotency-Key: $KEY\" -d '%s'", base, bearer, body)
	fmt.Fprintf(&b, "# book (201) with a fresh Idempotency-Key, keeping the booking id\nKEY=tour-$(date +%%s%%N)\nBOOKING=$(%s | tee /dev/stderr | sed -E 's/^\\{\"booking\":\\{\"id\":\"([^\"]+)\".*/\\1/'); echo\n\n", book)
	fmt.Fprintf(&b, "# the same request again: the same answer is replayed, no second booking\n%s -i | grep -iE '^HTTP|replayed|^\\{'\n\n", book)
	fmt.Fprintf(&b, "# my bookings\ncurl -s %s %s/v1/bookings; echo\n\n", bearer, base)
	fmt.Fprintf(&b, "# cancel (200, status cancelled); the dose returns to its wave\ncurl -s -X DELETE %s %s/v1/bookings/$BOOKING; echo\n\n", bearer, base)
	fmt.Fprintf(&b, "# the API document\ncurl -s %s/v1/openapi.yaml | head -5\n", base)
	fmt.Fprint(w, b.String())
}
