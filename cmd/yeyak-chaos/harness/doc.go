// Package harness runs the parts of a yeyak system a chaos scenario (or
// an end-to-end test) needs, each on loopback and on ports of its own, and
// checks the system's invariants afterwards:
//
//   - Yeyakd: the real yeyakd binary (BuildYeyakd), started, stopped with
//     SIGTERM, killed with SIGKILL and restarted with the same flags;
//   - Postgres: a PostgreSQL instance of its own (initdb into a temporary
//     directory, pg_ctl on a free port, run as the postgres user when the
//     harness runs as root), restartable without touching the machine's
//     shared server;
//   - Kafka: a Kafka-protocol broker (kfake) in this process that keeps its
//     log on disk, so it can be stopped and started again on the same port
//     with its topics, records and committed offsets;
//   - the mock registry is mocks/registry in this process (StartServer),
//     whose faults are switched directly and whose writes are counted.
//
// ScrapeMetrics reads yeyakd's /metrics (the queue's tickets, admissions
// and line, requests by status, latency histograms); ProcessCPU, TreeCPU
// and SelfCPU account for the CPU time each process of a run used.
//
// WaitQuiet waits until the system has settled (outbox published, every
// event handled by the sync consumer, no provisional booking left), and
// Check verifies the invariants by querying the database and the registry:
// no quota oversold, one active booking per person and dose, every
// acknowledged booking and change durable, every confirmed booking in the
// registry exactly once and every cancelled one cancelled there.
package harness
