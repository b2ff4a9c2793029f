package admission

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/yeyak/yeyak/booking"
)

// call sends one request to h as person ("" for none) and returns the answer.
func call(t *testing.T, h http.Handler, method, path, person string, hdr map[string]string, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if person != "" {
		r.Header.Set("X-Person", person)
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func decodeStatus(t *testing.T, w *httptest.ResponseRecorder) Status {
	t.Helper()
	var s Status
	if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
		t.Fatalf("decode %q: %v", w.Body.String(), err)
	}
	return s
}

func join(t *testing.T, c *Controller, person string) Status {
	t.Helper()
	s, err := c.Join(context.Background(), person)
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	return s
}

func poll(t *testing.T, c *Controller, person, ticket string) Status {
	t.Helper()
	s, err := c.Poll(context.Background(), person, ticket)
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	return s
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })

func TestFIFOOutsideOpeningWindow(t *testing.T) {
	c, clk, _ := newTestController(t, func(cfg *Config) {
		cfg.Openings = []time.Time{t0.Add(2 * time.Hour)} // t0 is outside its pre-opening window
	})
	people := make([]string, 10)
	tickets := make([]string, 10)
	for i := range people {
		people[i] = fmt.Sprintf("person-%d", i)
		s := join(t, c, people[i])
		if s.State != "waiting" || s.Position != int64(i+1) {
			t.Fatalf("join %d: %+v, want waiting at %d", i, s, i+1)
		}
		tickets[i] = s.Ticket
		clk.Add(time.Millisecond)
	}
	clk.Add(500 * time.Millisecond) // rate 10/s: five admitted
	for i := range people {
		s := poll(t, c, people[i], tickets[i])
		if i < 5 && (s.State != "admitted" || s.Pass == "") {
			t.Fatalf("person %d: %+v, want admitted with a pass", i, s)
		}
		if i >= 5 && (s.State != "waiting" || s.Position != int64(i-4)) {
			t.Fatalf("person %d: %+v, want waiting at %d", i, s, i-4)
		}
	}
}

// TestDrawIsUniform checks with a chi-square test that the pre-opening draw
// gives every arrival every place with equal probability: arriving first in
// the window buys nothing.
func TestDrawIsUniform(t *testing.T) {
	const n, trials = 8, 1600
	var counts [n][n]int
	open := t0.Add(10 * time.Minute)
	for trial := range trials {
		c, clk, _ := newTestController(t, func(cfg *Config) {
			cfg.Openings = []time.Time{open}
			cfg.ShuffleSeed = fmt.Appendf(nil, "chi-square seed %d", trial)
		})
		for i := range n {
			if s := join(t, c, fmt.Sprint("p", i)); s.State != "pending" {
				t.Fatalf("join in the pre-opening window: %+v", s)
			}
			clk.Add(time.Millisecond)
		}
		if err := c.store.Draw(context.Background(), open, c.shuffle); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			p, err := c.store.Place(context.Background(), personKey(c.cfg.PersonSalt, fmt.Sprint("p", i)))
			if err != nil || p.State == StatePending {
				t.Fatalf("after the opening: %+v %v", p, err)
			}
			counts[i][p.Ahead]++
		}
	}
	expected := float64(trials) / n
	var chi2 float64
	for i := range n {
		for j := range n {
			d := float64(counts[i][j]) - expected
			chi2 += d * d / expected
		}
	}
	// 49 degrees of freedom; the 0.999 quantile is 85.35.
	t.Logf("chi-square = %.1f (df 49, critical 85.35 at p=0.001); first arrival's places: %v", chi2, counts[0])
	if chi2 > 85.35 {
		t.Fatalf("draw is not uniform: chi-square %.1f > 85.35; counts %v", chi2, counts)
	}
}

