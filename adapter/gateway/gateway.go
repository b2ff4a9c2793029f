package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/yeyak/yeyak/adapter"
)

// MaxBatch is the most ids the gateway's batch endpoint takes in one call.
const MaxBatch = 1000

// Config configures a Client. Zero values mean the documented defaults;
// only BaseURL is required.
type Config struct {
	// BaseURL is the gateway's root, e.g. "http://registry-gw:7070"; the
	// API is under BaseURL + "/api/v1". Required.
	BaseURL string
	// MaxRetries is how many times a failed attempt is retried (so at most
	// MaxRetries+1 attempts per call, within the caller's context).
	// If MaxRetries is 0 it is 2; a negative value disables retries.
	MaxRetries int
	// RetryWaitMin and RetryWaitMax bound the jittered exponential backoff
	// between attempts: before retry n the client waits a random duration
	// in [d/2, d] where d = min(RetryWaitMin·2ⁿ, RetryWaitMax).
	// Defaults: 50ms and 1s.
	RetryWaitMin, RetryWaitMax time.Duration
	// RetryAfterMax is the longest Retry-After (on 429 and 503) the client
	// waits out itself; a longer one ends the call at once with
	// ErrUnavailable so the caller's own backoff takes over.
	// If RetryAfterMax is <= 0 it is 5s.
	RetryAfterMax time.Duration
	// AttemptTimeout bounds each attempt (connect, send, read the whole
	// answer). If AttemptTimeout is <= 0 it is 2s.
	AttemptTimeout time.Duration
	// Timeout bounds each request to the gateway as a whole: every attempt,
	// the backoff between them and any Retry-After wait, so that a call
	// made without a deadline (or with a long one) still ends. The
	// caller's context, when shorter, wins. A Retry-After that would end
	// past this deadline is not waited out: the call fails at once with
	// ErrUnavailable. EligibilityBulk sends one request per BatchSize ids,
	// and each is bounded by Timeout (the caller's context, e.g. the
	// facade's BulkTimeout, bounds the whole list). If Timeout is <= 0 it
	// is 10s: the default three attempts of at most 2s, their backoff, and
	// a Retry-After of a few seconds fit in it.
	Timeout time.Duration
	// MaxConnsPerHost caps the connections to the gateway (the registry
	// has a small budget); requests beyond it wait for a connection,
	// within their timeouts. If MaxConnsPerHost is <= 0 it is 16.
	MaxConnsPerHost int
	// BatchSize is the number of ids per batch request in EligibilityBulk.
	// If BatchSize is <= 0 or > MaxBatch it is MaxBatch.
	BatchSize int
	// Logger receives one line per retry (route and attempt, never ids).
	// If Logger is nil slog.Default() is used.
	Logger *slog.Logger
	// Transport replaces the pooled transport built from MaxConnsPerHost
	// (tests). Nil means the default.
	Transport http.RoundTripper
}

// Client is an adapter.Registry over the registry's HTTP gateway
// (docs/legacy-gateway.md), with retries through go-retryablehttp.
//
// Every call the Registry interface makes is safe to retry, which is why
// the client retries them all: the person reads (GET) and the batch read
// (a POST, but it changes nothing) have no effect; a reservation is PUT
// and DELETEd by its id (the yeyak booking id), and the gateway applies
// both idempotently — a second PUT of the same id answers 200 and changes
// nothing, a DELETE of a cancelled or unknown id answers 200 — so an
// attempt whose answer was lost can be repeated without doubling its
// effect. Only connection errors, 429 and 5xx (except 501) are retried;
// other 4xx are final.
type Client struct {
	base    string
	cfg     Config
	http    *retryablehttp.Client
	log     *slog.Logger
	batchSz int
}

