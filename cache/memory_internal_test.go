package cache

import (
	"runtime"
	"testing"
	"time"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/mocks/population"
)

// syntheticRecords returns n registry records shaped like the cohort's
// (mocks/population: about 5% with doses given), each with strings of its
// own as a registry response decodes them.
func syntheticRecords(n int) []adapter.Record {
	cfg := population.Config{Seed: 11, People: n, UnknownShare: -1}
	recs := make([]adapter.Record, 0, n)
	for p := range population.People(cfg) {
		r := adapter.Record{PersonID: string([]byte(p.ID)), BirthDate: p.BirthDate.In(time.UTC),
			Contraindicated: p.Contraindicated, Excluded: p.Excluded}
		for _, d := range p.Doses {
			r.Doses = append(r.Doses, adapter.Dose{Product: string([]byte(d.Product)), Number: d.Number, Date: d.Date.In(time.UTC)})
		}
		recs = append(recs, r)
	}
	return recs
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// measurePerPerson fills a store with n records and returns the measured
// heap growth per person and the cache's own estimate per person.
func measurePerPerson(n int) (measured, estimated float64) {
	before := heapInUse()
	s := newStore(DefaultMaxEntries, DefaultMaxBytes)
	now := time.Now()
	for _, r := range syntheticRecords(n) {
		e := newEntry(r.PersonID, r, now)
		sh := s.shard(r.PersonID)
		sh.mu.Lock()
		sh.put(r.PersonID, e)
		sh.mu.Unlock()
	}
	after := heapInUse() // the generator's garbage is collected by now
	entries, bytes, _ := s.totals()
	runtime.KeepAlive(s)
	return float64(after-before) / float64(entries), float64(bytes) / float64(entries)
}

// TestMemoryPerPerson measures the memory one cached person takes and checks
// that EntrySize (which MaxBytes is enforced with) stays within 25% of it.
// The figure is reported in doc.go ("Sizing").
func TestMemoryPerPerson(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("fills 200,000 entries; race instrumentation distorts the heap figures")
	}
	const n = 200_000
	measured, estimated := measurePerPerson(n)
	t.Logf("memory per cached person: measured %.0f B, EntrySize estimate %.0f B; 2,000,000 people ≈ %.0f MiB",
		measured, estimated, measured*2_000_000/(1<<20))
	if estimated < measured*0.75 || estimated > measured*1.25 {
		t.Fatalf("EntrySize estimate %.0f B is more than 25%% off the measured %.0f B", estimated, measured)
	}
}
