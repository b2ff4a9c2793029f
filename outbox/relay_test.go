package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/outbox"
)

const topic = outbox.DefaultTopic

// TestRelayPublishesAllInPerKeyOrder: 2,000 people book through
// booking.Service (some then reschedule or cancel), on SQLite and
// PostgreSQL, while the relay runs; every event reaches Kafka once,
// readable by franz-go with the documented schema and headers, each
// person's events in commit order and on one partition.
func TestRelayPublishesAllInPerKeyOrder(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			sys := newBookingSystem(t, d)
			db := sys.db()
			brokers := startKafka(t, 6, topic)
			w := outbox.NewWriter(brokers, topic, outbox.WriterConfig{})
			defer w.Close()
			r, err := outbox.NewRelay(db, d, w, fastRelay(outbox.RelayConfig{}))
			if err != nil {
				t.Fatal(err)
			}
			stop := runRelay(t, r)
			const people = 2_000
			n := sys.stream(t, 0, people/2, 8)
			n += sys.stream(t, people/2, people, 8) // while the relay publishes the first half
			if t.Failed() {
				return
			}
			recs := readAll(t, brokers, topic, n, 60*time.Second)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if len(recs) != n {
				t.Fatalf("read %d records, want %d", len(recs), n)
			}
			if p := pending(t, db); p != 0 {
				t.Errorf("pending after drain = %d, want 0", p)
			}
			want, rows := outboxOrder(t, db) // person -> event ids in commit order
			if rows != n || len(want) != people {
				t.Fatalf("outbox holds %d events of %d people, want %d of %d", rows, len(want), n, people)
			}
			got := map[string][]string{}
			partOf := map[string]int32{}
			seen := map[string]bool{}
			for _, rec := range recs {
				id := header(rec, booking.HeaderEventID)
				if seen[id] {
					t.Fatalf("event %s published twice", id)
				}
				seen[id] = true
				var p booking.EventPayload
				if err := json.Unmarshal(rec.Value, &p); err != nil {
					t.Fatalf("payload: %v", err)
				}
				if p.SchemaVersion != booking.EventSchemaVersion || p.EventID != id || string(p.Type) != header(rec, booking.HeaderEventType) {
					t.Fatalf("payload/header mismatch: %+v vs headers %v", p, rec.Headers)
				}
				if header(rec, booking.HeaderSchemaVersion) != "1" {
					t.Fatalf("missing headers: %v", rec.Headers)
				}
				if p.Type == booking.EventBookingConfirmed && header(rec, booking.HeaderTraceparent) == "" {
					t.Fatalf("booking's traceparent not carried: %v", rec.Headers)
				}
				key := string(rec.Key)
				if key != p.Booking.PersonID {
					t.Fatalf("key %q is not the person id", key)
				}
				if pp, ok := partOf[key]; ok && pp != rec.Partition {
					t.Fatalf("person's events on partitions %d and %d", pp, rec.Partition)
				}
				partOf[key] = rec.Partition
				got[key] = append(got[key], id)
			}
			multi := 0
			for person, ids := range want {
				if len(ids) > 1 {
					multi++
				}
				if len(got[person]) != len(ids) {
					t.Fatalf("person has %d events in Kafka, %d in the outbox", len(got[person]), len(ids))
				}
				for i := range ids {
					if got[person][i] != ids[i] {
						t.Fatalf("person's event %d out of commit order", i)
					}
				}
			}
			if multi == 0 {
				t.Fatal("no person with several events: order not exercised")
			}
		})
	}
}

// TestRelayMurmur2MatchesJavaPartitioner: the writer's key hashing is the
// Java client's, so other producers and tools agree on a person's partition.
func TestRelayMurmur2MatchesJavaPartitioner(t *testing.T) {
	t.Parallel()
	// murmur2 values from Apache Kafka's UtilsTest.testMurmur2; the Java
	// partitioner uses toPositive(murmur2(key)) % numPartitions.
	java := map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	}
	w := outbox.NewWriter([]string{"127.0.0.1:1"}, topic, outbox.WriterConfig{})
	defer w.Close()
	for _, n := range []int{1, 3, 6, 12} {
		parts := make([]int, n)
		for i := range parts {
			parts[i] = i
		}
		for k, h := range java {
			want := int((uint32(h) & 0x7fffffff) % uint32(n))
			if got := w.Balancer.Balance(kafka.Message{Key: []byte(k)}, parts...); got != want {
				t.Errorf("key %q over %d partitions: %d, Java client: %d", k, n, got, want)
			}
		}
	}
}