func TestPendingBeforeOpeningThenDrawn(t *testing.T) {
	open := t0.Add(10 * time.Minute)
	c, clk, _ := newTestController(t, func(cfg *Config) {
		cfg.Openings = []time.Time{open}
		cfg.Floor, cfg.Ceiling, cfg.Initial = 1, 1, 1
	})
	var early []Status
	for i := range 3 { // t0 is inside the 30-minute pre-opening window
		s := join(t, c, fmt.Sprint("early-", i))
		if s.State != "pending" || s.DrawAt == nil || !s.DrawAt.Equal(open) || s.DrawSize != int64(i+1) || s.Position != int64(i+1) {
			t.Fatalf("pre-opening join: %+v", s)
		}
		if s.PollAfterSeconds < 600 {
			t.Fatalf("pending poll after %d s, want at least until the opening (600 s)", s.PollAfterSeconds)
		}
		early = append(early, s)
	}
	clk.Add(9 * time.Minute)
	if s := poll(t, c, "early-0", early[0].Ticket); s.State != "pending" {
		t.Fatalf("before the opening: %+v, want pending (nobody admitted before the draw)", s)
	}
	clk.Add(time.Minute)
	late := join(t, c, "late") // at the opening: after the draw
	states := map[string]int{}
	for i, e := range early {
		s := poll(t, c, fmt.Sprint("early-", i), e.Ticket)
		states[s.State]++
		if s.State == "waiting" && s.Position > 2 {
			t.Fatalf("drawn person at %d, want 1 or 2", s.Position)
		}
	}
	// The credit banked while nobody could be admitted is one second's worth.
	if states["admitted"] != 1 || states["waiting"] != 2 {
		t.Fatalf("after the opening: %v, want one admitted (the burst) and two waiting", states)
	}
	if late.State != "waiting" || late.Position != 3 {
		t.Fatalf("arrival at the opening: %+v, want behind the draw", late)
	}
}

func TestBypassesRefused(t *testing.T) {
	c, clk, reg := newTestController(t, func(cfg *Config) { cfg.Floor, cfg.Ceiling, cfg.Initial = 1, 1, 1 })
	q := c.Handler()
	guarded := c.Middleware(okHandler)
	var alice Status
	for _, p := range []string{"alice", "bob", "carol"} {
		w := call(t, q, "POST", "/v1/queue", p, nil, "")
		if w.Code != http.StatusCreated {
			t.Fatalf("join %s: %d %s", p, w.Code, w.Body)
		}
		if p == "alice" {
			alice = decodeStatus(t, w)
		}
	}
	for i := range 1000 { // a crowd that keeps the surge on for the whole test
		join(t, c, fmt.Sprint("crowd-", i))
	}
	clk.Add(1500 * time.Millisecond) // one admitted at 1/s
	alice = decodeStatus(t, call(t, q, "GET", "/v1/queue/"+alice.Ticket, "alice", nil, ""))
	if alice.State != "admitted" || alice.Pass == "" {
		t.Fatalf("alice: %+v, want admitted", alice)
	}
	pass := alice.Pass
	tampered := pass[:len(pass)-3] + map[bool]string{true: "AAA", false: "BBB"}[!strings.HasSuffix(pass, "AAA")]
	parts := strings.Split(pass, ".")
	forgedExpiry := strings.Join([]string{parts[0], parts[1], strings.Repeat("_", len(parts[2])), parts[3]}, ".")

	refused := []struct {
		name   string
		person string
		hdr    map[string]string
		reason string
	}{
		{"no pass during a surge", "dave", nil, "missing"},
		{"another person's pass", "bob", map[string]string{PassHeader: pass}, "bad_signature"},
		{"tampered pass", "alice", map[string]string{PassHeader: tampered}, "bad_signature"},
		{"forged far-future expiry", "alice", map[string]string{PassHeader: forgedExpiry}, "bad_signature"},
		{"garbage pass", "alice", map[string]string{PassHeader: "letmein"}, "malformed"},
		{"ticket as pass", "alice", map[string]string{PassHeader: alice.Ticket}, "malformed"},
		{"pass without a person", "", map[string]string{PassHeader: pass}, "bad_signature"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			before := testutil.ToFloat64(c.m.passesRejected.WithLabelValues(tt.reason))
			w := call(t, guarded, "POST", "/v1/bookings", tt.person, tt.hdr, "")
			assertQueueRequired(t, w)
			if got := testutil.ToFloat64(c.m.passesRejected.WithLabelValues(tt.reason)); got != before+1 {
				t.Fatalf("passes_rejected_total{reason=%q} = %g, want %g", tt.reason, got, before+1)
			}
		})
	}
	if w := call(t, guarded, "POST", "/v1/bookings", "alice", map[string]string{PassHeader: pass}, ""); w.Code != http.StatusOK {
		t.Fatalf("alice with her own pass: %d %s", w.Code, w.Body)
	}
	// Expired by the server's clock, whatever the client's clock says.
	clk.Add(c.cfg.PassTTL)
	w := call(t, guarded, "POST", "/v1/bookings", "alice", map[string]string{
		PassHeader: pass, "Date": t0.Format(http.TimeFormat), "X-Client-Time": t0.Format(time.RFC3339),
	}, "")
	assertQueueRequired(t, w)
	if got := testutil.ToFloat64(c.m.passesRejected.WithLabelValues("expired")); got != 1 {
		t.Fatalf("expired rejections = %g, want 1", got)
	}
	// Bob cannot poll with alice's ticket.
	if w := call(t, q, "GET", "/v1/queue/"+alice.Ticket, "bob", nil, ""); w.Code != http.StatusNotFound {
		t.Fatalf("bob polling alice's ticket: %d %s", w.Code, w.Body)
	}
	if n, err := testutil.GatherAndCount(reg, "yeyak_admission_queue_required_total"); err != nil || n != 1 {
		t.Fatalf("queue_required metric: %d %v", n, err)
	}
}

