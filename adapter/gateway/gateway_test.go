package gateway_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/adapter/gateway"
	"github.com/yeyak/yeyak/adapter/registrytest"
	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/mocks/population"
	"github.com/yeyak/yeyak/mocks/registry"
)

// personOf converts a suite person to the mock's population form. Sex must
// be set: a zero byte is not valid text for PostgreSQL's COPY.
func personOf(r adapter.Record) population.Person {
	p := population.Person{ID: r.PersonID, BirthDate: booking.DateOf(r.BirthDate), Sex: 'F',
		Contraindicated: r.Contraindicated, Excluded: r.Excluded}
	for _, d := range r.Doses {
		p.Doses = append(p.Doses, population.Dose{Number: d.Number, Product: d.Product, Date: booking.DateOf(d.Date)})
	}
	return p
}

// attempt is one HTTP request the mock gateway received.
type attempt struct {
	method, path string
	at           time.Time
}

// counter wraps the mock's handler and records every request, so tests
// count attempts on the server side.
type counter struct {
	next http.Handler
	mu   sync.Mutex
	seen []attempt
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		c.mu.Lock()
		c.seen = append(c.seen, attempt{r.Method, r.URL.Path, time.Now()})
		c.mu.Unlock()
	}
	c.next.ServeHTTP(w, r)
}

func (c *counter) attempts(method string) []attempt {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []attempt
	for _, a := range c.seen {
		if method == "" || a.method == method {
			out = append(out, a)
		}
	}
	return out
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// setup starts the mock registry's gateway face behind a request counter
// and a client for it.
func setup(t *testing.T, cfg gateway.Config) (*registry.Registry, *counter, *gateway.Client) {
	t.Helper()
	reg := registry.NewEmpty()
	cnt := &counter{next: reg.Handler()}
	srv := httptest.NewServer(cnt)
	t.Cleanup(srv.Close)
	cfg.BaseURL = srv.URL
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	if cfg.RetryWaitMin == 0 {
		cfg.RetryWaitMin = time.Millisecond
		cfg.RetryWaitMax = 5 * time.Millisecond
	}
	c, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return reg, cnt, c
}

func setFaults(t *testing.T, reg *registry.Registry, f registry.Faults) {
	t.Helper()
	if err := reg.SetFaults(f); err != nil {
		t.Fatal(err)
	}
}

func TestContractGatewayOverMock(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) (adapter.Registry, registrytest.Seeder) {
		reg, _, c := setup(t, gateway.Config{})
		return c, registrytest.SeederFunc(func(_ context.Context, people []adapter.Record) error {
			for _, r := range people {
				reg.Add(personOf(r))
			}
			return nil
		})
	})
}

var alice = population.Person{ID: "GW-ALICE", BirthDate: booking.MustDate("1961-03-14")}

func rec(id string) adapter.BookingRecord {
	return adapter.BookingRecord{BookingID: id, PersonID: alice.ID, CampaignID: "c1", ClinicID: "o1",
		Date: time.Date(2021, 7, 27, 0, 0, 0, 0, time.UTC), Product: "pfizer", Dose: 1}
}

func TestRetriesOnlyWhatIsRetryable(t *testing.T) {
	tests := []struct {
		name         string
		faults       registry.Faults
		call         func(context.Context, *gateway.Client) error
		method       string
		wantErr      error
		wantAttempts int
	}{
		{"5xx read is retried", registry.Faults{ErrorRate: 1}, func(ctx context.Context, c *gateway.Client) error {
			_, err := c.Eligibility(ctx, alice.ID)
			return err
		}, "GET", adapter.ErrUnavailable, 3},
		{"5xx batch read is retried", registry.Faults{ErrorRate: 1}, func(ctx context.Context, c *gateway.Client) error {
			_, err := c.EligibilityBulk(ctx, []string{alice.ID})
			return err
		}, "POST", adapter.ErrUnavailable, 3},
		{"5xx idempotent PUT is retried", registry.Faults{ErrorRate: 1}, func(ctx context.Context, c *gateway.Client) error {
			return c.RecordBooking(ctx, rec("b1"))
		}, "PUT", adapter.ErrUnavailable, 3},
		{"5xx idempotent DELETE is retried", registry.Faults{ErrorRate: 1}, func(ctx context.Context, c *gateway.Client) error {
			return c.CancelBooking(ctx, "b1")
		}, "DELETE", adapter.ErrUnavailable, 3},
		{"429 is retried", registry.Faults{ThrottleRate: 1, RetryAfter: time.Second}, func(ctx context.Context, c *gateway.Client) error {
			return c.Ping(ctx)
		}, "GET", adapter.ErrUnavailable, 2},
		{"404 is final", registry.Faults{}, func(ctx context.Context, c *gateway.Client) error {
			_, err := c.Eligibility(ctx, "GW-NOBODY")
			return err
		}, "GET", adapter.ErrNotFound, 1},
		{"422 is final", registry.Faults{}, func(ctx context.Context, c *gateway.Client) error {
			b := rec("b2")
			b.PersonID = "GW-NOBODY"
			return c.RecordBooking(ctx, b)
		}, "PUT", adapter.ErrRejected, 1},
		{"400 is final", registry.Faults{}, func(ctx context.Context, c *gateway.Client) error {
			b := rec("b3")
			b.Dose = 0 // malformed
			return c.RecordBooking(ctx, b)
		}, "PUT", adapter.ErrRejected, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			maxRetries := 2
			if tc.faults.ThrottleRate > 0 {
				maxRetries = 1 // one Retry-After wait of 1s is enough
			}
			reg, cnt, c := setup(t, gateway.Config{MaxRetries: maxRetries})
			reg.Add(alice)
			setFaults(t, reg, tc.faults)
			err := tc.call(context.Background(), c)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
			if n := len(cnt.attempts(tc.method)); n != tc.wantAttempts {
				t.Fatalf("%d attempts on the server, want %d", n, tc.wantAttempts)
			}
		})
	}
}

