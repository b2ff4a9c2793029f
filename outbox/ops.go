package outbox

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/segmentio/kafka-go"
)

// OpsConfig configures OpsHandler.
type OpsConfig struct {
	// Dialect is the database's dialect ("postgres" or "sqlite"); ""
	// means guessed from the driver name.
	Dialect string
	// Token is the ops bearer token POST endpoints require (compared in
	// constant time). "" disables them: they answer 403.
	Token string
	// Relay, when set, adds the relay's status and metrics to the summary.
	Relay *Relay
	// Consumers report their stats in the summary (e.g. (*Consumer).Stats).
	Consumers []func() ConsumerStats
	// Republish sends a dead letter back to its original topic on retry;
	// nil makes retry answer 503.
	Republish Publisher
	// DeadLetterLimit is how many dead letters the summary lists, newest
	// first; 0 means 50.
	DeadLetterLimit int
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
}

// OpsHandler serves the outbox's ops endpoints on the ops listener:
//
//	GET  /ops/outbox                    backlog, relay, consumers, dead letters (JSON)
//	POST /ops/deadletters/{id}/retry    republish a dead letter to its topic
//	                                    (Authorization: Bearer <ops token>)
//
// The summary never shows message keys or payloads (they carry person ids).
//
// The dialect is cfg.Dialect, or guessed from db's driver name when "".
func OpsHandler(db *sqlx.DB, cfg OpsConfig) http.Handler {
	d, err := dialectOf(db, cfg.Dialect)
	if err != nil {
		d = DialectPostgres
	}
	if cfg.DeadLetterLimit <= 0 {
		cfg.DeadLetterLimit = 50
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	o := &ops{db: db, dialect: d, cfg: cfg, log: cfg.Logger.With("component", "outbox.ops")}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ops/outbox", o.summary)
	mux.HandleFunc("POST /ops/deadletters/{id}/retry", o.retry)
	return mux
}

type ops struct {
	db      *sqlx.DB
	dialect string
	cfg     OpsConfig
	log     *slog.Logger
}

// DeadLetter is a dead letter as ops sees it (no key, no payload).
type DeadLetter struct {
	ID        string    `json:"id" db:"id"`
	Topic     string    `json:"topic" db:"topic"`
	Partition int       `json:"partition" db:"partition_no"`
	Offset    int64     `json:"offset" db:"offset_no"`
	Error     string    `json:"error" db:"error"`
	CreatedAt time.Time `json:"created_at"`
	RetriedAt time.Time `json:"retried_at,omitzero"`
}

// OutboxSummary is the body of GET /ops/outbox.
type OutboxSummary struct {
	Pending           int64           `json:"pending"`
	OldestAgeSeconds  float64         `json:"oldest_pending_age_seconds"`
	PublishedRetained int64           `json:"published_retained"`
	Relay             *RelaySummary   `json:"relay,omitempty"`
	Consumers         []ConsumerStats `json:"consumers"`
	DeadLettersOpen   int64           `json:"dead_letters_open"`
	DeadLetters       []DeadLetter    `json:"dead_letters"`
}

// RelaySummary is the relay part of OutboxSummary.
type RelaySummary struct {
	Status
	Published float64 `json:"published_total"`
	Failed    float64 `json:"failed_total"`
	// Publish is the latency and batch-size summary of the recent
	// publishes.
	Publish PublishStats `json:"publish"`
}

func (o *ops) summary(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	s, err := o.build(ctx)
	if err != nil {
		o.log.Error("ops outbox summary failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": map[string]string{"code": "internal", "message": "Internal error."}})
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (o *ops) build(ctx context.Context) (*OutboxSummary, error) {
	b, err := Backlog(ctx, o.db, o.dialect)
	if err != nil {
		return nil, err
	}
	s := &OutboxSummary{Pending: b.Pending, OldestAgeSeconds: b.OldestAge.Seconds(), PublishedRetained: b.Published,
		Consumers: []ConsumerStats{}, DeadLetters: []DeadLetter{}}
	if o.cfg.Relay != nil {
		m := o.cfg.Relay.Metrics()
		s.Relay = &RelaySummary{Status: o.cfg.Relay.Status(), Published: counterValue(m.Published), Failed: counterValue(m.Failed),
			Publish: o.cfg.Relay.PublishStats()}
	}
	for _, f := range o.cfg.Consumers {
		s.Consumers = append(s.Consumers, f())
	}
	if err := o.db.GetContext(ctx, &s.DeadLettersOpen, sqlDeadLetterCount); err != nil {
		return nil, fmt.Errorf("count dead letters: %w", err)
	}
	rows, err := o.db.QueryxContext(ctx, o.db.Rebind(sqlDeadLetterList), o.cfg.DeadLetterLimit)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var dl DeadLetter
		var created, retried any
		if err := rows.Scan(&dl.ID, &dl.Topic, &dl.Partition, &dl.Offset, &dl.Error, &created, &retried); err != nil {
			return nil, fmt.Errorf("scan dead letter: %w", err)
		}
		dl.CreatedAt, _ = scanTime(created)
		dl.RetriedAt, _ = scanTime(retried)
		s.DeadLetters = append(s.DeadLetters, dl)
	}
	return s, rows.Err()
}

func (o *ops) retry(w http.ResponseWriter, r *http.Request) {
	if !o.authorized(r) {
		writeJSON(w, http.StatusForbidden, map[string]any{"error": map[string]string{"code": "forbidden", "message": "A valid ops token is required."}})
		return
	}
	if o.cfg.Republish == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": map[string]string{"code": "unavailable", "message": "No Kafka writer configured for retries."}})
		return
	}
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	err := RetryDeadLetter(ctx, o.db, o.dialect, o.cfg.Republish, id)
	switch {
	case errors.Is(err, ErrDeadLetterNotFound):
		writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"code": "not_found", "message": "No such dead letter."}})
	case err != nil:
		o.log.Error("ops dead-letter retry failed", "id", id, "err", err)
		writeJSON(w, http.StatusBadGateway, map[string]any{"error": map[string]string{"code": "retry_failed", "message": "Could not republish the dead letter."}})
	default:
		o.log.Info("ops dead letter republished", "id", id)
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "status": "republished"})
	}
}