func assertQueueRequired(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("status %d %s, want 429", w.Code, w.Body)
	}
	var body errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Code != CodeQueueRequired || !body.Error.Retryable {
		t.Fatalf("body %s, want queue_required retryable", w.Body)
	}
	if w.Header().Get("Location") != "/v1/queue" || w.Header().Get("Retry-After") == "" {
		t.Fatalf("headers %v, want Location /v1/queue and Retry-After", w.Header())
	}
}

func TestClientClockIgnored(t *testing.T) {
	open := t0.Add(10 * time.Minute)
	c, _, _ := newTestController(t, func(cfg *Config) { cfg.Openings = []time.Time{open} })
	q := c.Handler()
	first := decodeStatus(t, call(t, q, "POST", "/v1/queue", "first", nil, ""))
	// A client whose clock is an hour ahead (past the opening) and who
	// claims an early arrival in the body is still a pre-opening arrival.
	ahead := map[string]string{"Date": open.Add(time.Hour).Format(http.TimeFormat)}
	w := call(t, q, "POST", "/v1/queue", "eager", ahead, `{"arrived_at":"2021-08-01T00:00:00Z","position":1}`)
	s := decodeStatus(t, w)
	if w.Code != http.StatusCreated || s.State != "pending" || !s.DrawAt.Equal(open) || s.DrawSize != 2 {
		t.Fatalf("eager client: %d %+v, want pending in the draw at the opening", w.Code, s)
	}
	if first.State != "pending" {
		t.Fatalf("first: %+v", first)
	}
	// The booking route stays closed to both until the draw admits them.
	assertQueueRequired(t, call(t, c.Middleware(okHandler), "GET", "/v1/clinics", "eager", ahead, ""))
}

