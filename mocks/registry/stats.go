package registry

import "sync/atomic"

// Stats are the registry's counters since it started or was Reset. Calls
// refused by a fault count only under the fault.
type Stats struct {
	// Reads are single eligibility reads processed.
	Reads int64 `json:"reads"`
	// BulkReads are bulk reads processed; BulkIDs the ids they asked for.
	BulkReads int64 `json:"bulkReads"`
	BulkIDs   int64 `json:"bulkIds"`
	// Records are record-booking writes processed (applied, duplicate or
	// rejected); Duplicates those whose id already existed; Rejected the
	// business refusals.
	Records    int64 `json:"records"`
	Duplicates int64 `json:"duplicates"`
	Rejected   int64 `json:"rejected"`
	// Cancels are cancel writes processed.
	Cancels int64 `json:"cancels"`
	Pings   int64 `json:"pings"`
	// Injected are errors injected (ErrorRate and ErrorAfterRate).
	Injected int64 `json:"injected"`
	// Throttled (429), Shed (503), Refused (outage) and Stalled count
	// calls met by those faults; Overloaded the calls slowed by Capacity.
	Throttled  int64 `json:"throttled"`
	Shed       int64 `json:"shed"`
	Refused    int64 `json:"refused"`
	Stalled    int64 `json:"stalled"`
	Overloaded int64 `json:"overloaded"`
	// InFlight is the calls in progress now; MaxInFlight the most at once.
	InFlight    int64 `json:"inFlight"`
	MaxInFlight int64 `json:"maxInFlight"`
}

type counters struct {
	reads, bulkReads, bulkIDs, records, duplicates, rejected, cancels, pings atomic.Int64
	injected, throttled, shed, refused, stalled, overloaded, maxInFlight     atomic.Int64
}

func (c *counters) observeInFlight(n int64) {
	for {
		m := c.maxInFlight.Load()
		if n <= m || c.maxInFlight.CompareAndSwap(m, n) {
			return
		}
	}
}

func (c *counters) reset() {
	for _, v := range []*atomic.Int64{&c.reads, &c.bulkReads, &c.bulkIDs, &c.records, &c.duplicates, &c.rejected,
		&c.cancels, &c.pings, &c.injected, &c.throttled, &c.shed, &c.refused, &c.stalled, &c.overloaded, &c.maxInFlight} {
		v.Store(0)
	}
}

// Stats returns a snapshot of the counters.
func (r *Registry) Stats() Stats {
	c := &r.stats
	return Stats{
		Reads: c.reads.Load(), BulkReads: c.bulkReads.Load(), BulkIDs: c.bulkIDs.Load(),
		Records: c.records.Load(), Duplicates: c.duplicates.Load(), Rejected: c.rejected.Load(),
		Cancels: c.cancels.Load(), Pings: c.pings.Load(), Injected: c.injected.Load(),
		Throttled: c.throttled.Load(), Shed: c.shed.Load(), Refused: c.refused.Load(),
		Stalled: c.stalled.Load(), Overloaded: c.overloaded.Load(),
		InFlight: r.inFlight.Load(), MaxInFlight: c.maxInFlight.Load(),
	}
}
