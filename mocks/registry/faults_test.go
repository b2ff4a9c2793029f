package registry_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/mocks/registry"
)

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func setFaults(t *testing.T, r *registry.Registry, f registry.Faults) {
	t.Helper()
	if err := r.SetFaults(f); err != nil {
		t.Fatal(err)
	}
}

func TestFaultLatency(t *testing.T) {
	ctx := context.Background()
	r := newTestRegistry(t)
	setFaults(t, r, registry.Faults{Latency: 30 * time.Millisecond})
	start := time.Now()
	if _, err := r.Eligibility(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("call took %v with 30ms latency", d)
	}
	// The caller's deadline ends injected latency.
	setFaults(t, r, registry.Faults{Latency: time.Hour})
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err := r.Eligibility(cctx, alice.ID)
	if !errors.Is(err, adapter.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want unavailable + deadline", err)
	}
	// Long tail: P=1 always adds Extra.
	setFaults(t, r, registry.Faults{LatencyTail: registry.Tail{P: 1, Extra: 25 * time.Millisecond}})
	start = time.Now()
	_ = r.Ping(ctx)
	if d := time.Since(start); d < 25*time.Millisecond {
		t.Fatalf("tail not applied: %v", d)
	}
}

func TestFaultErrorRate(t *testing.T) {
	ctx := context.Background()
	r := registry.New(registry.Config{FaultSeed: 7, Faults: registry.Faults{ErrorRate: 0.3}})
	r.Add(alice)
	failed := 0
	for range 2000 {
		_, err := r.Eligibility(ctx, alice.ID)
		if err != nil {
			var fe *registry.FaultError
			if !errors.Is(err, adapter.ErrUnavailable) || !errors.As(err, &fe) || fe.Kind != registry.FaultInjected || fe.Status != 500 {
				t.Fatalf("injected error %v", err)
			}
			failed++
		}
	}
	if failed < 500 || failed > 700 {
		t.Fatalf("%d of 2000 failed at rate 0.3", failed)
	}
	if s := r.Stats(); s.Injected != int64(failed) || s.Reads != int64(2000-failed) {
		t.Fatalf("stats %+v", s)
	}
	// Seeded: the same seed fails the same calls.
	again := registry.New(registry.Config{FaultSeed: 7, Faults: registry.Faults{ErrorRate: 0.3}})
	again.Add(alice)
	n := 0
	for range 2000 {
		if _, err := again.Eligibility(ctx, alice.ID); err != nil {
			n++
		}
	}
	if n != failed {
		t.Fatalf("same seed: %d then %d failures", failed, n)
	}
}

func TestFaultScope(t *testing.T) {
	ctx := context.Background()
	r := newTestRegistry(t)
	setFaults(t, r, registry.Faults{ErrorRate: 1, Scope: "write"})
	if _, err := r.Eligibility(ctx, alice.ID); err != nil {
		t.Fatalf("read failed under write-scoped faults: %v", err)
	}
	if err := r.RecordBooking(ctx, rec("s1", alice.ID, 1)); !errors.Is(err, adapter.ErrUnavailable) {
		t.Fatalf("write: %v", err)
	}
	setFaults(t, r, registry.Faults{ErrorRate: 1, Scope: "read"})
	if err := r.RecordBooking(ctx, rec("s1", alice.ID, 1)); err != nil {
		t.Fatalf("write failed under read-scoped faults: %v", err)
	}
	if err := r.Ping(ctx); !errors.Is(err, adapter.ErrUnavailable) {
		t.Fatalf("ping: %v", err)
	}
}

