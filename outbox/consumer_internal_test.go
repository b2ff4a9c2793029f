package outbox

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/segmentio/kafka-go"
	"golang.org/x/time/rate"
	_ "modernc.org/sqlite"
)

type nopReader struct{}

func (nopReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	<-ctx.Done()
	return kafka.Message{}, ctx.Err()
}
func (nopReader) CommitMessages(context.Context, ...kafka.Message) error { return nil }
func (nopReader) Stats() kafka.ReaderStats                               { return kafka.ReaderStats{} }
func (nopReader) Close() error                                           { return nil }

type nopPub struct{}

func (nopPub) WriteMessages(context.Context, ...kafka.Message) error { return nil }

// TestDefaultRateLimit: a zero Rate means the documented 200 applies per
// second with a burst of 1; rate.Inf lifts the cap.
func TestDefaultRateLimit(t *testing.T) {
	db, err := sqlx.Open("sqlite", filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		rate  rate.Limit
		want  rate.Limit
		burst int
	}{{0, 200, 1}, {50, 50, 1}, {rate.Inf, rate.Inf, 1}} {
		c, err := NewConsumer(ConsumerConfig{Handler: func(context.Context, Message) error { return nil },
			DB: db, Reader: nopReader{}, DeadLetters: nopPub{}, Rate: tc.rate})
		if err != nil {
			t.Fatal(err)
		}
		if c.lim.Limit() != tc.want || c.lim.Burst() != tc.burst {
			t.Fatalf("Rate %v: limiter %v burst %d, want %v burst %d", tc.rate, c.lim.Limit(), c.lim.Burst(), tc.want, tc.burst)
		}
	}
}
