package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/yeyak/yeyak/mocks/population"
	"github.com/yeyak/yeyak/mocks/registry"
)

func TestWarmRoster(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "roster.csv")
	if err := os.WriteFile(file, []byte("person_id,birth_date\nP1,1990-05-19\nP2,19850329\nP3,1991-07-12\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &demo{pop: population.Config{Seed: 1, People: 500}}
	mock := registry.New(registry.Config{})
	for _, tc := range []struct {
		name, roster, registry string
		demo                   *demo
		wantNil, wantErr       bool
		digit9                 int // people listed for digit 9 (-1: do not check)
	}{
		{"off", "off", "mock", d, true, false, -1},
		{"file", file, "mock", nil, false, false, 2},
		{"demo population", "", "mock", d, false, false, -1},
		{"gateway without roster", "", "gateway:http://127.0.0.1:1", nil, true, false, -1},
		{"registry roster needs oracle", "registry", "mock", nil, false, true, -1},
		{"missing file", filepath.Join(t.TempDir(), "nope"), "mock", nil, false, true, -1},
	} {
		cfg := &config{WarmRoster: tc.roster, Registry: tc.registry}
		r, _, err := warmRoster(cfg, mock, tc.demo, nil)
		if (err != nil) != tc.wantErr || (r == nil) != (tc.wantNil || tc.wantErr) {
			t.Errorf("%s: roster %v, err %v", tc.name, r, err)
			continue
		}
		if tc.digit9 >= 0 {
			ids, err := r.PeopleForDigit(ctx, 9, "", 10)
			if err != nil || len(ids) != tc.digit9 {
				t.Errorf("%s: digit 9 → %v %v, want %d people", tc.name, ids, err, tc.digit9)
			}
		}
		if tc.name == "demo population" {
			n := 0
			for dg := range 10 {
				ids, _ := r.PeopleForDigit(ctx, dg, "", 1000)
				n += len(ids)
				for _, id := range ids {
					i, _ := population.IndexOf(id)
					if population.PersonAt(d.pop, i).Digit() != dg {
						t.Fatalf("%s listed under digit %d", id, dg)
					}
				}
			}
			if n != 500 {
				t.Errorf("demo roster lists %d of 500 people", n)
			}
		}
	}
}

func TestPprofOnlyWhenAsked(t *testing.T) {
	h := withPprof(http.NotFoundHandler())
	for path, want := range map[string]int{"/debug/pprof/": 200, "/debug/pprof/cmdline": 200, "/metrics": 404} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != want {
			t.Errorf("%s: %d, want %d", path, w.Code, want)
		}
	}
}

// gatedWork is a handler that counts the requests at work in it (and the
// peak) and holds each until release is closed.
type gatedWork struct {
	mu         sync.Mutex
	busy, peak int
	release    chan struct{}
}

func newGatedWork() *gatedWork { return &gatedWork{release: make(chan struct{})} }

func (g *gatedWork) ServeHTTP(http.ResponseWriter, *http.Request) {
	g.mu.Lock()
	g.busy++
	g.peak = max(g.peak, g.busy)
	g.mu.Unlock()
	<-g.release
	g.mu.Lock()
	g.busy--
	g.mu.Unlock()
}

// serveAll sends 6 requests, alternating over hs, waits until n are at
// work, runs between (the others still waiting), then releases them all
// and returns the peak.
func (g *gatedWork) serveAll(t *testing.T, n int, between func(), hs ...http.Handler) int {
	t.Helper()
	var wg sync.WaitGroup
	for i := range 6 {
		h := hs[i%len(hs)]
		wg.Go(func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/v1/queue", nil)) })
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.mu.Lock()
		b := g.busy
		g.mu.Unlock()
		if b == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d at work, want %d", b, n)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // one more would have started by now
	between()
	close(g.release)
	wg.Wait()
	return g.peak
}

// TestLaneSharedByHandlers: two handlers bound to one lane of 2 have at
// most 2 requests at work together (the waiting room's and the demo
// sign-ins' share --queue-workers).
func TestLaneSharedByHandlers(t *testing.T) {
	g := newGatedWork()
	l := newLane(2)
	if peak := g.serveAll(t, 2, func() {}, l.bound(g), l.bound(g)); peak != 2 {
		t.Fatalf("peak %d at work over both handlers, want 2", peak)
	}
}

// TestBoundedServesAtMostN: at most n requests are at work at once; the
// others wait their turn and are then served; a client that leaves while
// waiting is dropped without work.
func TestBoundedServesAtMostN(t *testing.T) {
	g := newGatedWork()
	h := bounded(g, 2)
	peak := g.serveAll(t, 2, func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/v1/queue", nil).WithContext(ctx)) // gone: returns at once
	}, h)
	if peak != 2 {
		t.Fatalf("peak %d at work, want 2", peak)
	}
}