func TestReconnectKeepsPlace(t *testing.T) {
	c, clk, _ := newTestController(t, func(cfg *Config) { cfg.Floor, cfg.Ceiling, cfg.Initial = 1, 1, 1 })
	q := c.Handler()
	var carol Status
	for _, p := range []string{"a", "b", "carol", "d"} {
		s := decodeStatus(t, call(t, q, "POST", "/v1/queue", p, nil, ""))
		if p == "carol" {
			carol = s
		}
	}
	if carol.Position != 3 {
		t.Fatalf("carol: %+v", carol)
	}
	seq := func(tok string) uint64 {
		cl, err := c.sign.verify(kindTicket, tok, "carol", clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		return cl.Seq
	}
	w := call(t, q, "POST", "/v1/queue", "carol", nil, "")
	again := decodeStatus(t, w)
	if w.Code != http.StatusOK || again.Position != 3 || seq(again.Ticket) != seq(carol.Ticket) {
		t.Fatalf("reconnect: %d %+v, want 200 and the same place", w.Code, again)
	}
	for _, p := range []string{"e", "f"} {
		call(t, q, "POST", "/v1/queue", p, nil, "")
	}
	clk.Add(1100 * time.Millisecond) // a admitted
	for _, tok := range []string{carol.Ticket, again.Ticket} {
		if s := decodeStatus(t, call(t, q, "GET", "/v1/queue/"+tok, "carol", nil, "")); s.Position != 2 {
			t.Fatalf("poll after reconnect: %+v, want position 2", s)
		}
	}
	if s := decodeStatus(t, call(t, q, "POST", "/v1/queue", "carol", nil, "")); s.Position != 2 {
		t.Fatalf("reconnect after others joined: %+v, want position 2", s)
	}
}

func TestFreeFlow(t *testing.T) {
	c, _, _ := newTestController(t, func(cfg *Config) {
		cfg.Floor, cfg.Ceiling, cfg.Initial, cfg.RequestsPerAdmit = 2, 2, 2, 1
	})
	guarded := c.Middleware(okHandler)
	for _, p := range []string{"zed", "yan"} { // burst of 2 at 2 requests/s
		w := call(t, guarded, "GET", "/v1/me/eligibility", p, nil, "")
		if w.Code != http.StatusOK {
			t.Fatalf("free-flow request of %s: %d", p, w.Code)
		}
		if err := c.VerifyPass(p, w.Header().Get(PassHeader)); err != nil {
			t.Fatalf("free-flow pass: %v", err)
		}
	}
	// zed, let in, passes again without spending a token; ann is refused.
	if w := call(t, guarded, "GET", "/v1/me/eligibility", "zed", nil, ""); w.Code != http.StatusOK {
		t.Fatalf("zed again: %d, want let in (free flow already admitted zed)", w.Code)
	}
	assertQueueRequired(t, call(t, guarded, "GET", "/v1/me/eligibility", "ann", nil, ""))
	if !c.law.constrained {
		t.Fatal("a refused free-flow request must mark the rate as the constraint")
	}
}

// TestFreeFlowAdmitsPeopleAtTheRate: by default free flow lets people in
// at the admission rate (one second's worth at once), as the line does:
// each gets a pass with their first request and spends no token after.
func TestFreeFlowAdmitsPeopleAtTheRate(t *testing.T) {
	c, _, _ := newTestController(t, func(cfg *Config) { cfg.Floor, cfg.Ceiling, cfg.Initial = 10, 100, 10 })
	guarded := c.Middleware(okHandler)
	for i := range 10 {
		p := fmt.Sprint("p-", i)
		w := call(t, guarded, "GET", "/v1/me/eligibility", p, nil, "")
		if w.Code != http.StatusOK {
			t.Fatalf("person %d of the first second's 10: %d", i, w.Code)
		}
		// Their next requests carry the pass and take no token.
		pass := map[string]string{PassHeader: w.Header().Get(PassHeader)}
		for range 3 {
			if w := call(t, guarded, "GET", "/v1/clinics", p, pass, ""); w.Code != http.StatusOK {
				t.Fatalf("person %d with the free-flow pass: %d", i, w.Code)
			}
		}
	}
	// The bucket is empty. One of them back without the pass (a client
	// that drops it, curl in a tour): let in again, no token needed; a
	// newcomer is not.
	if w := call(t, guarded, "GET", "/v1/clinics", "p-3", nil, ""); w.Code != http.StatusOK || w.Header().Get(PassHeader) == "" {
		t.Fatalf("p-3 again without the pass: %d, pass %q; want let in with a pass", w.Code, w.Header().Get(PassHeader))
	}
	assertQueueRequired(t, call(t, guarded, "GET", "/v1/me/eligibility", "p-10", nil, ""))
}

// TestFreeFlowHeldForTheRefused: once free flow refuses someone, nobody
// arriving after them passes in free flow — not even when the bucket has
// refilled before the refused person's join arrives (a surge's joins wait
// their turn) — until FreeFlowHold passes with no refusal and nobody waits.
func TestFreeFlowHeldForTheRefused(t *testing.T) {
	c, clk, _ := newTestController(t, func(cfg *Config) {
		cfg.Floor, cfg.Ceiling, cfg.Initial, cfg.RequestsPerAdmit = 1, 1, 1, 1
		cfg.FreeFlowHold = 3 * time.Second
	})
	guarded := c.Middleware(okHandler)
	gated := c.Gate(guarded)
	if w := call(t, gated, "GET", "/v1/me/eligibility", "ann", nil, ""); w.Code != http.StatusOK {
		t.Fatalf("first request: %d, want free flow", w.Code)
	}
	assertQueueRequired(t, call(t, gated, "GET", "/v1/me/eligibility", "ben", nil, "")) // the bucket is empty
	// Two seconds on, the bucket has refilled; ben has not joined yet.
	clk.Add(2 * time.Second)
	assertQueueRequired(t, call(t, gated, "GET", "/v1/me/eligibility", "cat", nil, ""))
	assertQueueRequired(t, call(t, guarded, "GET", "/v1/me/eligibility", "cat", nil, "")) // Middleware alone too
	// Still within the hold of cat's refusal: refused, and the hold renewed.
	clk.Add(2 * time.Second)
	assertQueueRequired(t, call(t, gated, "GET", "/v1/me/eligibility", "dan", nil, ""))
	// FreeFlowHold after the last refusal, with nobody in line: free flow.
	clk.Add(3 * time.Second)
	if w := call(t, gated, "GET", "/v1/me/eligibility", "dan", nil, ""); w.Code != http.StatusOK {
		t.Fatalf("after the hold, nobody waiting: %d %s, want free flow", w.Code, w.Body)
	}
}

func TestQueueEndpoints(t *testing.T) {
	c, clk, reg := newTestController(t, func(cfg *Config) {
		cfg.Floor, cfg.Ceiling, cfg.Initial = 1, 1, 1
		cfg.ClaimWindow = time.Minute
	})
	q := c.Handler()
	if w := call(t, q, "POST", "/v1/queue", "", nil, ""); w.Code != http.StatusUnauthorized {
		t.Fatalf("anonymous join: %d", w.Code)
	}
	first := decodeStatus(t, call(t, q, "POST", "/v1/queue", "p1", nil, ""))
	w := call(t, q, "POST", "/v1/queue", "p2", nil, "")
	s := decodeStatus(t, w)
	if s.State != "waiting" || s.Position != 2 || s.EstimatedWaitSeconds != 2 || s.PollAfterSeconds != 1 ||
		w.Header().Get("Retry-After") != "1" || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("join: %+v headers %v", s, w.Header())
	}
	for _, bad := range []string{"nonsense", first.Ticket} { // p2 with garbage, or with p1's ticket
		if w := call(t, q, "GET", "/v1/queue/"+bad, "p2", nil, ""); w.Code != http.StatusNotFound {
			t.Fatalf("GET %q: %d", bad, w.Code)
		}
	}
	clk.Add(2 * time.Second)
	w = call(t, q, "GET", "/v1/queue/"+s.Ticket, "p2", nil, "")
	s = decodeStatus(t, w)
	if s.State != "admitted" || s.Position != 0 || c.VerifyPass("p2", s.Pass) != nil || s.PassExpiresAt == nil ||
		w.Header().Get("Retry-After") != "" {
		t.Fatalf("admitted: %+v", s)
	}
	clk.Add(2 * time.Minute) // past the claim window: the place is forgotten
	if w := call(t, q, "GET", "/v1/queue/"+s.Ticket, "p2", nil, ""); w.Code != http.StatusGone {
		t.Fatalf("after the claim window: %d %s", w.Code, w.Body)
	}
	clk.Add(c.cfg.TicketTTL)
	if w := call(t, q, "GET", "/v1/queue/"+s.Ticket, "p2", nil, ""); w.Code != http.StatusGone {
		t.Fatalf("expired ticket: %d %s", w.Code, w.Body)
	}
	w = call(t, q, "GET", "/queue", "", nil, "")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `var QUEUE = "/v1/queue"`) {
		t.Fatalf("page: %d", w.Code)
	}
	for _, name := range []string{"yeyak_admission_waiting", "yeyak_admission_rate", "yeyak_admission_admitted_total",
		"yeyak_admission_estimated_wait_seconds", "yeyak_admission_passes_issued_total", "yeyak_admission_tickets_issued_total"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 1 {
			t.Errorf("metric %s: %d %v", name, n, err)
		}
	}
	if v := testutil.ToFloat64(c.m.tickets); v != 2 {
		t.Errorf("tickets issued = %g, want 2", v)
	}
	if v := testutil.ToFloat64(c.m.admitted); v != 2 {
		t.Errorf("admitted = %g, want 2", v)
	}
}