// failingPublisher fails while down is set.
type failingPublisher struct {
	outbox.Publisher
	down  atomic.Bool
	calls atomic.Int64
}

func (f *failingPublisher) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	f.calls.Add(1)
	if f.down.Load() {
		return errors.New("kafka: connection refused (injected)")
	}
	return f.Publisher.WriteMessages(ctx, msgs...)
}

// TestRelayKafkaDownBacklogDrains: while Kafka refuses writes, inserts keep
// succeeding and the backlog grows; the relay backs off (no hot loop);
// when Kafka returns, the backlog drains to zero and nothing is lost.
func TestRelayKafkaDownBacklogDrains(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			db := openDB(t, d)
			brokers := startKafka(t, 3, topic)
			w := outbox.NewWriter(brokers, topic, outbox.WriterConfig{})
			defer w.Close()
			fp := &failingPublisher{Publisher: w}
			fp.down.Store(true)
			r, err := outbox.NewRelay(db, d, fp, fastRelay(outbox.RelayConfig{BatchSize: 100}))
			if err != nil {
				t.Fatal(err)
			}
			runRelay(t, r)
			evs := makeEvents(600, 40)
			start := time.Now()
			for i := 0; i < len(evs); i += 100 {
				insertEvents(t, db, evs[i:i+100]) // "bookings" keep committing
			}
			waitFor(t, 10*time.Second, "failed publishes", func() bool { return fp.calls.Load() >= 3 })
			if p := pending(t, db); p != int64(len(evs)) {
				t.Fatalf("pending while Kafka is down = %d, want %d", p, len(evs))
			}
			if calls, el := fp.calls.Load(), time.Since(start); calls > 20+int64(el/(10*time.Millisecond)) {
				t.Errorf("%d publish attempts in %v: not backing off", calls, el)
			}
			fp.down.Store(false)
			waitFor(t, 20*time.Second, "backlog drained", func() bool { return pending(t, db) == 0 })
			recs := readAll(t, brokers, topic, len(evs), 20*time.Second)
			ids := map[string]bool{}
			for _, rec := range recs {
				ids[header(rec, booking.HeaderEventID)] = true
			}
			for _, e := range evs {
				if !ids[e.ID] {
					t.Fatalf("event lost after outage")
				}
			}
		})
	}
}

// TestKafkaStoppedDuringBookingStream: a real broker outage (the kfake
// cluster closed, a new one started later on the same port) in the middle
// of a stream of bookings through booking.Service, on SQLite and
// PostgreSQL: every booking keeps succeeding while Kafka is gone (its
// event waits in the table), and once Kafka is back the backlog drains to
// zero into the new broker, nothing lost.
func TestKafkaStoppedDuringBookingStream(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			sys := newBookingSystem(t, d)
			db := sys.db()
			brokers, stop, err := outbox.StartEmbeddedKafka(context.Background(), []string{topic}, 3)
			if err != nil {
				t.Fatal(err)
			}
			w := outbox.NewWriter(brokers, topic, outbox.WriterConfig{WriteTimeout: time.Second, MaxAttempts: 1})
			defer w.Close()
			r, err := outbox.NewRelay(db, d, w, fastRelay(outbox.RelayConfig{PublishTimeout: 2 * time.Second}))
			if err != nil {
				t.Fatal(err)
			}
			runRelay(t, r)
			timed := func(from, to int) []time.Duration {
				var ds []time.Duration
				for i := from; i < to; i++ {
					start := time.Now()
					if _, err := sys.book(context.Background(), i); err != nil {
						t.Fatalf("booking %d: %v", i, err)
					}
					ds = append(ds, time.Since(start))
				}
				return ds
			}
			before := timed(0, 100)
			waitFor(t, 15*time.Second, "first events published", func() bool { return pending(t, db) == 0 })

			stop() // Kafka goes away in the middle of the stream
			during := timed(100, 300)
			waitFor(t, 15*time.Second, "a failed publish", func() bool { return r.Status().LastError != "" })
			if p := pending(t, db); p != 200 {
				t.Fatalf("pending while Kafka is down = %d, want the 200 bookings made meanwhile", p)
			}
			_, _, bmax := durations(before)
			_, _, dmax := durations(during)
			t.Logf("booking latency max: Kafka up %v, Kafka down %v", bmax, dmax)

			_, portText, _ := net.SplitHostPort(brokers[0])
			port, _ := strconv.Atoi(portText)
			brokers2, stop2, err := outbox.StartEmbeddedKafka(context.Background(), []string{topic}, 3, outbox.EmbeddedPort(port))
			if err != nil {
				t.Fatal(err)
			}
			defer stop2()
			timed(300, 350) // the stream goes on after the restart
			waitFor(t, 30*time.Second, "backlog drained into the new broker", func() bool { return pending(t, db) == 0 })
			recs := readAll(t, brokers2, topic, 250, 20*time.Second)
			got := map[string]bool{}
			for _, rec := range recs {
				got[string(rec.Key)] = true
			}
			for i := 100; i < 350; i++ {
				if !got[personID(i)] {
					t.Fatalf("booking %d made while Kafka was down or after it returned never reached it", i)
				}
			}
		})
	}
}

