package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/segmentio/kafka-go"
	"golang.org/x/time/rate"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/outbox"
)

// effects counts how many times a handler applied each event.
type effects struct {
	mu    sync.Mutex
	count map[string]int
	order map[string][]string // key -> event ids as applied
}

func newEffects() *effects {
	return &effects{count: map[string]int{}, order: map[string][]string{}}
}

func (e *effects) apply(m outbox.Message) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.count[m.EventID]++
	e.order[m.Key] = append(e.order[m.Key], m.EventID)
}

func (e *effects) get(id string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.count[id]
}

func (e *effects) total() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, c := range e.count {
		n += c
	}
	return n
}

// runConsumer builds and runs a consumer until the test ends.
func runConsumer(t testing.TB, db *sqlx.DB, brokers []string, group string, h outbox.Handler, tweak func(*outbox.ConsumerConfig)) (*outbox.Consumer, func()) {
	t.Helper()
	cfg := outbox.ConsumerConfig{
		Brokers: brokers, Topic: topic, GroupID: group, Handler: h, DB: db,
		Rate: rate.Inf, RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		PauseMin: 50 * time.Millisecond, PauseMax: 200 * time.Millisecond, LagInterval: 50 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := outbox.NewConsumer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Run(ctx); err != nil {
			t.Errorf("consumer: %v", err)
		}
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return c, stop
}

// TestCrashBetweenPublishAndMark: the relay dies after publishing a batch
// and before marking it; the restarted relay publishes the batch again,
// and the consumer applies every event exactly once (inbox dedup).
func TestCrashBetweenPublishAndMark(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			db := openDB(t, d)
			brokers := startKafka(t, 3, topic, topic+outbox.DeadLetterSuffix)
			w := outbox.NewWriter(brokers, topic, outbox.WriterConfig{})
			defer w.Close()
			evs := makeEvents(300, 20)
			insertEvents(t, db, evs)

			crash := errors.New("relay killed between publish and mark")
			r1, err := outbox.NewRelay(db, d, w, fastRelay(outbox.RelayConfig{BatchSize: 100,
				AfterPublish: func(context.Context, int) error { return crash }}))
			if err != nil {
				t.Fatal(err)
			}
			if err := r1.Run(context.Background()); !errors.Is(err, crash) {
				t.Fatalf("Run = %v, want the crash", err)
			}
			if p := pending(t, db); p != 300 {
				t.Fatalf("pending after crash = %d, want 300 (nothing marked)", p)
			}
			r2, err := outbox.NewRelay(db, d, w, fastRelay(outbox.RelayConfig{BatchSize: 100}))
			if err != nil {
				t.Fatal(err)
			}
			runRelay(t, r2)
			waitFor(t, 20*time.Second, "drained after restart", func() bool { return pending(t, db) == 0 })

			fx := newEffects()
			c, _ := runConsumer(t, db, brokers, "sync-crash-"+d, func(_ context.Context, m outbox.Message) error {
				fx.apply(m)
				return nil
			}, nil)
			waitFor(t, 30*time.Second, "all applied", func() bool {
				s := c.Stats()
				return s.Applied == 300 && s.Deduplicated == 100
			})
			for _, e := range evs {
				if n := fx.get(e.ID); n != 1 {
					t.Fatalf("event applied %d times, want exactly 1", n)
				}
			}
			for person, ids := range fx.order {
				var want []string
				for _, e := range evs {
					if e.Person == person {
						want = append(want, e.ID)
					}
				}
				if fmt.Sprint(ids) != fmt.Sprint(want) {
					t.Fatalf("person's events applied out of commit order")
				}
			}
		})
	}
}