func TestRateFollowsHealth(t *testing.T) {
	c, clk, _ := newTestController(t, func(cfg *Config) { cfg.Floor, cfg.Ceiling, cfg.Initial = 10, 1000, 100 })
	for i := range 500 { // people wait: the rate is the constraint
		join(t, c, fmt.Sprint("someone-", i))
	}
	for range 3 {
		for range 50 {
			c.Observe(10*time.Millisecond, false)
		}
		clk.Add(time.Second)
		c.advance(context.Background(), clk.Now(), true)
	}
	if r := c.Rate(); r != 130 {
		t.Fatalf("after three healthy intervals rate = %g, want 130 (+10 each: Ceiling/100)", r)
	}
	for range 50 {
		c.Observe(5*time.Second, false)
	}
	clk.Add(time.Second)
	c.advance(context.Background(), clk.Now(), true)
	if r := c.Rate(); r != 91 {
		t.Fatalf("after a slow interval rate = %g, want 91", r)
	}
	if g := testutil.ToFloat64(c.m.rate); g != 91 {
		t.Fatalf("rate gauge = %g", g)
	}
}

func TestOpeningsOf(t *testing.T) {
	os := OpeningsOf(booking.Campaign2021())
	if len(os) != 13 {
		t.Fatalf("got %d openings, want 10 rotation days + 2 catch-up + open", len(os))
	}
	seoul, _ := time.LoadLocation("Asia/Seoul")
	if want := time.Date(2021, 8, 9, 20, 0, 0, 0, seoul); !os[0].Equal(want) {
		t.Fatalf("first opening %v, want %v", os[0], want)
	}
	if want := time.Date(2021, 8, 21, 20, 0, 0, 0, seoul); !os[12].Equal(want) {
		t.Fatalf("last opening %v, want %v", os[12], want)
	}
	cfg := Config{Keys: []Key{keyA}, PersonFunc: headerPerson, Openings: os, Registerer: prometheus.NewRegistry()}
	if _, err := New(cfg); err != nil {
		t.Fatalf("the 2021 campaign's openings are a valid config: %v", err)
	}
}

