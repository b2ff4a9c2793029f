package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/yeyak/yeyak/outbox"
)

// TestConsumerLagIsTheGroupsTotal: the lag gauge sums every partition of
// the topic (kafka-go's own Stats().Lag covers the last fetched partition
// only): with the handler stuck on the first message of 60 spread over 3
// partitions, the group's lag is all 60; once they are applied and
// committed it falls to 0.
func TestConsumerLagIsTheGroupsTotal(t *testing.T) {
	t.Parallel()
	db := openDB(t, outbox.DialectSQLite)
	brokers := startKafka(t, 3, topic, topic+outbox.DeadLetterSuffix)
	evs := makeEvents(60, 30) // 30 people: spread over the 3 partitions
	msgs := make([]kafka.Message, len(evs))
	for i, e := range evs {
		msgs[i] = eventMessage(e)
	}
	produce(t, brokers, msgs...)
	gate := make(chan struct{})
	c, _ := runConsumer(t, db, brokers, "lag", func(ctx context.Context, m outbox.Message) error {
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, func(cfg *outbox.ConsumerConfig) { cfg.CommitInterval = 50 * time.Millisecond })
	waitFor(t, 20*time.Second, "lag of every partition", func() bool { return c.Stats().Lag == int64(len(evs)) })
	if v := testutilGauge(c.Metrics().Lag); v != float64(len(evs)) {
		t.Fatalf("lag gauge %v, want %d", v, len(evs))
	}
	close(gate)
	waitFor(t, 20*time.Second, "lag back to 0", func() bool { return c.Stats().Applied == int64(len(evs)) && c.Stats().Lag == 0 })
}

// TestLagMeterPerPartition: a group that committed everything lags by what
// was produced since, partition by partition; a group that never
// committed lags by everything.
func TestLagMeterPerPartition(t *testing.T) {
	t.Parallel()
	db := openDB(t, outbox.DialectSQLite)
	brokers := startKafka(t, 3, topic, topic+outbox.DeadLetterSuffix)
	evs := makeEvents(30, 30)
	first := make([]kafka.Message, 0, 30)
	for _, e := range evs {
		first = append(first, eventMessage(e))
	}
	produce(t, brokers, first...)
	c, stop := runConsumer(t, db, brokers, "meter", func(context.Context, outbox.Message) error { return nil },
		func(cfg *outbox.ConsumerConfig) { cfg.CommitInterval = -1 })
	waitFor(t, 20*time.Second, "all applied", func() bool { return c.Stats().Applied == 30 })
	stop()
	more := makeEvents(7, 7)
	extra := make([]kafka.Message, 0, 7)
	for _, e := range more {
		extra = append(extra, eventMessage(e))
	}
	produce(t, brokers, extra...)

	ctx := context.Background()
	for group, want := range map[string]int64{"meter": 7, "never-consumed": 37} {
		m, err := outbox.NewLagMeter(brokers, group, topic, 0)
		if err != nil {
			t.Fatal(err)
		}
		total, parts, err := m.Lag(ctx)
		m.Close()
		if err != nil {
			t.Fatalf("%s: %v", group, err)
		}
		if total != want || len(parts) != 3 {
			t.Fatalf("%s: lag %d over %d partitions %+v, want %d over 3", group, total, len(parts), parts, want)
		}
		var sum, ends int64
		for _, p := range parts {
			sum += p.Lag
			ends += p.End
			if group == "never-consumed" && p.Committed != -1 {
				t.Fatalf("never-consumed group has a committed offset: %+v", p)
			}
		}
		if sum != total || ends != 37 {
			t.Fatalf("%s: parts %+v do not add up", group, parts)
		}
	}
}