// New returns a Client for the gateway at cfg.BaseURL.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("gateway: BaseURL %q is not an http(s) URL", cfg.BaseURL)
	}
	switch {
	case cfg.MaxRetries == 0:
		cfg.MaxRetries = 2
	case cfg.MaxRetries < 0:
		cfg.MaxRetries = 0
	}
	if cfg.RetryWaitMin <= 0 {
		cfg.RetryWaitMin = 50 * time.Millisecond
	}
	if cfg.RetryWaitMax <= 0 {
		cfg.RetryWaitMax = time.Second
	}
	if cfg.RetryWaitMax < cfg.RetryWaitMin {
		cfg.RetryWaitMax = cfg.RetryWaitMin
	}
	if cfg.RetryAfterMax <= 0 {
		cfg.RetryAfterMax = 5 * time.Second
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 2 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxConnsPerHost <= 0 {
		cfg.MaxConnsPerHost = 16
	}
	if cfg.BatchSize <= 0 || cfg.BatchSize > MaxBatch {
		cfg.BatchSize = MaxBatch
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	tr := cfg.Transport
	if tr == nil {
		t := cleanhttp.DefaultPooledTransport()
		t.MaxConnsPerHost = cfg.MaxConnsPerHost
		t.MaxIdleConnsPerHost = cfg.MaxConnsPerHost
		t.DialContext = (&net.Dialer{Timeout: cfg.AttemptTimeout, KeepAlive: 30 * time.Second}).DialContext
		tr = t
	}
	c := &Client{base: strings.TrimRight(cfg.BaseURL, "/") + "/api/v1", cfg: cfg, log: cfg.Logger, batchSz: cfg.BatchSize}
	c.http = &retryablehttp.Client{
		HTTPClient:   &http.Client{Transport: tr, Timeout: cfg.AttemptTimeout},
		Logger:       nil, // its lines carry URLs, and URLs carry person ids
		RetryWaitMin: cfg.RetryWaitMin,
		RetryWaitMax: cfg.RetryWaitMax,
		RetryMax:     cfg.MaxRetries,
		CheckRetry:   c.checkRetry,
		Backoff:      c.backoff,
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
		RequestLogHook: func(_ retryablehttp.Logger, r *http.Request, attempt int) {
			if attempt > 0 {
				c.log.Info("registry gateway retry", "route", routeOf(r.Context()), "attempt", attempt+1)
			}
		},
	}
	return c, nil
}

type routeKey struct{}

// routeOf is the request's route template ("GET /persons/{id}"), which
// logs and errors use instead of the URL (the URL holds a person id).
func routeOf(ctx context.Context) string {
	s, _ := ctx.Value(routeKey{}).(string)
	return s
}

// checkRetry: connection errors, 429 and 5xx (not 501) are retried, other
// statuses are final; nothing is retried once the call's context is done,
// or when the server asks for a longer wait than RetryAfterMax or than the
// time left before the call's deadline (waiting would only end in a
// timeout).
func (c *Client) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d, ok := retryAfter(resp); ok {
			if d > c.cfg.RetryAfterMax {
				return false, nil
			}
			if dl, ok := ctx.Deadline(); ok && d >= time.Until(dl) {
				return false, nil
			}
		}
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}

// backoff honours Retry-After on 429 and 503, and otherwise waits a
// jittered exponential time ("equal jitter": [d/2, d]), so that callers
// failing together do not retry together.
func (c *Client) backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d, ok := retryAfter(resp); ok {
			return d
		}
	}
	d := maxWait
	if attempt < 30 {
		d = min(minWait<<attempt, maxWait)
	}
	half := d / 2
	return half + rand.N(half+1)
}

// retryAfter parses Retry-After as seconds or an HTTP date.
func retryAfter(resp *http.Response) (time.Duration, bool) {
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

// apiError is the gateway's error body.
type apiError struct {
	ResultCode string `json:"resultCode"`
	ResultMsg  string `json:"resultMsg"`
}

// do sends one logical call (with retries) and decodes a 2xx JSON answer
// into out (if not nil). route names the call in logs and errors.
func (c *Client) do(ctx context.Context, route, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	ctx = context.WithValue(ctx, routeKey{}, route)
	var raw any
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("gateway %s: encode: %w", route, err)
		}
		raw = b
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, method, c.base+path, raw)
	if err != nil {
		return fmt.Errorf("gateway %s: %w", route, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil && resp != nil {
		resp.Body.Close()
	}
	if err != nil {
		// Strip the URL (it holds ids) from transport errors.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("gateway %s: %w: %w", route, adapter.ErrUnavailable, ctx.Err())
		}
		return fmt.Errorf("gateway %s: %w: %w", route, adapter.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("gateway %s: read answer: %w: %w", route, adapter.ErrUnavailable, err)
	}
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("gateway %s: decode answer: %w", route, err)
		}
		return nil
	case s == http.StatusNotFound:
		return fmt.Errorf("gateway %s: %w", route, adapter.ErrNotFound)
	case s == http.StatusUnprocessableEntity || s == http.StatusBadRequest:
		// 422 is the registry's business "no"; 400 says the request is
		// malformed, which no retry will fix — the mock's and the Oracle
		// adapter's RecordBooking call that a rejection too.
		var e apiError
		_ = json.Unmarshal(data, &e)
		return fmt.Errorf("gateway %s: status %d %s %s: %w", route, s, e.ResultCode, e.ResultMsg, adapter.ErrRejected)
	case s == http.StatusTooManyRequests || s >= 500:
		return fmt.Errorf("gateway %s: status %d: %w", route, s, adapter.ErrUnavailable)
	default:
		var e apiError
		_ = json.Unmarshal(data, &e)
		return fmt.Errorf("gateway %s: status %d %s %s (not retried)", route, s, e.ResultCode, e.ResultMsg)
	}
}

type personJSON struct {
	PrsnID       string     `json:"prsnId"`
	BrthDt       string     `json:"brthDt"`
	CntraYn      string     `json:"cntraYn"`
	ExclYn       string     `json:"exclYn"`
	Doses        []doseJSON `json:"doses"`
	Reservations []rsvtJSON `json:"reservations"`
}