// durations returns the median, 99th percentile and maximum of ds.
func durations(ds []time.Duration) (p50, p99, top time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)*99/100], s[len(s)-1]
}

// TestRelayTwoRelaysPostgres: two relays on one PostgreSQL database at once,
// with events arriving while they run: every event is published exactly
// once (count), none missed, per-key order kept.
func TestRelayTwoRelaysPostgres(t *testing.T) {
	t.Parallel()
	db := openDB(t, outbox.DialectPostgres)
	brokers := startKafka(t, 6, topic)
	var relays []*outbox.Relay
	for _, name := range []string{"a", "b"} {
		w := outbox.NewWriter(brokers, topic, outbox.WriterConfig{})
		defer w.Close()
		r, err := outbox.NewRelay(db, outbox.DialectPostgres, w, fastRelay(outbox.RelayConfig{BatchSize: 50, Name: name}))
		if err != nil {
			t.Fatal(err)
		}
		relays = append(relays, r)
		runRelay(t, r)
	}
	evs := makeEvents(2000, 50)
	for i := 0; i < len(evs); i += 200 {
		insertEvents(t, db, evs[i:i+200])
	}
	waitFor(t, 30*time.Second, "drained", func() bool { return pending(t, db) == 0 })
	recs := readAll(t, brokers, topic, len(evs), 20*time.Second)
	// Read a little longer: a duplicate would arrive after the 2,000th.
	extra := readAll(t, brokers, topic, len(evs)+1, 500*time.Millisecond)
	if len(extra) > len(evs) || len(recs) != len(evs) {
		t.Fatalf("topic holds %d/%d records, want exactly %d", len(recs), len(extra), len(evs))
	}
	count := map[string]int{}
	last := map[string]int{}
	index := map[string]int{}
	for i, e := range evs {
		index[e.ID] = i
	}
	for _, rec := range recs {
		id := header(rec, booking.HeaderEventID)
		count[id]++
		i := index[id]
		if prev, ok := last[string(rec.Key)]; ok && prev > i {
			t.Fatalf("per-person order broken across relays")
		}
		last[string(rec.Key)] = i
	}
	for _, e := range evs {
		if count[e.ID] != 1 {
			t.Fatalf("event published %d times, want 1", count[e.ID])
		}
	}
	var a, b float64
	a = published(relays[0])
	b = published(relays[1])
	t.Logf("relay a published %v, relay b %v", a, b)
	if a+b != float64(len(evs)) {
		t.Fatalf("relays published %v in total, want %d", a+b, len(evs))
	}
}

func published(r *outbox.Relay) float64 {
	m := r.Metrics()
	return testutilCounter(m.Published)
}

