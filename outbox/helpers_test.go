package outbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/sqlstore"
	"github.com/yeyak/yeyak/mocks/testenv"
	"github.com/yeyak/yeyak/outbox"
)

// dialects are the databases every relay/consumer test runs on.
var dialects = []string{outbox.DialectSQLite, outbox.DialectPostgres}

// openDB opens a fresh, migrated database of the dialect (PostgreSQL via
// testenv: skipped when absent).
func openDB(t testing.TB, dialect string) *sqlx.DB {
	t.Helper()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "outbox.db")
	if dialect == outbox.DialectPostgres {
		dsn = testenv.Postgres(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sqlstore.Open(ctx, dsn, sqlstore.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", dialect, err)
	}
	t.Cleanup(func() { db.Close() })
	return db.DB()
}

// startKafka starts kfake with the topics and returns its brokers.
func startKafka(t testing.TB, partitions int, topics ...string) []string {
	t.Helper()
	brokers, stop, err := outbox.StartEmbeddedKafka(context.Background(), topics, partitions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return brokers
}

// testEvent is one inserted event and what it was built from.
type testEvent struct {
	booking.Event
	Person string
}

// makeEvents builds n events spread over persons people, each person's
// events in a known order (confirmed, rescheduled, cancelled, …).
func makeEvents(n, persons int) []testEvent {
	types := []booking.EventType{booking.EventBookingConfirmed, booking.EventBookingRescheduled, booking.EventBookingCancelled, booking.EventBookingProvisional}
	out := make([]testEvent, n)
	for i := range n {
		p := fmt.Sprintf("P%010d", i%persons)
		b := &booking.Booking{ID: booking.NewID(), PersonID: p, CampaignID: "c2021", ClinicID: fmt.Sprintf("K%03d", i%7),
			Date: booking.MustDate("2021-07-26"), Product: "pfizer", Dose: 1, Wave: 1, Status: booking.StatusConfirmed}
		ev := booking.NewEvent(types[(i/persons)%len(types)], b, nil, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", time.Now())
		out[i] = testEvent{Event: ev, Person: p}
	}
	return out
}

// insertEvents writes events to the outbox table, chunk rows per
// transaction, as booking/sqlstore does in the booking transaction.
func insertEvents(t testing.TB, db *sqlx.DB, evs []testEvent) {
	t.Helper()
	ctx := context.Background()
	const chunk = 250
	sqlite := db.DriverName() == "sqlite"
	for start := 0; start < len(evs); start += chunk {
		end := min(start+chunk, len(evs))
		var sb strings.Builder
		sb.WriteString("INSERT INTO outbox (id, aggregate_key, event_type, payload, headers, created_at) VALUES ")
		args := make([]any, 0, 6*(end-start))
		for i, e := range evs[start:end] {
			if i > 0 {
				sb.WriteString(",")
			}
			sb.WriteString("(?, ?, ?, ?, ?, ?)")
			h, _ := json.Marshal(e.Headers)
			var at any = e.CreatedAt
			if sqlite {
				at = e.CreatedAt.UTC().Format(sqlstore.SQLiteTimeLayout)
			}
			args = append(args, e.ID, e.Key, string(e.Type), string(e.Payload), string(h), at)
		}
		if _, err := db.ExecContext(ctx, db.Rebind(sb.String()), args...); err != nil {
			t.Fatalf("insert outbox rows: %v", err)
		}
	}
}

// pending returns the number of unpublished rows.
func pending(t testing.TB, db *sqlx.DB) int64 {
	t.Helper()
	b, err := outbox.Backlog(context.Background(), db, "")
	if err != nil {
		t.Fatal(err)
	}
	return b.Pending
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readAll reads topic from the start with franz-go (a different client
// library from the relay's kafka-go) until it has n records or d passes.
func readAll(t testing.TB, brokers []string, topic string, n int, d time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		recs = append(recs, fs.Records()...)
	}
	return recs
}

// runRelay runs r in the background until the test ends; the returned
// function stops it and returns Run's error.
func runRelay(t testing.TB, r *outbox.Relay) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// fastRelay is a relay configuration for tests: short polls and backoffs.
func fastRelay(cfg outbox.RelayConfig) outbox.RelayConfig {
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	cfg.MinBackoff, cfg.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
	cfg.StatsInterval = 50 * time.Millisecond
	if cfg.PublishTimeout == 0 {
		cfg.PublishTimeout = 5 * time.Second
	}
	return cfg
}

func header(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

func decodeJSON(t testing.TB, res *http.Response, v any) {
	t.Helper()
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