// authorized checks the bearer token in constant time; with no configured
// token nothing is authorized.
func (o *ops) authorized(r *http.Request) bool {
	if o.cfg.Token == "" {
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(o.cfg.Token)) == 1
}

// ErrDeadLetterNotFound is returned by RetryDeadLetter for an unknown id.
var ErrDeadLetterNotFound = errors.New("outbox: dead letter not found")

// RetryDeadLetter republishes dead letter id to the topic it was consumed
// from, with its original key, payload and headers, and stamps retried_at.
// The consumer applies it like any other message (its event id never
// reached the inbox).
func RetryDeadLetter(ctx context.Context, db *sqlx.DB, dialect string, p Publisher, id string) error {
	d, err := dialectOf(db, dialect)
	if err != nil {
		return err
	}
	var dl struct {
		ID        string `db:"id"`
		Topic     string `db:"topic"`
		Partition int    `db:"partition_no"`
		Offset    int64  `db:"offset_no"`
		Key       string `db:"msg_key"`
		Payload   []byte `db:"payload"`
		Headers   string `db:"headers"`
		Error     string `db:"error"`
	}
	err = db.GetContext(ctx, &dl, db.Rebind(sqlDeadLetterGet), id)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrDeadLetterNotFound
	}
	if err != nil {
		return fmt.Errorf("load dead letter %s: %w", id, err)
	}
	var h map[string]string
	if err := json.Unmarshal([]byte(dl.Headers), &h); err != nil {
		return fmt.Errorf("dead letter %s headers: %w", id, err)
	}
	hs := make([]kafka.Header, 0, len(h))
	for _, k := range sortedKeys(h) {
		hs = append(hs, kafka.Header{Key: k, Value: []byte(h[k])})
	}
	if err := p.WriteMessages(ctx, kafka.Message{Topic: dl.Topic, Key: []byte(dl.Key), Value: dl.Payload, Headers: hs}); err != nil {
		return fmt.Errorf("republish dead letter %s: %w", id, err)
	}
	if _, err := db.ExecContext(ctx, db.Rebind(sqlDeadLetterRetried), dbTime(d, time.Now()), id); err != nil {
		return fmt.Errorf("stamp dead letter %s retried: %w", id, err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