// TestRelayCleanupDeletesOnlyOldPublishedRows: retention removes published
// rows past the cutoff and never unpublished ones.
func TestRelayCleanupDeletesOnlyOldPublishedRows(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			db := openDB(t, d)
			brokers := startKafka(t, 1, topic)
			w := outbox.NewWriter(brokers, topic, outbox.WriterConfig{})
			defer w.Close()
			r, err := outbox.NewRelay(db, d, w, fastRelay(outbox.RelayConfig{}))
			if err != nil {
				t.Fatal(err)
			}
			stop := runRelay(t, r)
			insertEvents(t, db, makeEvents(30, 5))
			waitFor(t, 10*time.Second, "published", func() bool { return pending(t, db) == 0 })
			stop()
			insertEvents(t, db, makeEvents(7, 5)) // unpublished
			ctx := context.Background()
			if n, err := r.Cleanup(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
				t.Fatalf("cleanup of rows newer than cutoff deleted %d (%v)", n, err)
			}
			n, err := r.Cleanup(ctx, time.Now().Add(time.Second))
			if err != nil || n != 30 {
				t.Fatalf("cleanup deleted %d (%v), want 30", n, err)
			}
			if p := pending(t, db); p != 7 {
				t.Fatalf("pending after cleanup = %d, want 7", p)
			}
		})
	}
}

// TestRelayWakesOnNotify: on PostgreSQL the relay is woken by NOTIFY from
// the inserting transaction, not by its poll (set to an hour here).
func TestRelayWakesOnNotify(t *testing.T) {
	t.Parallel()
	db := openDB(t, outbox.DialectPostgres)
	brokers := startKafka(t, 1, topic)
	w := outbox.NewWriter(brokers, topic, outbox.WriterConfig{})
	defer w.Close()
	r, err := outbox.NewRelay(db, outbox.DialectPostgres, w, fastRelay(outbox.RelayConfig{PollInterval: time.Hour}))
	if err != nil {
		t.Fatal(err)
	}
	runRelay(t, r)
	for round := range 3 {
		// Let the relay go idle (its first pass found nothing), then insert.
		waitFor(t, 5*time.Second, "relay idle", func() bool { return pending(t, db) == 0 })
		time.Sleep(100 * time.Millisecond)
		insertEvents(t, db, makeEvents(5, 2))
		waitFor(t, 10*time.Second, "woken by NOTIFY", func() bool { return pending(t, db) == 0 })
		if got := published(r); got != float64(5*(round+1)) {
			t.Fatalf("published %v, want %d", got, 5*(round+1))
		}
	}
}

// TestOpsOutboxPublishSummary: GET /ops/outbox reports the relay's publish
// latency and batch sizes over its recent batches, failed ones counted.
func TestOpsOutboxPublishSummary(t *testing.T) {
	t.Parallel()
	db := openDB(t, outbox.DialectSQLite)
	brokers := startKafka(t, 3, topic)
	w := outbox.NewWriter(brokers, topic, outbox.WriterConfig{})
	defer w.Close()
	fp := &failingPublisher{Publisher: w}
	fp.down.Store(true)
	r, err := outbox.NewRelay(db, outbox.DialectSQLite, fp, fastRelay(outbox.RelayConfig{BatchSize: 100}))
	if err != nil {
		t.Fatal(err)
	}
	insertEvents(t, db, makeEvents(250, 25)) // before the relay starts: full batches
	runRelay(t, r)
	waitFor(t, 10*time.Second, "failed publishes", func() bool { return fp.calls.Load() >= 2 })
	fp.down.Store(false)
	waitFor(t, 20*time.Second, "drained", func() bool { return pending(t, db) == 0 })

	srv := httptest.NewServer(outbox.OpsHandler(db, outbox.OpsConfig{Relay: r}))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/ops/outbox")
	if err != nil {
		t.Fatal(err)
	}
	var sum outbox.OutboxSummary
	decodeJSON(t, res, &sum)
	if sum.Relay == nil {
		t.Fatal("no relay in the summary")
	}
	p := sum.Relay.Publish
	ok := p.Recent - p.RecentFailed
	if p.Batches != int64(p.Recent) || p.RecentFailed < 2 || ok != 3 {
		t.Fatalf("publish summary %+v: want 3 successful batches (100, 100, 50) after at least 2 failed ones", p)
	}
	if p.SizeMax != 100 || p.LatencyMax <= 0 || p.LatencyP50 > p.LatencyP99 || p.LatencyP99 > p.LatencyMax {
		t.Fatalf("publish summary %+v", p)
	}
	if got := testutilCounter(r.Metrics().Published); got != 250 {
		t.Fatalf("published %v, want 250", got)
	}
}
