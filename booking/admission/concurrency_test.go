package admission

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestConcurrentJoinsAndPolls hammers one controller from many goroutines
// (joins, duplicate joins, polls, guarded requests, health observations)
// and checks that every person holds exactly one place. Run with -race.
func TestConcurrentJoinsAndPolls(t *testing.T) {
	for _, name := range []string{"memory", "redis"} {
		t.Run(name, func(t *testing.T) {
			c, clk, _ := newTestController(t, func(cfg *Config) {
				cfg.Floor, cfg.Ceiling, cfg.Initial = 100, 1000, 100
				cfg.Logger = discardLogger()
				if name == "redis" {
					cfg.Store = redisStoreFor(t)
				}
			})
			const workers, each = 8, 200
			guarded := c.Middleware(okHandler)
			var wg sync.WaitGroup
			seqs := make([][]uint64, workers)
			for g := range workers {
				wg.Go(func() {
					ctx := context.Background()
					for i := range each {
						person := fmt.Sprintf("w%d-%d", g, i)
						s, err := c.Join(ctx, person)
						if err != nil {
							t.Error(err)
							return
						}
						again, err := c.Join(ctx, person) // a reconnect
						if err != nil || again.Position > s.Position && s.State == "waiting" {
							t.Errorf("reconnect moved %s back: %+v → %+v (%v)", person, s, again, err)
						}
						if _, err := c.Poll(ctx, person, s.Ticket); err != nil {
							t.Error(err)
						}
						r, _ := http.NewRequest("GET", "/v1/clinics", nil)
						r.Header.Set("X-Person", person)
						guarded.ServeHTTP(discardWriter{}, r)
						c.Observe(time.Millisecond, false)
						clk.Add(time.Millisecond)
						cl, _ := c.sign.verify(kindTicket, s.Ticket, person, clk.Now())
						seqs[g] = append(seqs[g], cl.Seq)
					}
				})
			}
			wg.Wait()
			seen := map[uint64]bool{}
			for _, ss := range seqs {
				for _, s := range ss {
					if seen[s] {
						t.Fatalf("seq %d handed out twice", s)
					}
					seen[s] = true
				}
			}
			if len(seen) != workers*each {
				t.Fatalf("%d places for %d people", len(seen), workers*each)
			}
		})
	}
}

type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}