func TestFaultErrorAfterApply(t *testing.T) {
	ctx := context.Background()
	r := newTestRegistry(t)
	setFaults(t, r, registry.Faults{ErrorAfterRate: 1})
	b := rec("lost-reply", alice.ID, 1)
	if err := r.RecordBooking(ctx, b); !errors.Is(err, adapter.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if res, ok := r.Reservation(b.BookingID); !ok || !res.Active() {
		t.Fatal("write not applied before the error")
	}
	setFaults(t, r, registry.Faults{})
	if err := r.RecordBooking(ctx, b); err != nil {
		t.Fatal(err)
	}
	if records, _ := r.WritesFor(b.BookingID); records != 2 {
		t.Fatalf("records %d", records)
	}
	if total, _ := r.Reservations(); total != 1 {
		t.Fatalf("%d reservations after the retry", total)
	}
}

func TestFaultOutageGoAPI(t *testing.T) {
	ctx := context.Background()
	r := newTestRegistry(t)
	setFaults(t, r, registry.Faults{Outage: true, Latency: time.Hour})
	start := time.Now()
	for _, err := range []error{
		r.Ping(ctx),
		r.RecordBooking(ctx, rec("o1", alice.ID, 1)),
		r.CancelBooking(ctx, "o1"),
		func() error { _, err := r.Eligibility(ctx, alice.ID); return err }(),
		func() error { _, err := r.EligibilityBulk(ctx, []string{alice.ID}); return err }(),
	} {
		if !errors.Is(err, adapter.ErrUnavailable) {
			t.Fatalf("err = %v", err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("outage calls took %v: they must fail at once", d)
	}
	if rc, cc := r.WritesFor("o1"); rc+cc != 0 || r.Stats().Refused != 5 {
		t.Fatalf("refused writes counted as received: %d %d %+v", rc, cc, r.Stats())
	}
}

func TestFaultStallGoAPI(t *testing.T) {
	ctx := context.Background()
	r := newTestRegistry(t)
	setFaults(t, r, registry.Faults{Stall: true})

	// Never answers until the caller's context ends.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	_, err := r.Eligibility(cctx, alice.ID)
	if !errors.Is(err, adapter.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stalled call: %v", err)
	}

	// ... or until the stall is cleared: then it proceeds.
	done := make(chan error, 1)
	go func() { done <- r.RecordBooking(ctx, rec("st1", alice.ID, 1)) }()
	eventually(t, "call to stall", func() bool { return r.Stats().Stalled == 2 })
	select {
	case err := <-done:
		t.Fatalf("stalled call answered: %v", err)
	default:
	}
	setFaults(t, r, registry.Faults{})
	if err := <-done; err != nil {
		t.Fatalf("after stall cleared: %v", err)
	}
	if _, ok := r.Reservation("st1"); !ok {
		t.Fatal("stalled write not applied after the stall")
	}
}

func TestFaultCapacitySlowdown(t *testing.T) {
	ctx := context.Background()
	r := newTestRegistry(t)
	// Each call holds the registry 40ms; capacity 2, so a burst of 8 runs
	// with up to 6 calls over capacity, each adding 25ms.
	setFaults(t, r, registry.Faults{Latency: 40 * time.Millisecond, Capacity: 2, OverloadStep: 25 * time.Millisecond})
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		slowest time.Duration
		start   = make(chan struct{})
	)
	for range 8 {
		wg.Go(func() {
			<-start
			t0 := time.Now()
			if err := r.Ping(ctx); err != nil {
				t.Error(err)
			}
			mu.Lock()
			slowest = max(slowest, time.Since(t0))
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	s := r.Stats()
	if s.Overloaded == 0 || s.MaxInFlight <= 2 {
		t.Fatalf("no call slowed by overload: %+v", s)
	}
	// Loose: the slowest call paid at least one overload step more.
	if slowest < 65*time.Millisecond {
		t.Fatalf("slowest call %v, want > latency + one overload step", slowest)
	}
}

func TestGatewayFaults(t *testing.T) {
	r := newTestRegistry(t)
	srv := serve(t, r)
	ping := srv.URL + "/api/v1/ping"

	setFaults(t, r, registry.Faults{ErrorRate: 1})
	if code, _, m := call(t, "GET", ping, ""); code != 500 || m["resultCode"] != "E500" {
		t.Fatalf("error rate 1: %d %v", code, m)
	}
	setFaults(t, r, registry.Faults{ThrottleRate: 1, RetryAfter: 1500 * time.Millisecond})
	code, h, m := call(t, "GET", ping, "")
	if code != 429 || h.Get("Retry-After") != "2" || m["resultCode"] != "E429" {
		t.Fatalf("throttle: %d %v %v", code, h, m)
	}
	var fe *registry.FaultError
	if err := r.Ping(context.Background()); !errors.As(err, &fe) || fe.Kind != registry.FaultThrottle || fe.RetryAfter != 1500*time.Millisecond {
		t.Fatalf("Go API throttle: %v", err)
	}

	// Shed: beyond 1 call in flight, 503 + Retry-After. One call is held
	// in a long injected latency; the next one is shed at once.
	setFaults(t, r, registry.Faults{Latency: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	held := make(chan struct{})
	go func() {
		defer close(held)
		req, _ := http.NewRequestWithContext(ctx, "GET", ping, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	eventually(t, "a call in flight", func() bool { return r.Stats().InFlight == 1 })
	setFaults(t, r, registry.Faults{Latency: time.Hour, Shed: 1})
	code, h, m = call(t, "DELETE", srv.URL+"/api/v1/reservations/x", "")
	if code != 503 || h.Get("Retry-After") != "1" || m["resultCode"] != "E503" {
		t.Fatalf("shed: %d %v %v", code, h, m)
	}
	cancel()
	<-held
	eventually(t, "stalled call to end", func() bool { return r.Stats().InFlight == 0 })
}

func TestGatewayStall(t *testing.T) {
	r := newTestRegistry(t)
	srv := serve(t, r)
	setFaults(t, r, registry.Faults{Stall: true})

	client := &http.Client{Timeout: 50 * time.Millisecond}
	if resp, err := client.Get(srv.URL + "/api/v1/ping"); err == nil {
		resp.Body.Close()
		t.Fatalf("stalled gateway answered %d", resp.StatusCode)
	}
	// A stalled request is answered once the stall is cleared.
	got := make(chan int, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/api/v1/persons/" + alice.ID)
		if err != nil {
			got <- -1
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	eventually(t, "request to stall", func() bool { return r.Stats().Stalled == 2 })
	setFaults(t, r, registry.Faults{})
	if code := <-got; code != 200 {
		t.Fatalf("after stall: %d", code)
	}
}

func TestBareHandlerOutageDropsConnections(t *testing.T) {
	r := newTestRegistry(t)
	srv := serve(t, r)
	setFaults(t, r, registry.Faults{Outage: true})
	if resp, err := http.Get(srv.URL + "/api/v1/ping"); err == nil {
		resp.Body.Close()
		t.Fatalf("outage answered %d", resp.StatusCode)
	}
	// Control endpoints stay up.
	if code, _, _ := call(t, "GET", srv.URL+"/mock/stats", ""); code != 200 {
		t.Fatalf("control during outage: %d", code)
	}
}

func TestServerOutageRefusesThenRecoversOnSamePort(t *testing.T) {
	r := newTestRegistry(t)
	srv, err := r.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ping := srv.URL() + "/api/v1/ping"
	if code, _, _ := call(t, "GET", ping, ""); code != 200 {
		t.Fatalf("ping %d", code)
	}
	addr := srv.URL()[len("http://"):]

	// Set the outage through the gateway listener itself: the answer
	// arrives, then the listener goes away.
	if code, _, _ := call(t, "PUT", srv.URL()+"/mock/faults", `{"outage":true}`); code != 200 {
		t.Fatalf("PUT outage: %d", code)
	}
	eventually(t, "listener to close", func() bool { return !srv.Up() })
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		t.Fatal("connection accepted during outage")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial during outage: %v, want connection refused", err)
	}

	// The control listener stays up; clearing the outage there reopens
	// the same port.
	if code, _, _ := call(t, "PUT", srv.ControlURL()+"/mock/faults", `{}`); code != 200 {
		t.Fatalf("clear outage: %d", code)
	}
	if !srv.Up() {
		t.Fatal("gateway not up after SetFaults returned")
	}
	if code, _, m := call(t, "GET", ping, ""); code != 200 || m["status"] != "ok" {
		t.Fatalf("after outage: %d %v", code, m)
	}

	// Go API outage closes the listener before SetFaults returns.
	setFaults(t, r, registry.Faults{Outage: true})
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("connection accepted right after SetFaults(Outage)")
	}
	setFaults(t, r, registry.Faults{})
	if code, _, _ := call(t, "GET", ping, ""); code != 200 {
		t.Fatalf("second recovery: %d", code)
	}
}

func TestServerCloseEndsStalledCalls(t *testing.T) {
	r := newTestRegistry(t)
	srv, err := r.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	setFaults(t, r, registry.Faults{Stall: true})
	errc := make(chan error, 1)
	go func() {
		resp, err := http.Get(srv.URL() + "/api/v1/ping")
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	eventually(t, "request to stall", func() bool { return r.Stats().Stalled == 1 })
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err == nil {
		t.Fatal("stalled call answered after Close")
	}
	eventually(t, "handler to end", func() bool { return r.Stats().InFlight == 0 })
}
