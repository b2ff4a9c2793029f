package cache

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/mocks/testenv"
)

// nopRegistry answers every person at once.
type nopRegistry struct{}

func (nopRegistry) Eligibility(_ context.Context, id string) (adapter.Record, error) {
	return adapter.Record{PersonID: id}, nil
}
func (nopRegistry) EligibilityBulk(context.Context, []string) ([]adapter.Record, error) {
	return nil, nil
}
func (nopRegistry) RecordBooking(context.Context, adapter.BookingRecord) error { return nil }
func (nopRegistry) CancelBooking(context.Context, string) error                { return nil }
func (nopRegistry) Ping(context.Context) error                                 { return nil }

// countingRegistry answers every person and counts the reads.
type countingRegistry struct {
	nopRegistry
	reads int
}

func (r *countingRegistry) Eligibility(ctx context.Context, id string) (adapter.Record, error) {
	r.reads++
	return adapter.Record{PersonID: id, BirthDate: time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)}, nil
}

// TestInvalidatedPersonSkipsRedisUntilDeleted: between Invalidate and the
// worker's deletion of the Redis copy, this instance must not read the
// copy (it is known to be out of date), even when the person is not in its
// memory; once the deletion is done, Redis is read again.
func TestInvalidatedPersonSkipsRedisUntilDeleted(t *testing.T) {
	addr, prefix := testenv.RedisAddr(t)
	t.Cleanup(func() { deleteKeys(t, addr, prefix) })
	reg := &countingRegistry{}
	c, err := New(reg, Config{RedisAddr: addr, KeyPrefix: prefix, RedisTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	const id = "P0000000042"
	// Redis holds a copy; this instance's memory does not.
	c.rds.set(ctx, id, newEntry(id, adapter.Record{PersonID: id}, time.Now()))
	// Hold the deletion: the worker reads the old queue, this one is never
	// drained.
	c.delq = make(chan string, 1)
	c.Invalidate(ctx, id)
	e, err := c.Get(ctx, id)
	if err != nil || e.Source != SourceRegistry || reg.reads != 1 {
		t.Fatalf("Get while the Redis deletion is pending = %+v, %v (reads %d); want a registry read", e, err, reg.reads)
	}
	// The registry's answer of a read that began after the invalidation is
	// current: memory answers now.
	if e, _ := c.Get(ctx, id); e.Source != SourceMemory {
		t.Fatalf("second Get from %s, want memory", e.Source)
	}
	// Once deleted, a miss may read Redis again.
	c.redisDeleted([]string{id}, nil)
	if m := c.mem.inval[id]; m.redisPending {
		t.Fatal("mark still pending after the deletion")
	}
}

// deleteKeys deletes the keys under prefix on the Redis at addr (never a
// FLUSH: the server is shared).
func deleteKeys(t *testing.T, addr, prefix string) {
	cl := redis.NewClient(&redis.Options{Addr: addr})
	defer cl.Close()
	ctx := context.Background()
	keys, err := cl.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Logf("list test keys: %v", err)
		return
	}
	if len(keys) > 0 {
		cl.Del(ctx, keys...)
	}
}
