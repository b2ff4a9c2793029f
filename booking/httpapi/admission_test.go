package httpapi_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/admission"
	"github.com/yeyak/yeyak/booking/httpapi"
)

// admClock is the waiting room's clock, moved by the test.
type admClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *admClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *admClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newWaitingRoomEnv is the API with the waiting room wired as yeyakd wires
// it (Flow middleware, queue endpoints mounted beside /v1), admitting one
// person a second with a free-flow bucket of one request.
func newWaitingRoomEnv(t *testing.T) (*env, *admClock) {
	clk := &admClock{t: testNow}
	var adm *admission.Controller
	e := newEnvWith(t, backends[0].dsn(t), nil, func(cfg *httpapi.Config) {
		v := cfg.Verifier
		var err error
		adm, err = admission.New(admission.Config{
			Keys:       []admission.Key{{ID: "k1", Secret: []byte("0123456789abcdef0123")}},
			PersonFunc: httpapi.PersonOf(v),
			Floor:      1, Ceiling: 1, RequestsPerAdmit: 1, PassTTL: time.Minute,
			Now: clk.now, ShuffleSeed: []byte("fixed"),
		})
		if err != nil {
			t.Fatal(err)
		}
		q := adm.Handler()
		cfg.Extra = map[string]http.Handler{"POST /v1/queue": q, "GET /v1/queue/{ticket}": q, "GET /queue": q}
		cfg.Flow = append(cfg.Flow, adm.Middleware)
	})
	return e, clk
}

// TestWaitingRoomOnTheRealRoutes drives the 2021 bypasses against the
// booking routes as yeyakd mounts them: during a surge a booking call
// without a pass, with another person's pass, with a tampered or an
// expired pass, or with a client clock set ahead is refused with 429
// queue_required and writes nothing; a person who queues gets a pass and
// books with it; another person's ticket is not found.
func TestWaitingRoomOnTheRealRoutes(t *testing.T) {
	e, clk := newWaitingRoomEnv(t)
	a, b := e.token(personA), e.token(personB)
	body := bookBody("C000001", vday, "pfizer")

	// The free-flow bucket lets the first request through and hands A a pass.
	r := e.do("GET", "/v1/me/eligibility?campaign=c2026", a, "", nil)
	passA := r.header.Get(admission.PassHeader)
	if r.status != 200 || passA == "" {
		t.Fatalf("first request: %d %s, pass %q", r.status, r.body, passA)
	}

	before := e.counts()
	refused := func(name, tok string, hdr map[string]string) {
		t.Helper()
		if hdr == nil {
			hdr = map[string]string{}
		}
		hdr["Idempotency-Key"] = "k-" + strings.ReplaceAll(name, " ", "-")
		r := e.do("POST", "/v1/bookings", tok, body, hdr)
		if r.status != 429 || r.code(t) != "queue_required" || r.header.Get("Location") != "/v1/queue" || r.header.Get("Retry-After") == "" {
			t.Fatalf("%s: %d %s %v, want 429 queue_required with Location and Retry-After", name, r.status, r.body, r.header)
		}
	}
	refused("no pass", b, nil)
	refused("another person's pass", b, map[string]string{admission.PassHeader: passA})
	refused("tampered pass", a, map[string]string{admission.PassHeader: passA[:len(passA)-2] + "xx"})
	refused("client clock ahead", b, map[string]string{"Date": testNow.Add(time.Hour).Format(http.TimeFormat)})
	if got := e.counts(); got != before {
		t.Fatalf("refused calls wrote: before %+v after %+v", before, got)
	}

	// A's own pass books.
	if r := e.do("POST", "/v1/bookings", a, body, map[string]string{"Idempotency-Key": "k-a", admission.PassHeader: passA}); r.status != 201 {
		t.Fatalf("A with a pass: %d %s", r.status, r.body)
	}
	// Two minutes on, B queues and takes the banked admission at once; C
	// queues behind and waits: the surge is on, and A's pass has expired on
	// the server's clock.
	clk.add(2 * time.Minute)
	c := e.token(personC)
	jb := e.do("POST", "/v1/queue", b, "", nil)
	jc := e.do("POST", "/v1/queue", c, "", nil)
	if jb.status != 201 || jc.status != 201 || jc.json(t)["state"] != "waiting" {
		t.Fatalf("joins: B %d %s, C %d %s", jb.status, jb.body, jc.status, jc.body)
	}
	refused("expired pass", a, map[string]string{admission.PassHeader: passA})
	ticketB, ticketC := jb.json(t)["ticket"].(string), jc.json(t)["ticket"].(string)
	if again := e.do("POST", "/v1/queue", c, "", nil); again.status != 200 || again.json(t)["ticket"] != ticketC {
		t.Fatalf("second join: %d %s, want the same ticket", again.status, again.body)
	}
	if r := e.do("GET", "/v1/queue/"+ticketB, a, "", nil); r.status != 404 || r.code(t) != "ticket_not_found" {
		t.Fatalf("A polls B's ticket: %d %s, want 404 ticket_not_found", r.status, r.body)
	}
	// B's join took the banked admission: its answer carries the pass. A
	// poll in the same second finds the door (one pass a second) shut.
	passB, _ := jb.json(t)["pass"].(string)
	if jb.json(t)["state"] != "admitted" || passB == "" {
		t.Fatalf("B's join: %s, want admitted with a pass", jb.body)
	}
	if pb := e.do("GET", "/v1/queue/"+ticketB, b, "", nil); pb.status != 200 || pb.json(t)["state"] != "waiting" || pb.json(t)["position"] != 1.0 {
		t.Fatalf("B's poll in the same second: %d %s, want next at the door (waiting, position 1)", pb.status, pb.body)
	}
	if r := e.do("POST", "/v1/bookings", b, body, map[string]string{"Idempotency-Key": "k-b", admission.PassHeader: passB}); r.status != 201 {
		t.Fatalf("B with a pass: %d %s", r.status, r.body)
	}
	// C is admitted a second later (one person a second).
	clk.add(time.Second)
	if pc := e.do("GET", "/v1/queue/"+ticketC, c, "", nil); pc.status != 200 || pc.json(t)["state"] != "admitted" {
		t.Fatalf("C's poll a second later: %d %s, want admitted", pc.status, pc.body)
	}
	if r := e.do("GET", "/queue", "", "", nil); r.status != 200 || !strings.Contains(string(r.body), "<html") {
		t.Fatalf("waiting-room page: %d", r.status)
	}
}

// TestAdmissionCodesMatchTheAPI: the waiting room writes its own errors;
// their codes and statuses must be the API's.
func TestAdmissionCodesMatchTheAPI(t *testing.T) {
	for code, status := range map[string]int{
		admission.CodeQueueRequired: 429, admission.CodeTicketNotFound: 404,
		admission.CodeTicketExpired: 410, admission.CodeQueueUnavailable: 503,
		admission.CodeUnauthenticated: 401,
	} {
		if got := httpapi.StatusOf(booking.Code(code)); got != status {
			t.Errorf("%s: the API table says %d, the waiting room answers %d", code, got, status)
		}
	}
}
