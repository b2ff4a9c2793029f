package cache

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats is a snapshot of the cache's counters since New, as GET /ops/cache
// shows them.
type Stats struct {
	HitsFresh    int64 `json:"hits_fresh"`
	HitsStale    int64 `json:"hits_stale"`
	Misses       int64 `json:"misses"`
	Collapsed    int64 `json:"collapsed"` // lookups that joined another's registry call
	StaleIfError int64 `json:"stale_if_error"`
	NegativeHits int64 `json:"negative_hits"`
	Evictions    int64 `json:"evictions"`
	Entries      int   `json:"entries"`
	Bytes        int64 `json:"bytes"` // estimated, see EntrySize
	MaxEntries   int   `json:"max_entries"`
	MaxBytes     int64 `json:"max_bytes"`

	RegistryCalls    int64 `json:"registry_calls"` // single-person reads (the warmer's bulk reads are in Warmer)
	RegistryErrors   int64 `json:"registry_errors"`
	Refreshes        int64 `json:"refreshes"`         // background refreshes run
	RefreshesDropped int64 `json:"refreshes_dropped"` // stale hits that found every refresh slot busy

	// InvalidationsDropped counts invalidations whose Redis deletion (and
	// publication to the other instances) did not happen: queue full or
	// Redis failing. This instance's memory was invalidated all the same.
	InvalidationsDropped int64 `json:"invalidations_dropped"`

	Redis  *RedisStats   `json:"redis,omitempty"`
	Warmer *WarmerStatus `json:"warmer,omitempty"`
}

// RedisStats counts the Redis tier's lookups and failures.
type RedisStats struct {
	Hits     int64 `json:"hits"`
	Misses   int64 `json:"misses"`
	Failures int64 `json:"failures"`
	Skipping bool  `json:"skipping"` // in the backoff after a failure
}

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	entries, bytes, n := c.mem.totals()
	s := Stats{
		HitsFresh: n.hitsFresh, HitsStale: n.hitsStale, Misses: n.misses,
		Collapsed: c.collapsed.Load(), StaleIfError: n.staleIfError,
		NegativeHits: n.negativeHits, Evictions: n.evictions,
		Entries: entries, Bytes: bytes, MaxEntries: c.cfg.MaxEntries, MaxBytes: c.cfg.MaxBytes,
		RegistryCalls: c.registryCalls.Load(), RegistryErrors: c.registryErrors.Load(),
		Refreshes: c.refreshes.Load(), RefreshesDropped: c.refreshDropped.Load(),
		InvalidationsDropped: c.invalDropped.Load(),
	}
	if c.rds != nil {
		s.Redis = &RedisStats{Hits: c.rds.hits.Load(), Misses: c.rds.misses.Load(),
			Failures: c.rds.failures.Load(), Skipping: !c.rds.available()}
	}
	if w := c.warmer.Load(); w != nil {
		st := w.Status()
		s.Warmer = &st
	}
	return s
}

// metrics exports Stats to prometheus: one collector reads every counter in
// one pass at scrape time, so the lookup path pays nothing
// for it.
type metrics struct {
	c             *Cache
	invalidations prometheus.Counter
	descs         map[string]*prometheus.Desc
}

func newMetrics(c *Cache, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		c: c,
		invalidations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "yeyak_cache_invalidations_total", Help: "Entries invalidated (booking changes, ops).",
		}),
		descs: map[string]*prometheus.Desc{},
	}
	d := func(name, help string, labels ...string) {
		m.descs[name] = prometheus.NewDesc("yeyak_cache_"+name, help, labels, nil)
	}
	d("hits_total", "Lookups answered from memory, by kind (fresh, stale).", "kind")
	d("misses_total", "Lookups not answerable from memory.")
	d("collapsed_total", "Lookups that joined another lookup's registry call.")
	d("stale_if_error_total", "Answers from a stale entry because the registry could not answer.")
	d("negative_hits_total", "Lookups answered by a remembered not-found.")
	d("evictions_total", "Entries evicted to stay within MaxEntries/MaxBytes.")
	d("entries", "Entries held in memory.")
	d("bytes", "Estimated bytes held in memory.")
	d("registry_calls_total", "Single-person registry reads made by the cache.")
	d("registry_errors_total", "Single-person registry reads that failed (not counting not-found).")
	d("refreshes_total", "Background refreshes run.")
	d("refreshes_dropped_total", "Background refreshes skipped because every slot was busy.")
	d("redis_failures_total", "Redis tier commands that failed or timed out.")
	d("invalidations_dropped_total", "Invalidations not propagated to Redis and the other instances (queue full, Redis failing).")
	d("warmer_people_total", "People looked up by the warmer.")
	d("warmer_loaded_total", "Records the warmer loaded.")
	d("warmer_chunks_total", "Chunks the warmer completed.")
	d("warmer_errors_total", "Warmer chunk attempts that failed.")
	d("warmer_running", "1 while the warmer runs.")
	d("warmer_progress_ratio", "Share of the digit group warmed, when the roster can count it.")
	if err := reg.Register(m); err != nil {
		return nil, fmt.Errorf("cache: register metrics: %w", err)
	}
	if err := reg.Register(m.invalidations); err != nil {
		reg.Unregister(m)
		return nil, fmt.Errorf("cache: register metrics: %w", err)
	}
	return m, nil
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range m.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	s := m.c.Stats()
	counter := func(name string, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(m.descs[name], prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(name string, v float64) {
		ch <- prometheus.MustNewConstMetric(m.descs[name], prometheus.GaugeValue, v)
	}
	counter("hits_total", s.HitsFresh, "fresh")
	counter("hits_total", s.HitsStale, "stale")
	counter("misses_total", s.Misses)
	counter("collapsed_total", s.Collapsed)
	counter("stale_if_error_total", s.StaleIfError)
	counter("negative_hits_total", s.NegativeHits)
	counter("evictions_total", s.Evictions)
	gauge("entries", float64(s.Entries))
	gauge("bytes", float64(s.Bytes))
	counter("registry_calls_total", s.RegistryCalls)
	counter("registry_errors_total", s.RegistryErrors)
	counter("refreshes_total", s.Refreshes)
	counter("refreshes_dropped_total", s.RefreshesDropped)
	var rf int64
	if s.Redis != nil {
		rf = s.Redis.Failures
	}
	counter("redis_failures_total", rf)
	counter("invalidations_dropped_total", s.InvalidationsDropped)
	var tot, w WarmerStatus
	if s.Warmer != nil {
		w = *s.Warmer
		tot = m.c.warmer.Load().totals()
	}
	counter("warmer_people_total", tot.People)
	counter("warmer_loaded_total", tot.Loaded)
	counter("warmer_chunks_total", tot.Chunks)
	counter("warmer_errors_total", tot.Errors)
	running := 0.0
	if w.State == WarmerRunning {
		running = 1
	}
	gauge("warmer_running", running)
	gauge("warmer_progress_ratio", w.Progress)
}