type doseJSON struct {
	DoseNo int    `json:"doseNo"`
	PrdtCd string `json:"prdtCd"`
	VaccDt string `json:"vaccDt"`
}

type rsvtJSON struct {
	RsvtID string `json:"rsvtId,omitempty"`
	PrsnID string `json:"prsnId"`
	CmpnID string `json:"cmpnId"`
	OrgID  string `json:"orgId"`
	RsvtDt string `json:"rsvtDt"`
	PrdtCd string `json:"prdtCd"`
	DoseNo int    `json:"doseNo"`
}

const yyyymmdd = "20060102"

func parseDate(s string) (time.Time, error) {
	return time.Parse(yyyymmdd, strings.TrimSpace(s))
}

func (p personJSON) record() (adapter.Record, error) {
	birth, err := parseDate(p.BrthDt)
	if err != nil {
		return adapter.Record{}, fmt.Errorf("birth date: %w", err)
	}
	r := adapter.Record{
		PersonID: p.PrsnID, BirthDate: birth,
		Contraindicated: p.CntraYn == "Y", Excluded: p.ExclYn == "Y",
	}
	for _, d := range p.Doses {
		dt, err := parseDate(d.VaccDt)
		if err != nil {
			return adapter.Record{}, fmt.Errorf("dose %d date: %w", d.DoseNo, err)
		}
		r.Doses = append(r.Doses, adapter.Dose{Product: d.PrdtCd, Number: d.DoseNo, Date: dt})
	}
	for _, b := range p.Reservations {
		dt, err := parseDate(b.RsvtDt)
		if err != nil {
			return adapter.Record{}, fmt.Errorf("reservation date: %w", err)
		}
		r.Bookings = append(r.Bookings, adapter.BookingRecord{
			BookingID: b.RsvtID, PersonID: b.PrsnID, CampaignID: b.CmpnID, ClinicID: b.OrgID,
			Date: dt, Product: b.PrdtCd, Dose: b.DoseNo,
		})
	}
	return r, nil
}

// Eligibility implements adapter.Registry: GET /persons/{id}.
func (c *Client) Eligibility(ctx context.Context, personID string) (adapter.Record, error) {
	const route = "GET /persons/{id}"
	var p personJSON
	if err := c.do(ctx, route, http.MethodGet, "/persons/"+url.PathEscape(personID), nil, &p); err != nil {
		return adapter.Record{}, err
	}
	r, err := p.record()
	if err != nil {
		return adapter.Record{}, fmt.Errorf("gateway %s: %w", route, err)
	}
	return r, nil
}

// EligibilityBulk implements adapter.Registry: POST /persons:batch, in
// chunks of BatchSize ids, one after the other (the registry is fragile;
// parallel chunks would only queue there).
func (c *Client) EligibilityBulk(ctx context.Context, ids []string) ([]adapter.Record, error) {
	const route = "POST /persons:batch"
	out := make([]adapter.Record, 0, len(ids))
	for start := 0; start < len(ids); start += c.batchSz {
		chunk := ids[start:min(start+c.batchSz, len(ids))]
		var resp struct {
			Persons []personJSON `json:"persons"`
		}
		if err := c.do(ctx, route, http.MethodPost, "/persons:batch", map[string][]string{"ids": chunk}, &resp); err != nil {
			return nil, fmt.Errorf("ids %d-%d of %d: %w", start, start+len(chunk), len(ids), err)
		}
		for _, p := range resp.Persons {
			r, err := p.record()
			if err != nil {
				return nil, fmt.Errorf("gateway %s: %w", route, err)
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// RecordBooking implements adapter.Registry: PUT /reservations/{id}
// (201 created, 200 already there, 422 rejected).
func (c *Client) RecordBooking(ctx context.Context, b adapter.BookingRecord) error {
	body := rsvtJSON{
		PrsnID: b.PersonID, CmpnID: b.CampaignID, OrgID: b.ClinicID,
		RsvtDt: b.Date.Format(yyyymmdd), PrdtCd: b.Product, DoseNo: b.Dose,
	}
	return c.do(ctx, "PUT /reservations/{id}", http.MethodPut, "/reservations/"+url.PathEscape(b.BookingID), body, nil)
}

// CancelBooking implements adapter.Registry: DELETE /reservations/{id}.
func (c *Client) CancelBooking(ctx context.Context, bookingID string) error {
	return c.do(ctx, "DELETE /reservations/{id}", http.MethodDelete, "/reservations/"+url.PathEscape(bookingID), nil, nil)
}

// Ping implements adapter.Registry: GET /ping.
func (c *Client) Ping(ctx context.Context) error {
	return c.do(ctx, "GET /ping", http.MethodGet, "/ping", nil, nil)
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.http.HTTPClient.CloseIdleConnections()
	return nil
}

var _ adapter.Registry = (*Client)(nil)
