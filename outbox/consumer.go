package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/segmentio/kafka-go"
	"golang.org/x/time/rate"
)

// ErrPermanent marks a handler error that retrying cannot fix (a business
// rejection, an event that makes no sense): wrap it, and the consumer sends
// the message to the dead-letter topic and moves on.
var ErrPermanent = errors.New("outbox: permanent failure")

// ErrPause marks a handler error that means "the system I write to is
// unavailable" (an open circuit breaker, a full bulkhead): wrap it, and the
// consumer pauses with a growing backoff and retries the same message,
// without skipping offsets. Any other error is retried with a shorter
// backoff.
var ErrPause = errors.New("outbox: dependency unavailable")

// ErrUndecodable is the error a message without an event id or with a
// payload that is not JSON is dead-lettered with.
var ErrUndecodable = errors.New("outbox: undecodable message")

// Message is one consumed event, as handlers see it.
type Message struct {
	// EventID is the event id (header event-id, else the payload's
	// event_id): the idempotency key.
	EventID string
	// Type is the event type (header event-type, else the payload's type).
	Type string
	// Key is the Kafka key: the person id. Never log it.
	Key string
	// Payload is the JSON body.
	Payload []byte
	// Headers are the Kafka headers.
	Headers map[string]string
	// Topic, Partition and Offset say where the message was read.
	Topic     string
	Partition int
	Offset    int64
}

// Handler applies one event. It must be idempotent by the event's business
// key (the consumer delivers at least once; the inbox only narrows
// duplicates to a crash between the effect and the inbox write). Return an
// error wrapping ErrPermanent for poison events and ErrPause when the
// target is unavailable.
type Handler func(ctx context.Context, m Message) error

// Reader is the part of a *kafka.Reader the consumer uses.
type Reader interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
	Stats() kafka.ReaderStats
	Close() error
}

// ConsumerConfig configures a Consumer. The zero value of every optional
// field means the documented default.
type ConsumerConfig struct {
	// Brokers, Topic and GroupID define the kafka-go Reader the consumer
	// builds (unless Reader is set). Topic "" means DefaultTopic.
	Brokers []string
	Topic   string
	GroupID string
	// Reader replaces the built reader (tests, custom settings).
	Reader Reader

	// Handler applies events. Required.
	Handler Handler

	// DB and Dialect hold the inbox and dead_letters tables (migrations
	// 00010 of booking/sqlstore). Required.
	DB      *sqlx.DB
	Dialect string

	// DeadLetterTopic receives poison messages; "" means Topic +
	// DeadLetterSuffix.
	DeadLetterTopic string
	// DeadLetters publishes to the dead-letter topic; nil means a writer
	// on Brokers (closed with the consumer).
	DeadLetters Publisher

	// Rate caps handler applies per second (protecting the registry);
	// 0 means 200/s, rate.Inf means no cap. Burst 0 means 1.
	Rate  rate.Limit
	Burst int

	// RetryMin and RetryMax bound the backoff between attempts after a
	// retryable handler error; 0 means 100 ms and 10 s.
	RetryMin, RetryMax time.Duration
	// PauseMin and PauseMax bound the pause after an ErrPause error;
	// 0 means 1 s and 30 s.
	PauseMin, PauseMax time.Duration
	// CommitInterval is how often the built reader sends the offsets of
	// handled messages to Kafka; 0 means 1 s, negative means after every
	// message. Only handled messages are ever committed; a crash loses at
	// most the last interval's commits, and those messages are redelivered
	// and found in the inbox.
	CommitInterval time.Duration
	// InboxRetention is how long applied event ids are remembered; the
	// consumer deletes older ones every hour. It must exceed the longest
	// time a duplicate can arrive after the original (relay retention and
	// Kafka retention bound it). 0 means 7 days; negative keeps them forever.
	InboxRetention time.Duration
	// LagInterval is how often the lag gauge is refreshed; 0 means 5 s.
	// With Brokers and GroupID set the lag is the group's total over every
	// partition of the topic (see LagMeter: high watermarks against the
	// group's committed offsets); with only a Reader it falls back to
	// Reader.Stats().Lag, which covers the last fetched partition only.
	LagInterval time.Duration

	// Metrics receives the consumer's metrics; nil means a private set.
	Metrics *ConsumerMetrics
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
}