// produce writes raw messages to topic.
func produce(t testing.TB, brokers []string, msgs ...kafka.Message) {
	t.Helper()
	w := outbox.NewWriter(brokers, "", outbox.WriterConfig{})
	defer w.Close()
	for i := range msgs {
		if msgs[i].Topic == "" {
			msgs[i].Topic = topic
		}
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}

func eventMessage(e testEvent) kafka.Message {
	m := kafka.Message{Key: []byte(e.Key), Value: e.Payload}
	for k, v := range e.Headers {
		m.Headers = append(m.Headers, kafka.Header{Key: k, Value: []byte(v)})
	}
	return m
}

// TestConsumerDedupsRedelivery: the same event delivered twice (a relay
// re-publish or a consumer restart before commit) is applied once.
func TestConsumerDedupsRedelivery(t *testing.T) {
	t.Parallel()
	db := openDB(t, outbox.DialectSQLite)
	brokers := startKafka(t, 1, topic, topic+outbox.DeadLetterSuffix)
	evs := makeEvents(3, 3)
	produce(t, brokers, eventMessage(evs[0]), eventMessage(evs[1]), eventMessage(evs[0]), eventMessage(evs[2]), eventMessage(evs[1]))
	fx := newEffects()
	c, stop := runConsumer(t, db, brokers, "dedup", func(_ context.Context, m outbox.Message) error {
		fx.apply(m)
		return nil
	}, nil)
	waitFor(t, 20*time.Second, "5 messages handled", func() bool {
		s := c.Stats()
		return s.Applied+s.Deduplicated == 5
	})
	stop()
	if s := c.Stats(); s.Applied != 3 || s.Deduplicated != 2 {
		t.Fatalf("stats %+v, want 3 applied and 2 deduplicated", s)
	}
	// A new consumer in the same group starts after the committed offsets:
	// nothing is handled again.
	produce(t, brokers, eventMessage(evs[2]))
	c2, _ := runConsumer(t, db, brokers, "dedup", func(_ context.Context, m outbox.Message) error {
		fx.apply(m)
		return nil
	}, nil)
	waitFor(t, 20*time.Second, "redelivered event skipped", func() bool { return c2.Stats().Deduplicated == 1 })
	if fx.total() != 3 || c2.Stats().Applied != 0 {
		t.Fatalf("effects %d (want 3), second consumer applied %d (want 0: offsets were committed)", fx.total(), c2.Stats().Applied)
	}
}

// TestConsumerRetriesWithoutSkipping: a retryable error retries the same
// message; the next message waits for it (no offset skipping).
func TestConsumerRetriesWithoutSkipping(t *testing.T) {
	t.Parallel()
	db := openDB(t, outbox.DialectSQLite)
	brokers := startKafka(t, 1, topic, topic+outbox.DeadLetterSuffix)
	evs := makeEvents(3, 1) // one person: one partition, ordered
	produce(t, brokers, eventMessage(evs[0]), eventMessage(evs[1]), eventMessage(evs[2]))
	var fails atomic.Int32
	fx := newEffects()
	c, _ := runConsumer(t, db, brokers, "retry", func(_ context.Context, m outbox.Message) error {
		if m.EventID == evs[1].ID && fails.Add(1) <= 3 {
			return errors.New("transient: connection reset")
		}
		fx.apply(m)
		return nil
	}, nil)
	waitFor(t, 20*time.Second, "all applied", func() bool { return c.Stats().Applied == 3 })
	if got := fx.order[evs[0].Key]; fmt.Sprint(got) != fmt.Sprint([]string{evs[0].ID, evs[1].ID, evs[2].ID}) {
		t.Fatalf("applied order %v", got)
	}
	if s := c.Stats(); s.Retries != 3 || s.DeadLettered != 0 {
		t.Fatalf("stats %+v, want 3 retries and no dead letters", s)
	}
}

// TestConsumerPausesWhileTargetUnavailable: ErrPause (the registry breaker
// is open) pauses the consumer with backoff — no hot loop — and it resumes
// on the same message when the target is back.
func TestConsumerPausesWhileTargetUnavailable(t *testing.T) {
	t.Parallel()
	db := openDB(t, outbox.DialectSQLite)
	brokers := startKafka(t, 1, topic, topic+outbox.DeadLetterSuffix)
	evs := makeEvents(2, 1)
	produce(t, brokers, eventMessage(evs[0]), eventMessage(evs[1]))
	var down atomic.Bool
	down.Store(true)
	var calls atomic.Int64
	fx := newEffects()
	c, _ := runConsumer(t, db, brokers, "pause", func(_ context.Context, m outbox.Message) error {
		calls.Add(1)
		if down.Load() {
			return fmt.Errorf("record booking: %w", outbox.ErrPause)
		}
		fx.apply(m)
		return nil
	}, func(cfg *outbox.ConsumerConfig) {
		cfg.PauseMin, cfg.PauseMax = 100*time.Millisecond, 200*time.Millisecond
	})
	waitFor(t, 20*time.Second, "paused", func() bool { return c.Stats().Paused })
	start, n0 := time.Now(), calls.Load()
	time.Sleep(600 * time.Millisecond) // observe the pause: a hot loop would call thousands of times
	if n := calls.Load() - n0; n > 2+int64(time.Since(start)/(50*time.Millisecond)) {
		t.Fatalf("%d handler calls in %v while paused: hot loop", n, time.Since(start))
	}
	if c.Stats().Applied != 0 {
		t.Fatal("applied while the target was down")
	}
	down.Store(false)
	waitFor(t, 20*time.Second, "resumed and applied both", func() bool { return c.Stats().Applied == 2 })
	if c.Stats().Paused {
		t.Fatal("still paused after resuming")
	}
}

// TestPoisonDeadLetterAndOpsRetry: a permanent failure and an undecodable
// payload go to the dead-letter topic (error in headers) and the
// dead_letters table; ops lists them without personal data, refuses retry
// without the token, and a retry re-drives the event to the handler.
func TestPoisonDeadLetterAndOpsRetry(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			db := openDB(t, d)
			dlt := topic + outbox.DeadLetterSuffix
			brokers := startKafka(t, 1, topic, dlt)
			evs := makeEvents(2, 2)
			garbage := kafka.Message{Key: []byte("P0000000009"), Value: []byte("{not json")}
			produce(t, brokers, eventMessage(evs[0]), garbage, eventMessage(evs[1]))
			var rejecting atomic.Bool
			rejecting.Store(true)
			fx := newEffects()
			c, _ := runConsumer(t, db, brokers, "poison-"+d, func(_ context.Context, m outbox.Message) error {
				if m.EventID == evs[0].ID && rejecting.Load() {
					return fmt.Errorf("registry said no: %w", outbox.ErrPermanent)
				}
				fx.apply(m)
				return nil
			}, nil)
			waitFor(t, 20*time.Second, "handled", func() bool {
				s := c.Stats()
				return s.DeadLettered == 2 && s.Applied == 1
			})
			recs := readAll(t, brokers, dlt, 2, 10*time.Second)
			if len(recs) != 2 {
				t.Fatalf("dead-letter topic has %d records, want 2", len(recs))
			}
			for _, r := range recs {
				if header(r, outbox.HeaderDLError) == "" || header(r, outbox.HeaderDLTopic) != topic {
					t.Fatalf("dead letter without error headers: %v", r.Headers)
				}
			}

			repub := outbox.NewWriter(brokers, "", outbox.WriterConfig{})
			defer repub.Close()
			h := outbox.OpsHandler(db, outbox.OpsConfig{Token: "s3cret", Republish: repub, Consumers: []func() outbox.ConsumerStats{c.Stats}})
			srv := httptest.NewServer(h)
			defer srv.Close()

			res, err := http.Get(srv.URL + "/ops/outbox")
			if err != nil {
				t.Fatal(err)
			}
			var sum outbox.OutboxSummary
			decodeJSON(t, res, &sum)
			if len(sum.DeadLetters) != 2 || sum.DeadLettersOpen != 2 || len(sum.Consumers) != 1 || sum.Consumers[0].DeadLettered != 2 {
				t.Fatalf("summary %+v", sum)
			}
			var permID string
			for _, dl := range sum.DeadLetters {
				if strings.Contains(dl.Error, "registry said no") {
					permID = dl.ID
				}
			}
			if permID == "" {
				t.Fatalf("permanent failure not listed: %+v", sum.DeadLetters)
			}

			post := func(token string) int {
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ops/deadletters/"+permID+"/retry", nil)
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				return res.StatusCode
			}
			if code := post(""); code != http.StatusForbidden {
				t.Fatalf("retry without token = %d, want 403", code)
			}
			if code := post("wrong"); code != http.StatusForbidden {
				t.Fatalf("retry with a wrong token = %d, want 403", code)
			}
			rejecting.Store(false) // the operator fixed the cause
			if code := post("s3cret"); code != http.StatusOK {
				t.Fatalf("retry = %d, want 200", code)
			}
			waitFor(t, 20*time.Second, "re-driven event applied", func() bool { return fx.get(evs[0].ID) == 1 })
			res, err = http.Get(srv.URL + "/ops/outbox")
			if err != nil {
				t.Fatal(err)
			}
			decodeJSON(t, res, &sum)
			if sum.DeadLettersOpen != 1 {
				t.Fatalf("open dead letters after retry = %d, want 1", sum.DeadLettersOpen)
			}
		})
	}
}

