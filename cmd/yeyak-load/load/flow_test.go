package load

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking/admission"
	"github.com/yeyak/yeyak/mocks/population"
)

// scripted is a target that speaks the /v1 API for the flow tests, with a
// booking endpoint the test scripts. The real target (yeyakd) is what the
// integration test drives; this one makes the rare answers happen on cue.
type scripted struct {
	book func(w http.ResponseWriter, r *http.Request, n int64) // n counts booking calls from 1
	mux  *http.ServeMux

	bookCalls atomic.Int64
	mu        sync.Mutex
	keys      []string
	booked    map[string]string // person → booking id
}

func newScripted(t *testing.T, book func(w http.ResponseWriter, r *http.Request, n int64)) *scripted {
	s := &scripted{book: book, mux: http.NewServeMux(), booked: map[string]string{}}
	js := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	person := func(r *http.Request) string { return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ") }
	s.mux.HandleFunc("GET /v1/campaigns", func(w http.ResponseWriter, r *http.Request) {
		js(w, 200, map[string]any{"campaigns": []any{map[string]any{"id": "demo", "products": []any{map[string]any{"id": "pfizer"}},
			"vaccination": map[string]any{"from": "2030-01-01", "to": "2030-01-01"}, "time_zone": "Asia/Seoul"}}})
	})
	s.mux.HandleFunc("POST /demo/token", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			PersonID string `json:"person_id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&b)
		js(w, 200, map[string]any{"access_token": b.PersonID})
	})
	s.mux.HandleFunc("GET /v1/me/eligibility", func(w http.ResponseWriter, r *http.Request) {
		js(w, 200, map[string]any{"eligible": true, "reason": "eligible"})
	})
	s.mux.HandleFunc("GET /v1/clinics", func(w http.ResponseWriter, r *http.Request) {
		js(w, 200, map[string]any{"wave": 0, "clinics": []any{map[string]any{"id": "C1",
			"availability": []any{map[string]any{"date": r.URL.Query().Get("date"), "product": "pfizer", "remaining": 5}}}}})
	})
	s.mux.HandleFunc("POST /v1/bookings", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.keys = append(s.keys, r.Header.Get("Idempotency-Key"))
		s.mu.Unlock()
		s.book(w, r, s.bookCalls.Add(1))
	})
	s.mux.HandleFunc("GET /v1/bookings", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		id, ok := s.booked[person(r)]
		s.mu.Unlock()
		list := []any{}
		if ok {
			list = append(list, map[string]any{"id": id, "campaign_id": "demo", "clinic_id": "C1", "date": "2030-01-01", "product": "pfizer", "status": "confirmed"})
		}
		js(w, 200, map[string]any{"bookings": list})
	})
	return s
}

func (s *scripted) created(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	s.booked[p] = "B-" + p
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"booking": map[string]any{"id": "B-" + p, "campaign_id": "demo",
		"clinic_id": "C1", "date": "2030-01-01", "product": "pfizer", "status": "confirmed"}})
}

func apiErr(w http.ResponseWriter, status int, code string, retryable bool, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": "m", "retryable": retryable}})
}

func runOne(t *testing.T, h http.Handler, cfg Config) *Summary {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg.Target = srv.URL
	if cfg.People == nil {
		cfg.People = []int{1}
	}
	cfg.Record = true
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBookRetriesWithTheSameKey: 503 and 409 idempotency_in_progress are
// retried after Retry-After with the same Idempotency-Key, and the booking
// counts once.
func TestBookRetriesWithTheSameKey(t *testing.T) {
	var s *scripted
	s = newScripted(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		switch n {
		case 1:
			apiErr(w, 503, "registry_unavailable", true, "0")
		case 2:
			apiErr(w, 409, "idempotency_in_progress", true, "0")
		default:
			s.created(w, r)
		}
	})
	sum := runOne(t, s.mux, Config{Shape: ShapeClosed, Concurrency: 1})
	if sum.Booked != 1 || sum.Outcomes["booked"] != 1 || sum.Retries != 2 {
		t.Fatalf("booked %d outcomes %v retries %d", sum.Booked, sum.Outcomes, sum.Retries)
	}
	if len(s.keys) != 3 || s.keys[0] != s.keys[1] || s.keys[1] != s.keys[2] || s.keys[0] == "" {
		t.Fatalf("Idempotency-Keys %q: want one key for every attempt", s.keys)
	}
	if sum.Errors["book:registry_unavailable"] != 1 || sum.Errors["book:idempotency_in_progress"] != 0 {
		t.Errorf("errors %v: 503 is an error, in-progress is flow control", sum.Errors)
	}
	if sum.ServerErrors != 1 {
		t.Errorf("5xx answers %d, want the one 503", sum.ServerErrors)
	}
	if b := sum.Steps[StepBook]; b.Calls != 3 || b.OK != 1 || b.Codes["idempotency_in_progress"] != 1 {
		t.Errorf("book step %+v", b)
	}
	if len(sum.Bookings) != 1 || sum.Bookings[0].Ack != "created" || sum.Bookings[0].PersonID != population.ID(1) {
		t.Errorf("bookings %+v", sum.Bookings)
	}
}

// TestRetriesAreBounded: a target that keeps answering 503 gets Attempts
// calls, then the person gives up (failed, not booked).
func TestRetriesAreBounded(t *testing.T) {
	s := newScripted(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		apiErr(w, 503, "registry_unavailable", true, "0")
	})
	sum := runOne(t, s.mux, Config{Shape: ShapeClosed, Concurrency: 1, Attempts: 3})
	if got := s.bookCalls.Load(); got != 3 {
		t.Fatalf("%d booking calls, want Attempts = 3", got)
	}
	if sum.Booked != 0 || sum.Outcomes["failed:book:registry_unavailable"] != 1 {
		t.Fatalf("booked %d outcomes %v", sum.Booked, sum.Outcomes)
	}
}

// TestAmbiguousBookingSettledByListing: the booking is made but every
// answer is lost; the person lists their bookings and finds it.
func TestAmbiguousBookingSettledByListing(t *testing.T) {
	var s *scripted
	s = newScripted(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		p := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		s.booked[p] = "B-" + p
		s.mu.Unlock()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close() // the answer is lost
		}
	})
	sum := runOne(t, s.mux, Config{Shape: ShapeClosed, Concurrency: 1, Attempts: 2})
	if sum.Booked != 1 || sum.Outcomes["booked"] != 1 {
		t.Fatalf("booked %d outcomes %v errors %v", sum.Booked, sum.Outcomes, sum.Errors)
	}
	if b := sum.Bookings[0]; b.Ack != "listed" || b.ID != "B-"+population.ID(1) {
		t.Errorf("booking %+v: want found by listing", b)
	}
	if sum.Errors["book:transport"] != 2 || sum.Steps[StepReconcile].OK != 1 {
		t.Errorf("errors %v reconcile %+v", sum.Errors, sum.Steps[StepReconcile])
	}
}

// TestExpectedRefusalsAreNotErrors: a rule refusal ends the flow as
// refused:CODE and is no error.
func TestExpectedRefusalsAreNotErrors(t *testing.T) {
	s := newScripted(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		apiErr(w, 422, "not_your_rotation_day", false, "")
	})
	sum := runOne(t, s.mux, Config{Shape: ShapeClosed, Concurrency: 1})
	if sum.Outcomes["refused:not_your_rotation_day"] != 1 || sum.Refusals["not_your_rotation_day"] != 1 || len(sum.Errors) != 0 {
		t.Fatalf("outcomes %v refusals %v errors %v", sum.Outcomes, sum.Refusals, sum.Errors)
	}
	if s.bookCalls.Load() != 1 {
		t.Errorf("a refusal was retried: %d calls", s.bookCalls.Load())
	}
}

// TestWaitingRoom: behind the real admission controller at a low rate,
// people who get 429 queue_required join the line, poll as Retry-After
// says, and book with the pass they are given.
func TestWaitingRoom(t *testing.T) {
	if testing.Short() {
		t.Skip("waits in a line for a few seconds")
	}
	var s *scripted
	var passes atomic.Int64
	s = newScripted(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		if r.Header.Get(admission.PassHeader) != "" {
			passes.Add(1)
		}
		s.created(w, r)
	})
	mux := behindLine(t, s, 4)
	ids := make([]int, 16)
	for i := range ids {
		ids[i] = i
	}
	sum := runOne(t, mux, Config{Shape: ShapeClosed, Concurrency: 16, People: ids})
	if sum.Booked != 16 || len(sum.Errors) != 0 {
		t.Fatalf("booked %d errors %v outcomes %v", sum.Booked, sum.Errors, sum.Outcomes)
	}
	q := sum.Steps[StepQueueWait]
	if q.Calls == 0 || sum.Steps[StepQueueJoin].OK == 0 {
		t.Fatalf("nobody went through the waiting room at 4 people/s: %+v", sum.Steps)
	}
	if passes.Load() == 0 {
		t.Error("no booking carried a pass")
	}
	t.Logf("%d of 16 people waited in line, wait p50 %.0f ms max %.0f ms, %d polls", q.Calls, q.P50Ms, q.MaxMs, sum.Steps[StepQueuePoll].Calls)
}

// TestSignsInAgainOnInvalidToken: a target that restarted with new keys
// answers 401 invalid_token; the person gets a new token once and goes on.
func TestSignsInAgainOnInvalidToken(t *testing.T) {
	var s *scripted
	s = newScripted(t, func(w http.ResponseWriter, r *http.Request, n int64) { s.created(w, r) })
	var tokens, eligibility atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /demo/token", func(w http.ResponseWriter, r *http.Request) {
		tokens.Add(1)
		s.mux.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /v1/me/eligibility", func(w http.ResponseWriter, r *http.Request) {
		if eligibility.Add(1) == 1 {
			apiErr(w, 401, "invalid_token", false, "")
			return
		}
		s.mux.ServeHTTP(w, r)
	})
	mux.Handle("/", s.mux)
	sum := runOne(t, mux, Config{Shape: ShapeClosed, Concurrency: 1})
	if sum.Booked != 1 || tokens.Load() != 2 || eligibility.Load() != 2 {
		t.Fatalf("booked %d, %d tokens, %d eligibility calls; outcomes %v", sum.Booked, tokens.Load(), eligibility.Load(), sum.Outcomes)
	}
}

// TestPeopleComeFromManyAddresses: people are spread over Sources client
// addresses of 127.0.0.0/8, so per-address limits meet a crowd.
func TestPeopleComeFromManyAddresses(t *testing.T) {
	for _, c := range []struct {
		sources int
		want    []string
	}{{4, []string{"127.1.0.1", "127.1.0.2", "127.1.0.3", "127.1.0.4"}}, {1, []string{"127.0.0.1"}}} {
		var s *scripted
		s = newScripted(t, func(w http.ResponseWriter, r *http.Request, n int64) { s.created(w, r) })
		var mu sync.Mutex
		seen := map[string]bool{}
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			host, _, _ := strings.Cut(r.RemoteAddr, ":")
			mu.Lock()
			seen[host] = true
			mu.Unlock()
			s.mux.ServeHTTP(w, r)
		})
		sum := runOne(t, h, Config{Shape: ShapeClosed, Concurrency: 2, People: []int{1, 2, 3, 4, 5, 6, 7, 8}, Sources: c.sources})
		if sum.Booked != 8 {
			t.Fatalf("sources %d: booked %d, errors %v", c.sources, sum.Booked, sum.Errors)
		}
		for _, a := range c.want {
			if !seen[a] {
				t.Errorf("sources %d: no call from %s (seen %v)", c.sources, a, seen)
			}
		}
		if len(seen) != len(c.want) {
			t.Errorf("sources %d: calls from %v", c.sources, seen)
		}
	}
}

// TestSignInApartFromBookingConnections: a person's sign-in (the identity
// provider's call) never travels over the connections the booking flow
// uses, so a crowd signing in slowly cannot hold up an admitted person's
// booking call in the load tool.
func TestSignInApartFromBookingConnections(t *testing.T) {
	var s *scripted
	s = newScripted(t, func(w http.ResponseWriter, r *http.Request, n int64) { s.created(w, r) })
	var mu sync.Mutex
	signIn, flow := map[string]bool{}, map[string]bool{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if r.URL.Path == "/demo/token" {
			signIn[r.RemoteAddr] = true
		} else if strings.HasPrefix(r.URL.Path, "/v1/me") || strings.HasPrefix(r.URL.Path, "/v1/clinics") || strings.HasPrefix(r.URL.Path, "/v1/bookings") {
			flow[r.RemoteAddr] = true
		}
		mu.Unlock()
		s.mux.ServeHTTP(w, r)
	})
	// One connection each way: kept alive, a shared one would carry both.
	sum := runOne(t, h, Config{Shape: ShapeClosed, Concurrency: 1, People: []int{1, 2, 3}, Sources: 1, Conns: 1})
	if sum.Booked != 3 {
		t.Fatalf("booked %d, errors %v", sum.Booked, sum.Errors)
	}
	if len(signIn) == 0 || len(flow) == 0 {
		t.Fatalf("connections seen: sign-in %v, flow %v", signIn, flow)
	}
	for a := range signIn {
		if flow[a] {
			t.Fatalf("connection %s carried both a sign-in and booking-flow calls", a)
		}
	}
}

// lineTarget is the scripted target behind the real admission controller
// at rate people per second (no free flow beyond it).
func lineTarget(t *testing.T, rate float64) http.Handler {
	t.Helper()
	var s *scripted
	s = newScripted(t, func(w http.ResponseWriter, r *http.Request, n int64) { s.created(w, r) })
	return behindLine(t, s, rate)
}

// behindLine puts s behind the real admission controller at rate people
// per second: the booking flow through its Middleware, the queue mounted.
func behindLine(t *testing.T, s *scripted, rate float64) http.Handler {
	t.Helper()
	person := func(r *http.Request) (string, bool) {
		p := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		return p, p != "" && p != r.Header.Get("Authorization")
	}
	adm, err := admission.New(admission.Config{
		Keys:       []admission.Key{{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}},
		PersonFunc: person, Floor: rate, Ceiling: rate, RequestsPerAdmit: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	adm.Mount(mux)
	flow := adm.Middleware(s.mux)
	for _, p := range []string{"GET /v1/me/eligibility", "GET /v1/clinics", "POST /v1/bookings", "GET /v1/bookings"} {
		mux.Handle(p, flow)
	}
	mux.Handle("/", s.mux)
	return mux
}

// TestQueueDrainLeavesTheLine: at 2 people/s, a crowd of 20 cannot all be
// admitted within a second of the last arrival; when the line closes,
// those still waiting leave it (outcome in_line) with the place and
// estimated wait the queue told them, while the admitted ones book. Every
// person who joined is accounted for, and OnAdmitted counts the admitted.
func TestQueueDrainLeavesTheLine(t *testing.T) {
	if testing.Short() {
		t.Skip("waits in a line for a few seconds")
	}
	ids := make([]int, 20)
	for i := range ids {
		ids[i] = i
	}
	var hook atomic.Int64
	// Which connections the waiting room's calls and the booking flow's
	// calls came over: never the same (people do not share connections).
	var connMu sync.Mutex
	queueConns, flowConns := map[string]bool{}, map[string]bool{}
	target := lineTarget(t, 2)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		connMu.Lock()
		if strings.HasPrefix(r.URL.Path, "/v1/queue") {
			queueConns[r.RemoteAddr] = true
		} else if strings.HasPrefix(r.URL.Path, "/v1/") {
			flowConns[r.RemoteAddr] = true
		}
		connMu.Unlock()
		target.ServeHTTP(w, r)
	})
	sum := runOne(t, h, Config{Shape: ShapeSpike, Count: 20, Rate: 200, Decay: 100 * time.Millisecond,
		People: ids, MaxInFlight: 20, QueueDrain: time.Second, Drain: 20 * time.Second, OnAdmitted: func() { hook.Add(1) }})
	q := sum.Queue
	if len(sum.Errors) != 0 || sum.People.Abandoned != 0 {
		t.Fatalf("errors %v abandoned %d outcomes %v", sum.Errors, sum.People.Abandoned, sum.Outcomes)
	}
	if q.InLine == 0 || q.InLine != sum.Outcomes[OutcomeInLine] {
		t.Fatalf("in line %d, outcome in_line %d: want everyone not admitted within the drain (%v)", q.InLine, sum.Outcomes[OutcomeInLine], sum.Outcomes)
	}
	if q.InLineNoEstimate != 0 || q.InLineWaitMaxS <= 0 || q.InLinePositionMax <= 0 {
		t.Errorf("people left in line without a place or a wait: %+v", q)
	}
	if q.Joined+q.Rejoined == 0 || q.Joined != q.Admitted+q.InLine {
		t.Errorf("joined %d, admitted %d + in line %d: someone is unaccounted for", q.Joined, q.Admitted, q.InLine)
	}
	if sum.Booked+q.InLine != 20 || sum.Admitted != hook.Load() || sum.Admitted < sum.Booked {
		t.Errorf("booked %d + in line %d of 20; admitted %d, hook %d", sum.Booked, q.InLine, sum.Admitted, hook.Load())
	}
	connMu.Lock()
	defer connMu.Unlock()
	if len(queueConns) == 0 || len(flowConns) == 0 {
		t.Fatalf("queue connections %d, flow connections %d", len(queueConns), len(flowConns))
	}
	for c := range queueConns {
		if flowConns[c] {
			t.Errorf("connection %s carried both waiting-room and booking-flow calls", c)
		}
	}
}

// TestFeedPacesArrivals: with ShapeFeed one person arrives per value sent,
// and closing the feed ends the run.
func TestFeedPacesArrivals(t *testing.T) {
	var s *scripted
	s = newScripted(t, func(w http.ResponseWriter, r *http.Request, n int64) { s.created(w, r) })
	feed := make(chan struct{}, 7)
	for range 7 {
		feed <- struct{}{}
	}
	close(feed)
	srv := httptest.NewServer(s.mux)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sum, err := Run(ctx, Config{Target: srv.URL, Shape: ShapeFeed, Feed: feed, Population: population.Config{Seed: 1, People: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.People.Started != 7 || sum.Booked+sum.Refusals["not_your_rotation_day"] == 0 {
		t.Errorf("started %d, outcomes %v", sum.People.Started, sum.Outcomes)
	}
	if _, err := Run(ctx, Config{Target: srv.URL, Shape: ShapeFeed}); err == nil {
		t.Error("shape feed without a Feed was accepted")
	}
}

// TestPollsAsRetryAfterSays: a person in line polls when the queue's
// Retry-After says, as the waiting-room page does, even past MaxRetryWait
// (which caps the waits between a failed call's attempts, not a place in
// line): a client that polled sooner would cost the target polls a real
// crowd does not send.
func TestPollsAsRetryAfterSays(t *testing.T) {
	if testing.Short() {
		t.Skip("waits in a line for two seconds")
	}
	var s *scripted
	s = newScripted(t, func(w http.ResponseWriter, r *http.Request, n int64) { s.created(w, r) })
	var mu sync.Mutex
	var joined time.Time
	var polls []time.Duration
	mux := http.NewServeMux()
	flow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(admission.PassHeader) == "" {
			apiErr(w, http.StatusTooManyRequests, "queue_required", false, "")
			return
		}
		s.mux.ServeHTTP(w, r)
	})
	for _, p := range []string{"GET /v1/me/eligibility", "GET /v1/clinics", "POST /v1/bookings", "GET /v1/bookings"} {
		mux.Handle(p, flow)
	}
	answer := func(w http.ResponseWriter, status int, v map[string]any) {
		w.Header().Set("Content-Type", "application/json")
		if v["state"] == "waiting" {
			w.Header().Set("Retry-After", "2")
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("POST /v1/queue", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		joined = time.Now()
		mu.Unlock()
		answer(w, http.StatusCreated, map[string]any{"ticket": "T", "state": "waiting", "position": 3, "estimated_wait_seconds": 6, "poll_after_seconds": 2})
	})
	mux.HandleFunc("GET /v1/queue/{ticket}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		polls = append(polls, time.Since(joined))
		n := len(polls)
		mu.Unlock()
		if n < 2 {
			answer(w, http.StatusOK, map[string]any{"ticket": "T", "state": "waiting", "position": 1, "estimated_wait_seconds": 2, "poll_after_seconds": 2})
			return
		}
		answer(w, http.StatusOK, map[string]any{"ticket": "T", "state": "admitted", "pass": "P"})
	})
	mux.Handle("/", s.mux)
	sum := runOne(t, mux, Config{Shape: ShapeClosed, Concurrency: 1, MaxRetryWait: 50 * time.Millisecond})
	if sum.Booked != 1 || len(sum.Errors) != 0 {
		t.Fatalf("booked %d errors %v outcomes %v", sum.Booked, sum.Errors, sum.Outcomes)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(polls) != 2 || polls[0] < 1900*time.Millisecond || polls[1]-polls[0] < 1900*time.Millisecond {
		t.Fatalf("polls at %v after the join, want two, 2 s apart as Retry-After said", polls)
	}
}