// failingDrawStore fails its first draws, like a Redis outage at the opening.
type failingDrawStore struct {
	Store
	fail int
}

func (s *failingDrawStore) Draw(ctx context.Context, o time.Time, sh func(int, func(i, j int))) error {
	if s.fail > 0 {
		s.fail--
		return fmt.Errorf("draw: store down")
	}
	return s.Store.Draw(ctx, o, sh)
}

func TestFailedDrawHoldsAdmission(t *testing.T) {
	open := t0.Add(40 * time.Minute)
	st := &failingDrawStore{Store: NewMemoryStore(), fail: 1}
	c, clk, _ := newTestController(t, func(cfg *Config) {
		cfg.Openings = []time.Time{open}
		cfg.Store = st
		cfg.Logger = discardLogger()
		cfg.Floor, cfg.Ceiling, cfg.Initial = 0.001, 0.001, 0.001 // 2.4 admissions in 40 min
	})
	prior := join(t, c, "prior") // before the pre-opening window: ranked at once
	clk.Add(15 * time.Minute)
	early := join(t, c, "early") // in the window: pending
	if prior.State != "waiting" || early.State != "pending" {
		t.Fatalf("prior %+v, early %+v", prior, early)
	}
	clk.Add(25 * time.Minute)
	c.advance(context.Background(), clk.Now(), true) // the draw fails: the step is skipped
	if p, _ := c.store.Place(context.Background(), personKey(c.cfg.PersonSalt, "prior")); p.State != StateWaiting {
		t.Fatalf("prior admitted by a step whose draw failed: %+v", p)
	}
	clk.Add(time.Second)
	c.advance(context.Background(), clk.Now(), true) // the draw succeeds, then the step
	// (Read from the line itself: at this rate the door hands out one pass
	// per 1,000 s.)
	for _, who := range []string{"prior", "early"} {
		if p, _ := c.store.Place(context.Background(), personKey(c.cfg.PersonSalt, who)); p.State != StateAdmitted {
			t.Fatalf("%s after the retried draw: %+v, want admitted", who, p)
		}
	}
}

// TestGate: in front of authentication, Gate refuses a request without a
// pass while people wait — never asking who the caller is — and lets
// everything else through to Middleware: requests with a pass (good or
// bad: Middleware judges them) and any request while nobody waits.
func TestGate(t *testing.T) {
	asked := 0
	c, clk, _ := newTestController(t, func(cfg *Config) {
		cfg.Floor, cfg.Ceiling, cfg.Initial = 1, 1, 1
		cfg.PersonFunc = func(r *http.Request) (string, bool) { asked++; return headerPerson(r) }
	})
	reached := 0
	gated := c.Gate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached++ }))

	// Nobody waits: through, whatever the request carries.
	call(t, gated, "GET", "/v1/me/eligibility", "", nil, "")
	if reached != 1 || asked != 0 {
		t.Fatalf("free flow: reached %d, asked %d; want through without asking who", reached, asked)
	}

	// A line: a request without a pass is refused at the gate, unasked.
	for _, p := range []string{"alice", "bob", "dave"} {
		join(t, c, p)
	}
	clk.Add(200 * time.Millisecond)
	asked = 0
	assertQueueRequired(t, call(t, gated, "POST", "/v1/bookings", "carol", nil, ""))
	if reached != 1 || asked != 0 {
		t.Fatalf("surge, no pass: reached %d, asked %d; want refused without asking who", reached, asked)
	}
	if !c.law.constrained {
		t.Fatal("a refusal at the gate must mark the rate as the constraint")
	}
	// With a pass (here garbage): through to Middleware, which judges it.
	call(t, gated, "POST", "/v1/bookings", "carol", map[string]string{PassHeader: "letmein"}, "")
	if reached != 2 {
		t.Fatalf("surge, with a pass: reached %d, want 2", reached)
	}
}

