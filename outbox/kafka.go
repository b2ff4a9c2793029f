package outbox

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// DefaultTopic is the topic booking events are published to.
const DefaultTopic = "yeyak.booking-events"

// DeadLetterSuffix is appended to a topic's name to name its dead-letter
// topic when none is configured.
const DeadLetterSuffix = ".deadletter"

// WriterConfig tunes the Kafka writer NewWriter builds. Zero values mean the
// documented defaults, which BenchmarkRelayPostgres measured.
type WriterConfig struct {
	// BatchSize is the most messages one produce request carries per
	// partition; 0 means 1000 (at least the relay's batch, so a partition's
	// share of a relay batch is one request).
	BatchSize int
	// BatchBytes caps a produce request per partition; 0 means 1 MiB (the
	// broker's default message.max.bytes).
	BatchBytes int64
	// BatchTimeout is how long a partly filled batch waits for more
	// messages; 0 means 2 ms. The relay writes whole batches synchronously,
	// so a long timeout only adds latency.
	BatchTimeout time.Duration
	// WriteTimeout bounds one produce request; 0 means 10 s.
	WriteTimeout time.Duration
	// MaxAttempts is how many times the writer itself tries a request
	// before returning the error to the relay (which then backs off); 0
	// means 3.
	MaxAttempts int
}

// NewWriter returns a kafka-go writer for topic with the settings the relay
// relies on: acks from all in-sync replicas, the Murmur2 key balancer (the
// Java client's partitioning, so one person's events share a partition),
// synchronous writes, no automatic topic creation. topic may be "" when
// every message names its own topic (dead letters, ops retries).
func NewWriter(brokers []string, topic string, cfg WriterConfig) *kafka.Writer {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = 1 << 20
	}
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = 2 * time.Millisecond
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	return &kafka.Writer{
		Addr:            kafka.TCP(brokers...),
		Topic:           topic,
		Balancer:        &kafka.Murmur2Balancer{},
		RequiredAcks:    kafka.RequireAll,
		BatchSize:       cfg.BatchSize,
		BatchBytes:      cfg.BatchBytes,
		BatchTimeout:    cfg.BatchTimeout,
		WriteTimeout:    cfg.WriteTimeout,
		ReadTimeout:     cfg.WriteTimeout,
		MaxAttempts:     cfg.MaxAttempts,
		WriteBackoffMin: 50 * time.Millisecond,
		WriteBackoffMax: 500 * time.Millisecond,
	}
}

// StartEmbeddedKafka starts an in-process Kafka-protocol broker
// (franz-go's kfake) on 127.0.0.1 with topics created, each with the given
// number of partitions (0 means 6), and returns its bootstrap addresses
// and a stop function. It keeps everything in memory: nothing survives a
// restart. It is for tests, benchmarks and the demo, never production.
//
// Pass port > 0 through EmbeddedPort to listen on a fixed port (a test
// restarting "Kafka" on the same address).
func StartEmbeddedKafka(ctx context.Context, topics []string, partitions int, opts ...EmbeddedOption) (brokers []string, stop func(), err error) {
	if partitions <= 0 {
		partitions = 6
	}
	var o embeddedOpts
	for _, f := range opts {
		f(&o)
	}
	kopts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(int32(partitions), topics...), kfake.DefaultNumPartitions(partitions)}
	if o.port > 0 {
		kopts = append(kopts, kfake.Ports(o.port))
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, nil, fmt.Errorf("start embedded kafka: %w", err)
	}
	brokers = c.ListenAddrs()
	log := o.logger
	if log == nil {
		log = slog.Default()
	}
	log.Info("embedded Kafka-protocol broker started (in memory: it keeps nothing across restarts)",
		"brokers", strings.Join(brokers, ","), "topics", strings.Join(topics, ","), "partitions", partitions)
	return brokers, c.Close, nil
}

// EmbeddedOption adjusts StartEmbeddedKafka.
type EmbeddedOption func(*embeddedOpts)

type embeddedOpts struct {
	port   int
	logger *slog.Logger
}

// EmbeddedPort makes the embedded broker listen on 127.0.0.1:port.
func EmbeddedPort(port int) EmbeddedOption { return func(o *embeddedOpts) { o.port = port } }

// EmbeddedLogger sets the logger that announces the embedded broker.
func EmbeddedLogger(l *slog.Logger) EmbeddedOption { return func(o *embeddedOpts) { o.logger = l } }
