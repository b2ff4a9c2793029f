package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// LagMeter measures a consumer group's total lag on a topic, the way Kafka
// sees it: for every partition, the high watermark (the offset the next
// message will get) minus the group's committed offset — or minus the
// partition's first offset when the group has committed nothing there (the
// consumer starts at the earliest offset) — summed over the partitions.
//
// kafka-go's Reader.Stats().Lag is not that: it is the lag of the partition
// the last fetched message came from, and says nothing of the others. The
// consumer refreshes its lag gauge with a LagMeter every LagInterval.
// Committed offsets trail the messages handled by up to the consumer's
// CommitInterval, so the group lag includes those.
type LagMeter struct {
	client    *kafka.Client
	transport *kafka.Transport
	group     string
	topic     string
}

// NewLagMeter returns a LagMeter for group on topic through brokers. Each
// measure is bounded by timeout (0 means 5 s). Close releases its
// connections.
func NewLagMeter(brokers []string, group, topic string, timeout time.Duration) (*LagMeter, error) {
	if len(brokers) == 0 || group == "" || topic == "" {
		return nil, errors.New("outbox: NewLagMeter needs brokers, a group and a topic")
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	tr := &kafka.Transport{DialTimeout: timeout, IdleTimeout: time.Minute}
	return &LagMeter{
		client:    &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: timeout, Transport: tr},
		transport: tr,
		group:     group,
		topic:     topic,
	}, nil
}

// PartitionLag is one partition's share of a group's lag.
type PartitionLag struct {
	Partition int   `json:"partition"`
	End       int64 `json:"end"`       // high watermark
	Committed int64 `json:"committed"` // the group's committed offset; -1 if none
	Lag       int64 `json:"lag"`
}

// Lag returns the group's total lag and its parts, partition by partition.
func (m *LagMeter) Lag(ctx context.Context) (int64, []PartitionLag, error) {
	md, err := m.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{m.topic}})
	if err != nil {
		return 0, nil, fmt.Errorf("lag: metadata of %s: %w", m.topic, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		var terr error
		if len(md.Topics) == 1 {
			terr = md.Topics[0].Error
		}
		return 0, nil, fmt.Errorf("lag: topic %s: %w", m.topic, errors.Join(errors.New("not in metadata"), terr))
	}
	parts := make([]int, 0, len(md.Topics[0].Partitions))
	reqs := make([]kafka.OffsetRequest, 0, 2*len(md.Topics[0].Partitions))
	for _, p := range md.Topics[0].Partitions {
		parts = append(parts, p.ID)
		reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
	}
	lo, err := m.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{m.topic: reqs}})
	if err != nil {
		return 0, nil, fmt.Errorf("lag: list offsets of %s: %w", m.topic, err)
	}
	of, err := m.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: m.group, Topics: map[string][]int{m.topic: parts}})
	if err != nil {
		return 0, nil, fmt.Errorf("lag: committed offsets of group %s: %w", m.group, err)
	}
	switch {
	case errors.Is(of.Error, kafka.GroupIdNotFound):
		// A group that never committed (some brokers say so instead of
		// answering -1 for every partition).
		of.Topics = nil
	case of.Error != nil:
		return 0, nil, fmt.Errorf("lag: committed offsets of group %s: %w", m.group, of.Error)
	}
	committed := make(map[int]int64, len(parts))
	for _, p := range of.Topics[m.topic] {
		if p.Error != nil {
			return 0, nil, fmt.Errorf("lag: committed offset of partition %d: %w", p.Partition, p.Error)
		}
		committed[p.Partition] = p.CommittedOffset
	}
	var total int64
	out := make([]PartitionLag, 0, len(parts))
	for _, p := range lo.Topics[m.topic] {
		if p.Error != nil {
			return 0, nil, fmt.Errorf("lag: offsets of partition %d: %w", p.Partition, p.Error)
		}
		c, ok := committed[p.Partition]
		if !ok {
			c = -1
		}
		from := c
		if from < 0 {
			from = p.FirstOffset
		}
		l := max(p.LastOffset-from, 0)
		total += l
		out = append(out, PartitionLag{Partition: p.Partition, End: p.LastOffset, Committed: c, Lag: l})
	}
	if len(out) != len(parts) {
		return 0, nil, fmt.Errorf("lag: offsets of %d of %d partitions", len(out), len(parts))
	}
	return total, out, nil
}

// Close releases the meter's connections.
func (m *LagMeter) Close() { m.transport.CloseIdleConnections() }
