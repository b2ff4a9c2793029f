// Package outbox delivers booking events from the database to Kafka and
// applies them on the other side, so that every committed booking reaches
// the registry exactly once in effect while the registry never stalls a
// booking.
//
// Three parts:
//
//   - Relay reads the outbox table (written by booking/sqlstore in the
//     booking transaction), publishes rows in commit (seq) order with a
//     kafka-go Writer (acks=all, Murmur2 key hashing: key = person id), marks
//     them published and deletes them after a retention period.
//   - Consumer reads a topic in a consumer group, applies each event with a
//     Handler (adapter/registrysync for the registry), dedups redeliveries
//     through the inbox table, dead-letters poison events, pauses while the
//     target is unavailable, and commits an offset only once its event is
//     applied, deduplicated or dead-lettered. Its lag gauge is the group's
//     total over every partition (LagMeter), and it applies at most Rate
//     events a second (200 by default) to protect the registry.
//   - OpsHandler serves GET /ops/outbox (backlog and age of the oldest
//     unsent row; the relay's status, its publish latency percentiles and
//     batch sizes over the last 512 batches (Relay.PublishStats); each
//     consumer's lag, pause and counters; the open dead letters) and POST
//     /ops/deadletters/{id}/retry. docs/runbook.md says what to do with them.
//
// StartEmbeddedKafka runs an in-process Kafka-protocol broker (kfake) for
// tests, benchmarks and the demo.
//
// The main calls:
//
//	w := outbox.NewWriter(brokers, outbox.DefaultTopic, outbox.WriterConfig{})
//	relay, err := outbox.NewRelay(store.DB(), string(store.Dialect()), w, outbox.RelayConfig{})
//	go relay.Run(ctx)
//
//	c, err := outbox.NewConsumer(outbox.ConsumerConfig{
//		Brokers: brokers, GroupID: "registry-sync", Handler: handler.Handle,
//		DB: store.DB(), Dialect: string(store.Dialect()),
//	})
//	go c.Run(ctx)
//
// # Delivery and ordering
//
// Delivery is at least once. A row is marked published only after Kafka
// acknowledged it from all in-sync replicas; a relay that dies between the
// two publishes the batch again when it (or another relay) restarts. The
// consumer's inbox (event ids already applied) turns that into exactly once
// in effect, and the registry's idempotency by booking id covers the last
// gap (a crash between the registry write and the inbox insert).
//
// One person's events keep their commit order end to end: the key is the
// person id, so they share a partition; the relay publishes in seq order,
// one batch at a time, and never acknowledges a later event of a key whose
// earlier event failed (a key's events in one batch go to one partition in
// one produce request, all or nothing; failed rows stay unpublished and
// the whole remainder is retried after backoff). seq follows commit order
// for one person because the store's changes to one booking serialize on
// the booking's row.
//
// # Several relays on PostgreSQL
//
// Relays may run on every node. Each batch runs in a transaction that
// first takes a transaction-scoped advisory lock
// (pg_try_advisory_xact_lock); a relay that does not get it stands by and
// tries again shortly. The lock is released only when the batch's marks
// commit (or the transaction dies with its connection), so the next relay
// always sees them: no event is published twice by design, and a dead
// relay's lease frees itself without timeouts. FOR UPDATE SKIP LOCKED
// alone was rejected: two relays would each take a slice of the backlog
// and could publish one person's later event before another relay
// published the earlier one. The batch transaction holds no row locks
// until its final UPDATE, so booking transactions never wait for it.
// Throughput is one relay's (see BenchmarkRelayPostgres); the standby
// relays are for availability. Partitioning the lease by key hash would
// scale it out and is left for when one relay is not enough.
//
// Relays wake on LISTEN yeyak_outbox (a pool connection held with pgx's
// WaitForNotification) and poll slowly (RelayConfig.PollInterval, 5 s) in
// case a notification is lost. On SQLite there is one relay, which polls
// every 100 ms and reads outside any transaction so the single writer is
// never held while Kafka is slow.
//
// # Kafka down
//
// A failed publish leaves the rows in the table, counts them in the
// failed metric and retries after an exponential backoff with full jitter
// (RelayConfig.MinBackoff to MaxBackoff). Bookings are unaffected: they
// only insert rows. When Kafka returns, the backlog drains in batches.
//
// # Consumer errors
//
// A Handler error wrapping ErrPermanent, or a message without an event id
// or a JSON payload, goes to the dead-letter topic (the error and origin in
// dlq-* headers) and the dead_letters table, from which ops re-drives it.
// An error wrapping ErrPause (the registry's breaker is open) pauses the
// consumer with a backoff from PauseMin to PauseMax on the same message;
// any other error retries the same message with a shorter backoff. Offsets
// are never skipped. A rate limiter (ConsumerConfig.Rate) caps applies.
//
// # Tables
//
// outbox is booking/sqlstore's (migration 00002). inbox(event_id,
// processed_at) and dead_letters(id, topic, partition_no, offset_no,
// msg_key, payload, headers, error, created_at, retried_at) are migration
// 00010 in booking/sqlstore's migration directories.
package outbox
