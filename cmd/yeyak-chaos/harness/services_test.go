package harness

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/yeyak/yeyak/mocks/testenv"
)

// TestKafkaRestartKeepsRecords: Stop drops the broker (connections
// refused), Start brings it back on the same port with what it held.
func TestKafkaRestartKeepsRecords(t *testing.T) {
	k, err := StartKafka([]string{"t1"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := &kafka.Writer{Addr: kafka.TCP(k.Addr()), Topic: "t1", RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	if err := w.WriteMessages(ctx, kafka.Message{Value: []byte("one")}, kafka.Message{Value: []byte("two")}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	k.Stop()
	if c, err := kafka.DialContext(ctx, "tcp", k.Addr()); err == nil {
		c.Close()
		t.Fatal("the stopped broker still accepts connections")
	}
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{k.Addr()}, Topic: "t1", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	for _, want := range []string{"one", "two"} {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("after the restart: %v", err)
		}
		if string(m.Value) != want {
			t.Fatalf("read %q, want %q", m.Value, want)
		}
	}
}

// TestPostgresLifecycle: a server of the harness's own, stopped and
// started again on the same port with its data; Close removes it.
func TestPostgresLifecycle(t *testing.T) {
	if _, err := PostgresBin(); err != nil {
		testenv.Unavailable(t, "PostgreSQL server binaries", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := StartPostgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			p.Close()
		}
	}()
	dsn, err := p.CreateDatabase(ctx, "h1")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE x (v int); INSERT INTO x VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.PingContext(ctx); err == nil {
		t.Fatal("the stopped server answers")
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var v int
	if err := db.QueryRowContext(ctx, "SELECT v FROM x").Scan(&v); err != nil || v != 42 {
		t.Fatalf("after the restart: %v %v", v, err)
	}
	if p.Version(ctx) == "" {
		t.Error("no server version")
	}
	dir := p.dir
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data directory %s is still there: %v", dir, err)
	}
}

// TestRemoveStale: directories of dead runs go once they are old; fresh
// ones (a run in progress) stay.
func TestRemoveStale(t *testing.T) {
	old, err := os.MkdirTemp("", "yeyak-chaos-kafka-")
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := os.MkdirTemp("", "yeyak-chaos-kafka-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(fresh)
	defer os.RemoveAll(old)
	past := time.Now().Add(-2 * staleAfter)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	var stopped []string
	removeStale("yeyak-chaos-kafka-*", func(d string) { stopped = append(stopped, d) })
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale directory kept: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh directory removed: %v", err)
	}
	if len(stopped) != 1 || stopped[0] != old {
		t.Errorf("stop called for %v", stopped)
	}
}
