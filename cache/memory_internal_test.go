package cache

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/mocks/population"
)

// syntheticRecords yields n registry records shaped like the cohort's
// (mocks/population: about 5% with doses given), each with strings of its
// own as a registry response decodes them.
func syntheticRecords(n int) func(yield func(adapter.Record) bool) {
	cfg := population.Config{Seed: 11, People: n, UnknownShare: -1}
	return func(yield func(adapter.Record) bool) {
		for p := range population.People(cfg) {
			r := adapter.Record{PersonID: string([]byte(p.ID)), BirthDate: p.BirthDate.In(time.UTC),
				Contraindicated: p.Contraindicated, Excluded: p.Excluded}
			for _, d := range p.Doses {
				r.Doses = append(r.Doses, adapter.Dose{Product: string([]byte(d.Product)), Number: d.Number, Date: d.Date.In(time.UTC)})
			}
			if !yield(r) {
				return
			}
		}
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// measurePerPerson fills a store sized for n with n records (generated one
// at a time, so only the store stays on the heap) and returns the measured
// heap growth per person and the cache's own estimate per person.
func measurePerPerson(n int) (measured, estimated float64) {
	before := heapInUse()
	s := newStore(max(DefaultMaxEntries, n+1), max(DefaultMaxBytes, int64(n)*1024))
	now := time.Now()
	for r := range syntheticRecords(n) {
		e := newEntry(r.PersonID, r, now)
		s.mu.Lock()
		s.put(r.PersonID, e)
		s.mu.Unlock()
	}
	after := heapInUse() // the generator's garbage is collected by now
	entries, bytes, _ := s.totals()
	if entries != n {
		panic(fmt.Sprintf("store holds %d entries, want %d (evicted)", entries, n))
	}
	runtime.KeepAlive(s)
	return float64(after-before) / float64(entries), float64(bytes) / float64(entries)
}

// TestMemoryPerPerson measures the memory one cached person takes and checks
// that EntrySize (which MaxBytes is enforced with) stays within 25% of it,
// on 200,000 entries.
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

// TestMemoryTwoMillion is the sizing figure in doc.go measured, not
// extrapolated: a cohort of 2,000,000 people in the cache. It needs about
// 1.5 GiB and half a minute, so it runs only when YEYAK_MEMORY_2M=1:
//
//	YEYAK_MEMORY_2M=1 go test -run TestMemoryTwoMillion -v ./cache/
func TestMemoryTwoMillion(t *testing.T) {
	if os.Getenv("YEYAK_MEMORY_2M") != "1" {
		t.Skip("set YEYAK_MEMORY_2M=1 to measure 2,000,000 cached people")
	}
	if raceEnabled {
		t.Skip("race instrumentation distorts the heap figures")
	}
	const n = 2_000_000
	measured, estimated := measurePerPerson(n)
	t.Logf("2,000,000 cached people: %.0f MiB of heap, %.0f B per person measured, EntrySize estimate %.0f B",
		measured*n/(1<<20), measured, estimated)
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "VmRSS:") || strings.HasPrefix(line, "VmHWM:") {
				t.Logf("process %s (RSS now / peak, GOGC=%s)", strings.Join(strings.Fields(line), " "), os.Getenv("GOGC"))
			}
		}
	}
	if estimated < measured*0.75 || estimated > measured*1.25 {
		t.Fatalf("EntrySize estimate %.0f B is more than 25%% off the measured %.0f B", estimated, measured)
	}
}
