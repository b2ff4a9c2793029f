package harness

import (
	"fmt"
	"os"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Kafka is a Kafka-protocol broker (kfake) in this process that keeps its
// log and group offsets in a directory, so Stop and Start make a real
// broker outage: clients lose their connections, then find the same
// topics, records and committed offsets on the same port.
type Kafka struct {
	dir        string
	port       int
	topics     []string
	partitions int32

	mu sync.Mutex
	c  *kfake.Cluster
}

// StartKafka starts a one-broker cluster on a free loopback port with the
// topics created. Close stops it and removes its directory.
func StartKafka(topics []string, partitions int) (*Kafka, error) {
	removeStale("yeyak-chaos-kafka-*", nil)
	dir, err := os.MkdirTemp("", "yeyak-chaos-kafka-")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	k := &Kafka{dir: dir, port: port, topics: topics, partitions: int32(partitions)}
	if err := k.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return k, nil
}

// Addr is the broker's host:port.
func (k *Kafka) Addr() string { return fmt.Sprintf("127.0.0.1:%d", k.port) }

// Start starts the broker (again).
func (k *Kafka) Start() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.c != nil {
		return nil
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(k.port), kfake.DataDir(k.dir),
		kfake.SeedTopics(k.partitions, k.topics...), kfake.DefaultNumPartitions(int(k.partitions)))
	if err != nil {
		return fmt.Errorf("start kafka on %s: %w", k.Addr(), err)
	}
	k.c = c
	return nil
}

// Stop stops the broker: its listener closes and every connection drops;
// the log stays on disk for Start.
func (k *Kafka) Stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.c != nil {
		k.c.Close()
		k.c = nil
	}
}

// Close stops the broker and removes its directory.
func (k *Kafka) Close() error {
	k.Stop()
	return os.RemoveAll(k.dir)
}