func TestRetryThenSuccessIsIdempotent(t *testing.T) {
	reg, cnt, c := setup(t, gateway.Config{MaxRetries: 5})
	reg.Add(alice)
	// Half the writes are applied and then answered 500 (a lost reply).
	setFaults(t, reg, registry.Faults{ErrorAfterRate: 0.5})
	for i := range 20 {
		id := "b-" + string(rune('a'+i))
		if err := c.RecordBooking(context.Background(), rec(id)); err != nil && !errors.Is(err, adapter.ErrRejected) {
			t.Fatalf("record %s: %v", id, err)
		}
	}
	total, active := reg.Reservations()
	if total != 20 || active != 20 {
		t.Fatalf("reservations total %d active %d, want 20 each (no doubles)", total, active)
	}
	if n := len(cnt.attempts("PUT")); n <= 20 {
		t.Fatalf("only %d PUT attempts: the lost replies should have been retried", n)
	}
}

func TestRetryAfterIsRespected(t *testing.T) {
	reg, cnt, c := setup(t, gateway.Config{MaxRetries: 1})
	setFaults(t, reg, registry.Faults{ThrottleRate: 1, RetryAfter: time.Second})
	err := c.Ping(context.Background())
	if !errors.Is(err, adapter.ErrUnavailable) {
		t.Fatalf("throttled ping: %v", err)
	}
	a := cnt.attempts("GET")
	if len(a) != 2 {
		t.Fatalf("%d attempts, want 2", len(a))
	}
	// Lower bound only: the retry did not come sooner than asked.
	if gap := a[1].at.Sub(a[0].at); gap < 900*time.Millisecond {
		t.Fatalf("retried after %v, Retry-After asked for 1s", gap)
	}
}

func TestRetryAfterLongerThanMaxIsNotWaited(t *testing.T) {
	reg, cnt, c := setup(t, gateway.Config{MaxRetries: 3, RetryAfterMax: 500 * time.Millisecond})
	setFaults(t, reg, registry.Faults{ThrottleRate: 1, RetryAfter: 3 * time.Second})
	start := time.Now()
	err := c.Ping(context.Background())
	if !errors.Is(err, adapter.ErrUnavailable) || !strings.Contains(err.Error(), "429") {
		t.Fatalf("got %v, want unavailable 429", err)
	}
	if n := len(cnt.attempts("")); n != 1 {
		t.Fatalf("%d attempts, want 1: a 3s Retry-After is over RetryAfterMax", n)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("waited %v", waited)
	}
}

