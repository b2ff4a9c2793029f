package admission

import (
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// clock is a fake server clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var (
	keyA = Key{ID: "a", Secret: []byte("0123456789abcdef-key-a")}
	keyB = Key{ID: "b", Secret: []byte("0123456789abcdef-key-b")}
	t0   = time.Date(2021, time.August, 9, 19, 0, 0, 0, time.UTC)
)

// headerPerson is the tests' PersonFunc: the person id in X-Person (the
// host's verified token in real use).
func headerPerson(r *http.Request) (string, bool) {
	p := r.Header.Get("X-Person")
	return p, p != ""
}

// newTestController returns a controller on a fake clock with test keys and
// a fixed shuffle seed; mutate adjusts the config first.
func newTestController(tb testing.TB, mutate func(*Config)) (*Controller, *clock, *prometheus.Registry) {
	tb.Helper()
	clk := newClock(t0)
	reg := prometheus.NewRegistry()
	cfg := Config{
		Keys:        []Key{keyA},
		PersonFunc:  headerPerson,
		Now:         clk.Now,
		Registerer:  reg,
		ShuffleSeed: []byte("fixed test seed"),
		Floor:       1, Ceiling: 100, Initial: 10,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return c, clk, reg
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