// TestPollAfterHalfTheWait: a waiting person is told to come back after
// half the estimated wait, clamped to [MinPoll, MaxPoll].
func TestPollAfterHalfTheWait(t *testing.T) {
	c, _, _ := newTestController(t, func(cfg *Config) { cfg.Floor, cfg.Ceiling, cfg.Initial = 10, 10, 10 })
	var last, middle Status
	for i := range 2000 {
		s := join(t, c, fmt.Sprint("p-", i))
		switch i {
		case 399:
			middle = s
		case 1999:
			last = s
		}
	}
	// At 10/s: position 400 waits 40 s (poll after 20 s); position 2,000
	// waits 200 s (poll after MaxPoll, 60 s).
	// Each answer is jittered within [half, all] of that.
	seen := map[int64]bool{}
	for range 200 {
		middle = poll(t, c, "p-399", middle.Ticket)
		half := (middle.EstimatedWaitSeconds + 1) / 2
		if middle.State != "waiting" || middle.EstimatedWaitSeconds < 39 || middle.EstimatedWaitSeconds > 41 ||
			middle.PollAfterSeconds < half/2 || middle.PollAfterSeconds > half {
			t.Fatalf("position ~400: %+v, want a wait of ~40 s and a poll after a quarter to a half of it", middle)
		}
		if last = poll(t, c, "p-1999", last.Ticket); last.PollAfterSeconds < 30 || last.PollAfterSeconds > 60 {
			t.Fatalf("position ~2000: %+v, want poll after half MaxPoll to MaxPoll (30-60 s)", last)
		}
		seen[last.PollAfterSeconds] = true
	}
	// People who joined together must not poll together ever after.
	if len(seen) < 8 {
		t.Fatalf("200 answers told %d distinct poll intervals (%v), want them spread over 30-60 s", len(seen), seen)
	}
}

// TestDoorPacesPasses: people the line admitted while they were not
// looking all poll at once; the door hands their passes out at the
// admission rate (one second's worth at once), and tells the others they
// are next, back in a second or two.
func TestDoorPacesPasses(t *testing.T) {
	c, clk, _ := newTestController(t, func(cfg *Config) { cfg.Floor, cfg.Ceiling, cfg.Initial = 10, 10, 10 })
	tickets := map[string]string{}
	for i := range 100 {
		p := fmt.Sprint("p-", i)
		tickets[p] = join(t, c, p).Ticket
	}
	for range 100 { // 10 s at 10/s: the line admits everyone
		clk.Add(100 * time.Millisecond)
		c.advance(context.Background(), clk.Now(), true)
	}
	if st := c.Stats(); st.Waiting != 0 {
		t.Fatalf("%+v: want everyone admitted by the line", st)
	}
	passes := func() (n int) {
		for p, tk := range tickets {
			s := poll(t, c, p, tk)
			switch {
			case s.State == "admitted" && s.Pass != "":
				n++
				delete(tickets, p)
			case s.State == "waiting" && s.Position == 1 && s.PollAfterSeconds >= 1 && s.PollAfterSeconds <= 2:
			default:
				t.Fatalf("%s: %+v, want a pass or next at the door", p, s)
			}
		}
		return n
	}
	if n := passes(); n != 10 {
		t.Fatalf("100 admitted people polling at once got %d passes, want 10 (the rate, one second's worth)", n)
	}
	if got := testutil.ToFloat64(c.m.doorWaits); got != 90 {
		t.Fatalf("door waits %v, want 90", got)
	}
	clk.Add(500 * time.Millisecond)
	if n := passes(); n != 5 {
		t.Fatalf("half a second later: %d passes, want 5", n)
	}
}