// TestOpsRetryForbiddenWithoutConfiguredToken: no token configured means
// no POST, whatever the caller sends.
func TestOpsRetryForbiddenWithoutConfiguredToken(t *testing.T) {
	t.Parallel()
	db := openDB(t, outbox.DialectSQLite)
	h := outbox.OpsHandler(db, outbox.OpsConfig{})
	for _, auth := range []string{"", "Bearer ", "Bearer anything"} {
		req := httptest.NewRequest(http.MethodPost, "/ops/deadletters/x/retry", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden {
			t.Fatalf("auth %q: status %d, want 403", auth, rec.Code)
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/ops/outbox", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /ops/outbox = %d", rec.Code)
	}
	if strings.Contains(rec.Body.String(), "P00") {
		t.Fatal("summary shows a person id")
	}
}

// TestOpsRetryUnknownID answers 404.
func TestOpsRetryUnknownID(t *testing.T) {
	t.Parallel()
	db := openDB(t, outbox.DialectSQLite)
	h := outbox.OpsHandler(db, outbox.OpsConfig{Token: "t", Republish: nopPublisher{}})
	req := httptest.NewRequest(http.MethodPost, "/ops/deadletters/nope/retry", nil)
	req.Header.Set("Authorization", "Bearer t")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound {
		t.Fatalf("status %d, want 404", rec.Code)
	}
}

type nopPublisher struct{}

func (nopPublisher) WriteMessages(context.Context, ...kafka.Message) error { return nil }

var _ = booking.HeaderEventID

// TestPurgeInbox deletes only entries older than the cutoff.
func TestPurgeInbox(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			db := openDB(t, d)
			ctx := context.Background()
			old, recent := time.Now().Add(-10*24*time.Hour), time.Now()
			for i, at := range []time.Time{old, old, recent} {
				var v any = at.UTC()
				if d == outbox.DialectSQLite {
					v = at.UTC().Format("2006-01-02T15:04:05.000000000Z")
				}
				if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO inbox (event_id, processed_at) VALUES (?, ?)`), fmt.Sprint("e", i), v); err != nil {
					t.Fatal(err)
				}
			}
			n, err := outbox.PurgeInbox(ctx, db, d, time.Now().Add(-7*24*time.Hour))
			if err != nil || n != 2 {
				t.Fatalf("purged %d (%v), want 2", n, err)
			}
			var left int
			if err := db.GetContext(ctx, &left, `SELECT COUNT(*) FROM inbox`); err != nil || left != 1 {
				t.Fatalf("left %d (%v), want 1", left, err)
			}
		})
	}
}

// TestConsumerRateLimitCapsApplies: with Rate r and Burst 1, n messages
// that are all ready cannot be applied in less than (n-1)/r, however fast
// the handler is. (A lower bound on elapsed time: the limiter guarantees
// it, a slow machine only adds to it.)
func TestConsumerRateLimitCapsApplies(t *testing.T) {
	t.Parallel()
	db := openDB(t, outbox.DialectSQLite)
	brokers := startKafka(t, 1, topic, topic+outbox.DeadLetterSuffix)
	const n, perSecond = 21, 20
	evs := makeEvents(n, n)
	msgs := make([]kafka.Message, n)
	for i, e := range evs {
		msgs[i] = eventMessage(e)
	}
	produce(t, brokers, msgs...)
	var mu sync.Mutex
	var at []time.Time
	c, _ := runConsumer(t, db, brokers, "rate", func(context.Context, outbox.Message) error {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		return nil
	}, func(cfg *outbox.ConsumerConfig) { cfg.Rate, cfg.Burst = perSecond, 1 })
	waitFor(t, 20*time.Second, "all applied", func() bool { return c.Stats().Applied == n })
	mu.Lock()
	defer mu.Unlock()
	least := time.Duration(n-1) * time.Second / perSecond
	if span := at[n-1].Sub(at[0]); span < least-25*time.Millisecond {
		t.Fatalf("%d applies in %v with a %d/s limit: at least %v expected", n, span, perSecond, least)
	}
}