// Consumer reads a topic in a consumer group and applies each message with
// a Handler, exactly once in effect: inbox dedup by event id, offsets
// committed only after the message is applied or dead-lettered, retries
// without skipping, pauses on an unavailable target.
type Consumer struct {
	cfg     ConsumerConfig
	dialect string
	r       Reader
	ownR    bool
	dlw     Publisher
	ownDLW  *kafka.Writer
	lim     *rate.Limiter
	log     *slog.Logger

	lagMeter *LagMeter // nil: Reader.Stats().Lag

	running                       atomic.Bool
	paused                        atomic.Bool
	applied, dedup, dead, retries atomic.Int64
	lag                           atomic.Int64
	mu                            sync.Mutex
	lastErr                       string
	lagErr                        string // housekeeping goroutine only
}

// NewConsumer validates cfg and builds the consumer (and its kafka-go
// Reader in group cfg.GroupID, starting from the earliest offset when the
// group has none).
func NewConsumer(cfg ConsumerConfig) (*Consumer, error) {
	if cfg.Handler == nil || cfg.DB == nil {
		return nil, errors.New("outbox: NewConsumer needs a Handler and a DB")
	}
	d, err := dialectOf(cfg.DB, cfg.Dialect)
	if err != nil {
		return nil, err
	}
	if cfg.Topic == "" {
		cfg.Topic = DefaultTopic
	}
	if cfg.DeadLetterTopic == "" {
		cfg.DeadLetterTopic = cfg.Topic + DeadLetterSuffix
	}
	if cfg.Rate == 0 {
		cfg.Rate = 200
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 1
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 100 * time.Millisecond
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 10 * time.Second
	}
	if cfg.PauseMin <= 0 {
		cfg.PauseMin = time.Second
	}
	if cfg.PauseMax <= 0 {
		cfg.PauseMax = 30 * time.Second
	}
	if cfg.CommitInterval == 0 {
		cfg.CommitInterval = time.Second
	}
	if cfg.CommitInterval < 0 {
		cfg.CommitInterval = 0 // kafka-go: synchronous commits
	}
	if cfg.LagInterval <= 0 {
		cfg.LagInterval = 5 * time.Second
	}
	if cfg.InboxRetention == 0 {
		cfg.InboxRetention = 7 * 24 * time.Hour
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewConsumerMetrics(cfg.GroupID)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Consumer{cfg: cfg, dialect: d, r: cfg.Reader, dlw: cfg.DeadLetters,
		lim: rate.NewLimiter(cfg.Rate, cfg.Burst),
		log: cfg.Logger.With("component", "outbox.consumer", "group", cfg.GroupID, "topic", cfg.Topic)}
	if c.r == nil {
		if cfg.GroupID == "" || len(cfg.Brokers) == 0 {
			return nil, errors.New("outbox: NewConsumer needs Brokers and a GroupID (or a Reader)")
		}
		c.r = kafka.NewReader(kafka.ReaderConfig{
			Brokers:           cfg.Brokers,
			GroupID:           cfg.GroupID,
			Topic:             cfg.Topic,
			MinBytes:          1,
			MaxBytes:          10 << 20,
			MaxWait:           250 * time.Millisecond,
			StartOffset:       kafka.FirstOffset,
			CommitInterval:    cfg.CommitInterval,
			HeartbeatInterval: time.Second,
			SessionTimeout:    10 * time.Second,
			RebalanceTimeout:  10 * time.Second,
			JoinGroupBackoff:  500 * time.Millisecond,
			ReadBackoffMin:    50 * time.Millisecond,
			ReadBackoffMax:    time.Second,
		})
		c.ownR = true
	}
	if c.dlw == nil {
		if len(cfg.Brokers) == 0 {
			return nil, errors.New("outbox: NewConsumer needs Brokers or a DeadLetters publisher")
		}
		c.ownDLW = NewWriter(cfg.Brokers, "", WriterConfig{})
		c.dlw = c.ownDLW
	}
	if len(cfg.Brokers) > 0 && cfg.GroupID != "" {
		if c.lagMeter, err = NewLagMeter(cfg.Brokers, cfg.GroupID, cfg.Topic, 0); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Run consumes until ctx is done, then closes the reader (and the
// dead-letter writer it built) and returns nil. It never skips a message:
// each one is applied, found in the inbox, or dead-lettered before its
// offset is committed.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("outbox: consumer already running")
	}
	defer c.running.Store(false)
	defer c.close()

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Go(func() { c.housekeeping(ctx) })

	c.log.Info("outbox consumer started", "dead_letter_topic", c.cfg.DeadLetterTopic, "rate", float64(c.cfg.Rate))
	attempt := 0
	for {
		m, err := c.r.FetchMessage(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			d := backoff(attempt, c.cfg.RetryMin, c.cfg.RetryMax)
			attempt++
			c.log.Warn("outbox consumer fetch failed", "err", err, "retry_in", d)
			if !sleep(ctx, d) {
				return nil
			}
			continue
		}
		attempt = 0
		if !c.process(ctx, m) {
			return nil
		}
		if !c.commit(ctx, m) {
			return nil
		}
	}
}

func (c *Consumer) close() {
	if c.ownR {
		if err := c.r.Close(); err != nil {
			c.log.Warn("close kafka reader", "err", err)
		}
	}
	if c.ownDLW != nil {
		if err := c.ownDLW.Close(); err != nil {
			c.log.Warn("close dead-letter writer", "err", err)
		}
	}
	if c.lagMeter != nil {
		c.lagMeter.Close()
	}
}

// commit commits m's offset, retrying until it succeeds or ctx is done.
func (c *Consumer) commit(ctx context.Context, m kafka.Message) bool {
	for attempt := 0; ; attempt++ {
		err := c.r.CommitMessages(ctx, m)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		d := backoff(attempt, c.cfg.RetryMin, c.cfg.RetryMax)
		c.log.Warn("outbox consumer commit failed", "err", err, "partition", m.Partition, "offset", m.Offset, "retry_in", d)
		if !sleep(ctx, d) {
			return false
		}
	}
}

// process applies m (or finds it in the inbox, or dead-letters it); it
// returns false only when ctx ends first.
func (c *Consumer) process(ctx context.Context, km kafka.Message) bool {
	m, derr := decode(km)
	if derr != nil {
		return c.deadLetter(ctx, km, derr)
	}
	retry, pause := 0, 0
	for {
		err := c.apply(ctx, m)
		switch {
		case err == nil:
			if pause > 0 {
				c.log.Info("outbox consumer resumed")
			}
			c.paused.Store(false)
			c.cfg.Metrics.Paused.Set(0)
			return true
		case ctx.Err() != nil:
			return false
		case errors.Is(err, errDuplicate):
			c.dedup.Add(1)
			c.cfg.Metrics.Deduplicated.Inc()
			return true
		case errors.Is(err, ErrPermanent):
			return c.deadLetter(ctx, km, err)
		case errors.Is(err, ErrPause):
			d := backoff(pause, c.cfg.PauseMin, c.cfg.PauseMax)
			if pause == 0 {
				c.log.Warn("outbox consumer paused: target unavailable", "err", err, "event_id", m.EventID, "retry_in", d)
			}
			pause++
			c.paused.Store(true)
			c.cfg.Metrics.Paused.Set(1)
			c.setErr(err)
			if !sleep(ctx, d) {
				return false
			}
		default:
			d := backoff(retry, c.cfg.RetryMin, c.cfg.RetryMax)
			retry++
			c.retries.Add(1)
			c.cfg.Metrics.Retries.Inc()
			c.setErr(err)
			c.log.Warn("outbox consumer apply failed; retrying the same message", "err", err,
				"event_id", m.EventID, "attempt", retry, "retry_in", d)
			if !sleep(ctx, d) {
				return false
			}
		}
	}
}

var errDuplicate = errors.New("outbox: event already applied")

// apply runs one attempt: inbox check, rate limit, handler, inbox write.
func (c *Consumer) apply(ctx context.Context, m Message) error {
	var n int
	if err := c.cfg.DB.GetContext(ctx, &n, c.cfg.DB.Rebind(sqlInboxSeen), m.EventID); err != nil {
		return fmt.Errorf("inbox lookup: %w", err)
	}
	if n > 0 {
		return errDuplicate
	}
	if err := c.lim.Wait(ctx); err != nil {
		return err
	}
	if err := c.cfg.Handler(ctx, m); err != nil {
		return err
	}
	// A crash between the effect and this insert redelivers the event;
	// the handler's own idempotency (the registry's, by booking id) makes
	// that harmless.
	if _, err := c.cfg.DB.ExecContext(ctx, c.cfg.DB.Rebind(inboxInsert(c.dialect)), m.EventID, dbTime(c.dialect, time.Now())); err != nil {
		return fmt.Errorf("inbox insert: %w", err)
	}
	c.applied.Add(1)
	c.cfg.Metrics.Applied.Inc()
	return nil
}

// decode reads the event id and type from the headers (else the payload)
// and checks that the payload is JSON.
func decode(km kafka.Message) (Message, error) {
	m := Message{Key: string(km.Key), Payload: km.Value, Headers: make(map[string]string, len(km.Headers)),
		Topic: km.Topic, Partition: km.Partition, Offset: km.Offset}
	for _, h := range km.Headers {
		m.Headers[h.Key] = string(h.Value)
	}
	var body struct {
		EventID string `json:"event_id"`
		Type    string `json:"type"`
	}
	if err := json.Unmarshal(km.Value, &body); err != nil {
		return m, fmt.Errorf("%w: payload is not JSON: %w", ErrUndecodable, err)
	}
	m.EventID, m.Type = m.Headers["event-id"], m.Headers["event-type"]
	if m.EventID == "" {
		m.EventID = body.EventID
	}
	if m.Type == "" {
		m.Type = body.Type
	}
	if m.EventID == "" {
		return m, fmt.Errorf("%w: no event id in headers or payload", ErrUndecodable)
	}
	return m, nil
}

// Dead-letter header names, added to the original headers.
const (
	HeaderDLError     = "dlq-error"
	HeaderDLTopic     = "dlq-topic"
	HeaderDLPartition = "dlq-partition"
	HeaderDLOffset    = "dlq-offset"
)

// deadLetter records km in dead_letters and publishes it to the dead-letter
// topic, retrying both until they succeed (the offset is committed only
// after); it returns false only when ctx ends first.
func (c *Consumer) deadLetter(ctx context.Context, km kafka.Message, cause error) bool {
	errText := cause.Error()
	if len(errText) > 1000 {
		errText = errText[:1000]
	}
	h := make(map[string]string, len(km.Headers))
	for _, x := range km.Headers {
		h[x.Key] = string(x.Value)
	}
	hj, _ := json.Marshal(h)
	payload := km.Value
	if payload == nil {
		payload = []byte{}
	}
	for attempt := 0; ; attempt++ {
		err := c.tryDeadLetter(ctx, km, errText, string(hj), payload)
		if err == nil {
			c.dead.Add(1)
			c.cfg.Metrics.DeadLettered.Inc()
			c.log.Error("outbox consumer dead-lettered a message", "err", errText, "partition", km.Partition,
				"offset", km.Offset, "event_id", h["event-id"], "dead_letter_topic", c.cfg.DeadLetterTopic)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		d := backoff(attempt, c.cfg.RetryMin, c.cfg.RetryMax)
		c.log.Warn("outbox consumer could not dead-letter; retrying", "err", err, "retry_in", d)
		if !sleep(ctx, d) {
			return false
		}
	}
}

func (c *Consumer) tryDeadLetter(ctx context.Context, km kafka.Message, errText, headers string, payload []byte) error {
	_, err := c.cfg.DB.ExecContext(ctx, c.cfg.DB.Rebind(deadLetterInsert(c.dialect)),
		uuid.Must(uuid.NewV7()).String(), km.Topic, km.Partition, km.Offset, toValidUTF8(km.Key),
		payload, headers, errText, dbTime(c.dialect, time.Now()))
	if err != nil {
		return fmt.Errorf("record dead letter: %w", err)
	}
	hs := append([]kafka.Header(nil), km.Headers...)
	hs = append(hs,
		kafka.Header{Key: HeaderDLError, Value: []byte(errText)},
		kafka.Header{Key: HeaderDLTopic, Value: []byte(km.Topic)},
		kafka.Header{Key: HeaderDLPartition, Value: []byte(strconv.Itoa(km.Partition))},
		kafka.Header{Key: HeaderDLOffset, Value: []byte(strconv.FormatInt(km.Offset, 10))},
	)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.dlw.WriteMessages(pctx, kafka.Message{Topic: c.cfg.DeadLetterTopic, Key: km.Key, Value: km.Value, Headers: hs}); err != nil {
		return fmt.Errorf("publish to dead-letter topic %s: %w", c.cfg.DeadLetterTopic, err)
	}
	return nil
}

// housekeeping refreshes the lag gauge and purges the inbox.
func (c *Consumer) housekeeping(ctx context.Context) {
	t := time.NewTicker(c.cfg.LagInterval)
	defer t.Stop()
	purge := time.NewTicker(time.Hour)
	defer purge.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.refreshLag(ctx)
		case <-purge.C:
			if c.cfg.InboxRetention < 0 {
				continue
			}
			if n, err := PurgeInbox(ctx, c.cfg.DB, c.dialect, time.Now().Add(-c.cfg.InboxRetention)); err != nil {
				c.log.Warn("inbox purge failed", "err", err)
			} else if n > 0 {
				c.log.Info("inbox purged", "rows", n)
			}
		}
	}
}

// refreshLag updates the lag gauge: the group's total lag when the
// consumer knows its brokers, else the reader's own figure. A failed
// measure keeps the last value and is logged when its cause changes.
func (c *Consumer) refreshLag(ctx context.Context) {
	if c.lagMeter == nil {
		lag := c.r.Stats().Lag
		c.lag.Store(lag)
		c.cfg.Metrics.Lag.Set(float64(lag))
		return
	}
	lag, _, err := c.lagMeter.Lag(ctx)
	if err != nil {
		if ctx.Err() == nil && err.Error() != c.lagErr {
			c.log.Warn("outbox consumer lag not measured; keeping the last value", "err", err)
		}
		c.lagErr = err.Error()
		return
	}
	c.lagErr = ""
	c.lag.Store(lag)
	c.cfg.Metrics.Lag.Set(float64(lag))
}

// PurgeInbox deletes inbox entries processed before cutoff and returns how
// many it deleted.
func PurgeInbox(ctx context.Context, db *sqlx.DB, dialect string, cutoff time.Time) (int64, error) {
	d, err := dialectOf(db, dialect)
	if err != nil {
		return 0, err
	}
	res, err := db.ExecContext(ctx, db.Rebind(sqlInboxPurge), dbTime(d, cutoff))
	if err != nil {
		return 0, fmt.Errorf("purge inbox: %w", err)
	}
	return res.RowsAffected()
}

func (c *Consumer) setErr(err error) {
	c.mu.Lock()
	c.lastErr = err.Error()
	c.mu.Unlock()
}

// ConsumerStats is a consumer's state for ops.
type ConsumerStats struct {
	Group        string `json:"group"`
	Topic        string `json:"topic"`
	Running      bool   `json:"running"`
	Paused       bool   `json:"paused"`
	Lag          int64  `json:"lag"`
	Applied      int64  `json:"applied"`
	Deduplicated int64  `json:"deduplicated"`
	DeadLettered int64  `json:"dead_lettered"`
	Retries      int64  `json:"retries"`
	LastError    string `json:"last_error,omitempty"`
}

// Stats returns the consumer's counters since it was created.
func (c *Consumer) Stats() ConsumerStats {
	c.mu.Lock()
	last := c.lastErr
	c.mu.Unlock()
	return ConsumerStats{
		Group: c.cfg.GroupID, Topic: c.cfg.Topic, Running: c.running.Load(), Paused: c.paused.Load(),
		Lag: c.lag.Load(), Applied: c.applied.Load(), Deduplicated: c.dedup.Load(),
		DeadLettered: c.dead.Load(), Retries: c.retries.Load(), LastError: last,
	}
}

// Metrics returns the consumer's metrics.
func (c *Consumer) Metrics() *ConsumerMetrics { return c.cfg.Metrics }

// toValidUTF8 returns b as text a TEXT column accepts: itself when it is
// valid UTF-8 without NUL bytes, else Go-quoted.
func toValidUTF8(b []byte) string {
	s := string(b)
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return strconv.Quote(s)
	}
	return s
}