func TestNoRetryStorm(t *testing.T) {
	const callers, maxRetries = 50, 2
	reg, cnt, c := setup(t, gateway.Config{MaxRetries: maxRetries, MaxConnsPerHost: 4})
	reg.Add(alice)
	setFaults(t, reg, registry.Faults{ErrorRate: 1})
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() { _, _ = c.Eligibility(context.Background(), alice.ID) })
	}
	wg.Wait()
	if n := len(cnt.attempts("")); n != callers*(maxRetries+1) {
		t.Fatalf("%d attempts for %d failing calls, want exactly %d", n, callers, callers*(maxRetries+1))
	}
	// A caller's deadline stops retries: no attempts after it.
	before := len(cnt.attempts(""))
	fast, err := gateway.New(gateway.Config{BaseURL: strings.TrimSuffix(c2url(t, reg, cnt), "/"), MaxRetries: 100,
		RetryWaitMin: 20 * time.Millisecond, RetryWaitMax: 20 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = fast.Eligibility(ctx, alice.ID)
	if !errors.Is(err, adapter.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want unavailable + deadline", err)
	}
	if n := len(cnt.attempts("")) - before; n > 10 {
		t.Fatalf("%d attempts in a 100ms budget with 20ms backoff", n)
	}
}

// c2url serves cnt on a new test server (the same mock and counter).
func c2url(t *testing.T, _ *registry.Registry, cnt *counter) string {
	srv := httptest.NewServer(cnt)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestOutageAndStall(t *testing.T) {
	reg := registry.NewEmpty()
	reg.Add(alice)
	srv, err := reg.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := gateway.New(gateway.Config{BaseURL: srv.URL(), AttemptTimeout: 100 * time.Millisecond,
		RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Eligibility(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}

	setFaults(t, reg, registry.Faults{Outage: true})
	_, err = c.Eligibility(ctx, alice.ID)
	if !errors.Is(err, adapter.ErrUnavailable) {
		t.Fatalf("outage: %v", err)
	}
	if strings.Contains(err.Error(), alice.ID) || strings.Contains(err.Error(), "127.0.0.1") && strings.Contains(err.Error(), "/persons/G") {
		t.Fatalf("error leaks the person id / URL: %v", err)
	}

	setFaults(t, reg, registry.Faults{Stall: true})
	start := time.Now()
	_, err = c.Eligibility(ctx, alice.ID)
	if !errors.Is(err, adapter.ErrUnavailable) {
		t.Fatalf("stall: %v", err)
	}
	// 3 attempts of 100ms each plus tiny waits; generous upper bound.
	if waited := time.Since(start); waited > 3*time.Second {
		t.Fatalf("stalled call took %v with a 100ms attempt timeout", waited)
	}

	setFaults(t, reg, registry.Faults{})
	if _, err := c.Eligibility(ctx, alice.ID); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "not a url", "http://"} {
		if _, err := gateway.New(gateway.Config{BaseURL: u}); err == nil {
			t.Errorf("BaseURL %q accepted", u)
		}
	}
}

// TestTimeoutBoundsCallWithoutDeadline: a caller that gives no deadline is
// still bounded by Config.Timeout, retries and backoff included, against a
// registry that stalls (accepts, never answers).
func TestTimeoutBoundsCallWithoutDeadline(t *testing.T) {
	const timeout = 400 * time.Millisecond
	reg, cnt, c := setup(t, gateway.Config{Timeout: timeout, AttemptTimeout: 150 * time.Millisecond, MaxRetries: 100,
		RetryWaitMin: 10 * time.Millisecond, RetryWaitMax: 10 * time.Millisecond})
	reg.Add(alice)
	setFaults(t, reg, registry.Faults{Stall: true})
	start := time.Now()
	_, err := c.Eligibility(context.Background(), alice.ID)
	waited := time.Since(start)
	if !errors.Is(err, adapter.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stalled call: %v, want ErrUnavailable wrapping DeadlineExceeded", err)
	}
	// Generous upper bound: without Timeout, 101 attempts of 150ms would
	// take over 15s.
	if waited > timeout+2*time.Second {
		t.Fatalf("call took %v with a %v overall timeout", waited, timeout)
	}
	// 150ms attempts in a 400ms budget: a handful, never a hundred.
	if n := len(cnt.attempts("GET")); n > 4 {
		t.Fatalf("%d attempts in a %v budget of 150ms attempts", n, timeout)
	}
}

// TestRetryAfterPastDeadlineIsNotWaited: a Retry-After that would end after
// the call's deadline fails the call at once instead of sleeping into a
// timeout.
func TestRetryAfterPastDeadlineIsNotWaited(t *testing.T) {
	reg, cnt, c := setup(t, gateway.Config{Timeout: 500 * time.Millisecond, MaxRetries: 3})
	setFaults(t, reg, registry.Faults{ThrottleRate: 1, RetryAfter: 2 * time.Second})
	start := time.Now()
	err := c.Ping(context.Background())
	waited := time.Since(start)
	if !errors.Is(err, adapter.ErrUnavailable) || !strings.Contains(err.Error(), "429") {
		t.Fatalf("got %v, want unavailable 429", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v: the client slept into its deadline instead of failing at once", err)
	}
	if n := len(cnt.attempts("")); n != 1 {
		t.Fatalf("%d attempts, want 1: a 2s Retry-After does not fit a 500ms budget", n)
	}
	if waited > 400*time.Millisecond+time.Second {
		t.Fatalf("waited %v", waited)
	}
}
