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

// TestLaneSharedByHandlers: two handlers bound to one lane of 2 have at
// most 2 requests at work together (the waiting room's and the demo
// sign-ins' share --queue-workers).
func TestLaneSharedByHandlers(t *testing.T) {
	var mu sync.Mutex
	busy, peak := 0, 0
	release := make(chan struct{})
	work := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		busy++
		peak = max(peak, busy)
		mu.Unlock()
		<-release
		mu.Lock()
		busy--
		mu.Unlock()
	})
	l := newLane(2)
	a, b := l.bound(work), l.bound(work)
	var wg sync.WaitGroup
	for i := range 6 {
		h := a
		if i%2 == 1 {
			h = b
		}
		wg.Go(func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/v1/queue", nil)) })
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := busy
		mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d at work, want 2", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // a third would have started by now
	close(release)
	wg.Wait()
	if peak != 2 {
		t.Fatalf("peak %d at work over both handlers, want 2", peak)
	}
}

// TestBoundedServesAtMostN: at most n requests are at work at once; the
// others wait their turn and are then served; a client that leaves while
// waiting is dropped without work.
func TestBoundedServesAtMostN(t *testing.T) {
	var mu sync.Mutex
	busy, peak := 0, 0
	release := make(chan struct{})
	h := bounded(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		busy++
		peak = max(peak, busy)
		mu.Unlock()
		<-release
		mu.Lock()
		busy--
		mu.Unlock()
	}), 2)
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/v1/queue", nil)) })
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		b := busy
		mu.Unlock()
		if b == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d at work, want 2", b)
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/v1/queue", nil).WithContext(ctx)) // gone: returns at once
	close(release)
	wg.Wait()
	if peak != 2 {
		t.Fatalf("peak %d at work, want 2", peak)
	}
}
