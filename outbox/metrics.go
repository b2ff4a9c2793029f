package outbox

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"
)

// RelayMetrics are the relay's Prometheus metrics. Register them with
// Register; a relay created without metrics gets a private, unregistered set.
type RelayMetrics struct {
	// Pending is the number of unpublished outbox rows (refreshed every
	// StatsInterval).
	Pending prometheus.Gauge
	// OldestAge is the age in seconds of the oldest unpublished row.
	OldestAge prometheus.Gauge
	// PublishLatency is the time one batch's WriteMessages took.
	PublishLatency prometheus.Histogram
	// BatchSize is the number of rows per published batch.
	BatchSize prometheus.Histogram
	// Published and Failed count events Kafka acknowledged or refused.
	Published, Failed prometheus.Counter
	// LeaseBusy counts the times a PostgreSQL relay found another relay
	// holding the publishing lease.
	LeaseBusy prometheus.Counter
}

// NewRelayMetrics returns a fresh set of relay metrics.
func NewRelayMetrics() *RelayMetrics {
	return &RelayMetrics{
		Pending: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "yeyak", Subsystem: "outbox",
			Name: "pending_rows", Help: "Outbox rows not yet published to Kafka."}),
		OldestAge: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "yeyak", Subsystem: "outbox",
			Name: "oldest_pending_age_seconds", Help: "Age of the oldest unpublished outbox row."}),
		PublishLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "yeyak", Subsystem: "outbox",
			Name: "publish_seconds", Help: "Time to publish one batch to Kafka (acks=all).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "yeyak", Subsystem: "outbox",
			Name: "batch_size", Help: "Events per published batch.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000}}),
		Published: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "yeyak", Subsystem: "outbox",
			Name: "published_total", Help: "Events published to Kafka (acknowledged by all in-sync replicas)."}),
		Failed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "yeyak", Subsystem: "outbox",
			Name: "publish_failed_total", Help: "Events whose publish failed (they stay in the table and are retried)."}),
		LeaseBusy: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "yeyak", Subsystem: "outbox",
			Name: "lease_busy_total", Help: "Times a relay stood by because another relay held the publishing lease."}),
	}
}

// Register registers the metrics with reg.
func (m *RelayMetrics) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.Pending, m.OldestAge, m.PublishLatency, m.BatchSize, m.Published, m.Failed, m.LeaseBusy} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// ConsumerMetrics are a consumer's Prometheus metrics, labelled by group.
type ConsumerMetrics struct {
	// Lag is the consumer group's lag in messages, summed over the topic's
	// partitions (see LagMeter).
	Lag prometheus.Gauge
	// Applied, Deduplicated and DeadLettered count messages the handler
	// applied, messages skipped because the inbox already held their event
	// id, and messages sent to the dead-letter topic.
	Applied, Deduplicated, DeadLettered prometheus.Counter
	// Retries counts handler attempts that failed with a retryable error.
	Retries prometheus.Counter
	// Paused is 1 while the consumer waits for an unavailable dependency.
	Paused prometheus.Gauge
}

// NewConsumerMetrics returns a fresh set of consumer metrics for group.
func NewConsumerMetrics(group string) *ConsumerMetrics {
	l := prometheus.Labels{"group": group}
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "yeyak", Subsystem: "consumer", Name: name, Help: help, ConstLabels: l})
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "yeyak", Subsystem: "consumer", Name: name, Help: help, ConstLabels: l})
	}
	return &ConsumerMetrics{
		Lag:          g("lag_messages", "Messages between the group's committed offsets and the end of the topic, summed over its partitions."),
		Applied:      c("applied_total", "Events the handler applied."),
		Deduplicated: c("deduplicated_total", "Redelivered events skipped because the inbox held their id."),
		DeadLettered: c("dead_lettered_total", "Events sent to the dead-letter topic."),
		Retries:      c("retries_total", "Handler attempts that failed with a retryable error."),
		Paused:       g("paused", "1 while the consumer is paused on an unavailable dependency."),
	}
}

// Register registers the metrics with reg.
func (m *ConsumerMetrics) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.Lag, m.Applied, m.Deduplicated, m.DeadLettered, m.Retries, m.Paused} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func findHeader(hs []kafka.Header, key string) ([]byte, bool) {
	for _, h := range hs {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// counterValue reads a counter's current value.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil || m.Counter == nil {
		return 0
	}
	return m.Counter.GetValue()
}
