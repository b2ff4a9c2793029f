// Package cache is the eligibility read cache: the one registry read on the
// booking path (adapter.Registry.Eligibility) served from memory, so that
// it almost never reaches the registry and its absence is harmless.
//
//	c, err := cache.New(facade, cache.Config{RedisAddr: "127.0.0.1:6379"})
//	if err != nil { … }
//	defer c.Close()
//	svc := booking.NewService(booking.ServiceConfig{Store: store, People: c})
//
//	e, err := c.Get(ctx, personID) // Entry{Record, FetchedAt, Stale, StaleIfError, Source}
//	switch {
//	case errors.Is(err, adapter.ErrNotFound):    // unknown person (remembered for NegativeTTL)
//	case errors.Is(err, adapter.ErrUnavailable): // registry down and nothing usable cached
//	}
//
// *Cache implements booking.PersonSource (Person maps the errors to
// EUNKNOWNPERSON and EREGISTRYDOWN; the booking service applies the
// campaign's registry policy to the latter).
//
// # Lookup
//
// A lookup is answered, in order, by:
//
//   - memory, when the record is younger than FreshTTL (a fresh hit);
//   - memory, when it is younger than StaleTTL: answered at once marked
//     Stale, and refreshed in the background (stale-while-revalidate; at
//     most MaxRefreshes refreshes in flight, one per person, on goroutines
//     the cache owns and Close stops). When that refresh finds the registry
//     unavailable the record keeps answering, marked StaleIfError
//     (booking.Person.Stale), and the next refresh waits RefreshBackoff;
//   - a remembered "not found", younger than NegativeTTL;
//   - otherwise one shared fetch per person (golang.org/x/sync/singleflight):
//     Redis if configured, then the registry. Every concurrent lookup of
//     the person waits for that one call, each only until its own context
//     ends. The call itself is bounded by RefreshTimeout and detached from
//     any one caller. If the registry cannot answer and an older record is
//     held (e.g. one invalidated after a booking change), it answers marked
//     StaleIfError — a "not found" past NegativeTTL included, until
//     StaleTTL; else the error wraps adapter.ErrUnavailable.
//
// The warmer stores the people of a digit group that the registry's bulk
// answer leaves out as "not found" (memory only), so unknown ids arriving
// at an opening are answered without the registry.
//
// # Invalidation
//
// Invalidate(ctx, personID) is called when a person's registry view
// changes: by booking.Service after a booking of theirs commits, by the
// registry sync consumer (adapter/registrysync, Config.Invalidate) once the
// registry has applied the booking or cancellation — the moment the
// registry's answer really changes — and by ops (POST
// /ops/cache/invalidate/{id}). In memory the next lookup asks the registry
// (not Redis) and the old record stays only as the stale-if-error
// fallback; a read in flight at that moment (a miss, a refresh, a warmer
// chunk) cannot store its possibly older answer as current. The Redis copy
// is deleted and the id published to the other instances by a background
// worker in batches, so Invalidate costs one shard lock and no I/O
// (BenchmarkInvalidate: about 0.5 µs), is safe from any goroutine, never
// blocks and never fails; a deletion the queue cannot hold or Redis refuses
// is dropped and counted (invalidations_dropped_total). Refresh asks the
// registry now.
//
// # Tiers
//
// The in-process tier is one LRU (hashicorp/golang-lru/v2 simplelru) under
// one mutex — not sharded: see "Read throughput" for the measurement that
// decided it — bounded by MaxEntries and by MaxBytes, the latter enforced
// with EntrySize, an estimate of each entry's real footprint (checked
// against the heap by TestMemoryPerPerson to within 25%).
//
// The optional Redis tier (Config.Redis or RedisAddr) is shared by a fleet
// of yeyakd instances: a record any instance fetched is read by the others
// instead of the registry. Values are JSON with the fetch time, so every
// instance applies the same FreshTTL/StaleTTL; the key TTL ends StaleTTL
// (NegativeTTL for "not found") after the fetch. Every command has a
// RedisTimeout deadline; a failure makes the cache skip Redis for
// RedisBackoff and is logged at most once per RedisLogInterval. A Redis
// outage is never an error to the caller. Invalidate deletes the Redis copy
// and publishes the person id (tagged with the publishing instance, which
// ignores its own echo) on KeyPrefix+"invalidate"; every cache on the same
// Redis subscribes and marks its in-process copy (an invalidation published
// while an instance is cut off from Redis is lost to it: its copy goes
// stale at FreshTTL).
//
// # Pre-warming
//
// A Warmer (NewWarmer) loads a birth-digit group — the people whose rotation
// day comes next — with Registry.EligibilityBulk in chunks (ChunkSize, 500)
// at ChunksPerSecond (golang.org/x/time/rate), remembering the last id done
// so Pause and Start resume; one log line per chunk, metrics and
// WarmerStatus. NextWarmDigit tells which digit's window opens next;
// WarmBefore and RunSchedule start the warmer for it within a lead time
// before it opens.
//
// With WarmerConfig.StateFile the position (digit, state, counters, last id
// done, the window it was started for) is written after every chunk, so a
// restarted process resumes: a run that was going (or was stopped by
// Cache.Close) comes back paused and Resume continues it — RunSchedule and
// WarmBefore do so by themselves — while a run paused by ops stays paused.
// Without StateFile a restart starts the group over (harmless, only slower).
//
// A Roster lists a group's ids. In production it is the registry's own
// population: through the Oracle schema, adapter/oracle's Registry.Roster
// (PERSON_MST filtered by the cohort's birth range and the digit); through
// the gateway, which cannot list people, a file of "person_id,birth_date"
// lines exported from the registry (OpenRosterFile). SliceRoster is the
// in-memory one both of those and the demo use.
//
//	roster := oracleRegistry.Roster(oracle.RosterConfig{BornFrom: campaign.BornFrom, BornTo: campaign.BornTo})
//	// or: roster, err := cache.OpenRosterFile("/var/lib/yeyak/roster.csv")
//	w, _ := cache.NewWarmer(c, cache.WarmerConfig{Roster: roster, StateFile: "/var/lib/yeyak/warmer.json"})
//	go w.RunSchedule(ctx, func() *booking.Campaign { return campaign }, 6*time.Hour, time.Minute)
//
// # Ops and metrics
//
// OpsHandler serves GET /ops/cache (Stats), GET /ops/warmer, and, with the
// ops bearer token, POST /ops/cache/invalidate/{personID}, POST
// /ops/warmer/start?digit=D and POST /ops/warmer/pause. Metrics
// (Config.Registerer) are named yeyak_cache_*: hits_total{kind=fresh|stale},
// misses_total, collapsed_total, stale_if_error_total, negative_hits_total,
// evictions_total, entries, bytes, registry_calls_total, refreshes_total,
// redis_failures_total, invalidations_total, invalidations_dropped_total,
// warmer_* (people, loaded, chunks, errors, running, progress_ratio).
// Person ids are never logged. docs/runbook.md says what each means and
// what to do about it.
//
// # Sizing
//
// Memory for a cohort of 2,000,000 people, measured (not extrapolated):
// 542 MiB of heap, 284 bytes a person; the test process peaked at 728 MiB
// RSS (VmHWM) with the default GOGC. TestMemoryTwoMillion puts 2,000,000
// records shaped like the synthetic cohort (about 5% with doses) in the
// store and divides the heap growth after two GCs (runtime.MemStats) by the
// entries; it needs about 1.5 GiB and a minute, so it is opt-in:
//
//	YEYAK_MEMORY_2M=1 go test -run TestMemoryTwoMillion -v ./cache/
//
// At 200,000 people (TestMemoryPerPerson, run by every go test) the figure
// is 264 B: the map's buckets cost more per entry at the larger size. Plan
// about 1 GiB of RSS for a 2,000,000-person cache (GOGC=100 lets the heap
// grow to twice the live set between collections), or set GOMEMLIMIT.
// EntrySize estimates 269 B for the same records (within 6% of the
// measurement), so MaxBytes (default 1 GiB) holds about four million such
// people and the default MaxEntries (2,500,000) binds first. Where the
// bytes go: the entry with its record (128 B), the LRU list element (80 B),
// the map slot at its load factor (~40-60 B), the person id (16 B, shared
// by key and record).
//
// # Read throughput, and why the store is not sharded
//
// The store used to be split into up to 64 independently locked shards, to
// keep parallel hits from serialising on one lock. Measured on the 2-core
// development machine, the whole hit path (Cache.Get of a fresh entry,
// 100,000 keys in a fixed random order, 2 goroutines) with everything else
// equal, six interleaved runs each (load average 3-6 from other builds):
//
//	git checkout 01a1888 && go test -c -o /tmp/cache.test ./cache/
//	for i in 1 2 3 4 5 6; do /tmp/cache.test -test.run '^$' \
//	  -test.bench 'HitShards/shards=(1|64)$' -test.benchtime 1000000x -test.cpu 2; done
//
//	shards=1    603  754  790  845  847 1202 ns/op   (median ≈ 820)
//	shards=64   869  890  953  959 1108 1128 ns/op   (median ≈ 955)
//
// One lock was faster in five of the six pairs: on two cores the lock is
// rarely contended, and spreading the entries over 64 LRUs costs more cache
// misses than the contention it avoids. So the store is one LRU under one
// mutex (which also keeps the LRU order exact). Its critical section is a
// map lookup and a list move; even fully serialised it allows millions of
// lookups a second, far more than the HTTP layer in front of it asks for.
//
// The hit path beside the bare maps, in the same run, parallel on the same
// machine (load average 4-8 from other builds, so every figure is 2-5x
// slower than on a quiet machine: compare within the run; ns/op of a
// parallel benchmark is wall time per lookup over both cores):
//
//	go test -run '^$' -bench Parallel -benchmem -count 3 ./cache/
//
//	BenchmarkCacheHitParallel-2        1060 1512 2372 ns/op   0 allocs
//	BenchmarkSyncMapParallel-2         1102 1184 1260 ns/op   0 allocs (no TTL, bound, LRU or counters)
//	BenchmarkLRUSingleLockParallel-2    826 1032 2303 ns/op   0 allocs (golang-lru/v2 lru.Cache, one lock)
//
// The cache does more per hit than the bare maps — it reads the clock,
// checks the entry's age and invalidation, counts the hit and copies the
// record into the Entry. Here it took 1-2x sync.Map's time; an earlier run
// with the old 64 shards (also under load) took 410-660 ns against
// sync.Map's 115-520, 1.3-3.6x.
//
// The stampede test's figure: 10,000 concurrent lookups of one cold person
// make exactly 1 registry call (TestStampedeMakesOneRegistryCall, and
// TestMockRegistryStampede counted on mocks/registry's Stats().Reads).
package cache
