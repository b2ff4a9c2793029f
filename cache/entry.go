package cache

import (
	"time"
	"unsafe"

	"github.com/yeyak/yeyak/adapter"
)

// Source says which tier answered a lookup.
type Source string

// The tiers, from nearest to farthest.
const (
	SourceMemory   Source = "memory"
	SourceRedis    Source = "redis"
	SourceRegistry Source = "registry"
)

// Entry is the answer to a lookup: the registry's record of the person and
// how old it is.
type Entry struct {
	// Record is the registry's record. Its slices (Doses, Bookings) are
	// shared with the cache and every other caller: read, never modify.
	Record adapter.Record
	// FetchedAt is when the registry produced the record (kept across tiers:
	// a record read from Redis carries the time the first instance fetched it).
	FetchedAt time.Time
	// Stale is true when the record is older than FreshTTL (answered by
	// stale-while-revalidate or stale-if-error).
	Stale bool
	// StaleIfError is true when the record was answered stale because the
	// registry could not be asked (the last attempt to refresh it failed).
	StaleIfError bool
	// Source is the tier that answered.
	Source Source
}

// entry is what a tier holds for one person. The record and fetchedAt never
// change after the entry is stored (an update stores a new entry); the
// bookkeeping fields below are guarded by the store's lock.
type entry struct {
	rec       adapter.Record
	fetchedAt int64 // unix nanoseconds; not a time.Time, to save 16 bytes a person
	size      int32
	notFound  bool // negative entry: the registry does not know the person

	// Guarded by the store's lock.
	invalidated   bool  // the person's booking changed: fetch before answering fresh
	refreshing    bool  // a background refresh is in flight
	refreshFailed int64 // unix nanoseconds of the last failed refresh; 0 if none since fetch
}

// age is how long before now the registry produced the record.
func (e *entry) age(now time.Time) time.Duration { return time.Duration(now.UnixNano() - e.fetchedAt) }

// fetched is when the registry produced the record.
func (e *entry) fetched() time.Time { return time.Unix(0, e.fetchedAt) }

// Fixed per-entry overhead of the in-process tier, in bytes, beyond the
// strings and slices of the record: the entry struct, the LRU list element
// (two pointers, list pointer, key, value pointer, expiry fields), and the
// map slot with its share of empty slots at the map's load factor. The
// figure was checked against runtime.MemStats by TestMemoryPerPerson (see
// "Sizing" in doc.go).
const entryOverhead = int(unsafe.Sizeof(entry{})) + 80 + 48

// EntrySize estimates the memory one person's record takes in the
// in-process tier, in bytes: the fixed overhead, the key, and the record's
// strings and slices rounded to the allocator's 8-byte granularity.
func EntrySize(personID string, r *adapter.Record) int {
	n := entryOverhead + roundUp(len(personID))
	if r.PersonID != personID {
		n += roundUp(len(r.PersonID))
	}
	if len(r.Doses) > 0 {
		n += roundUp(cap(r.Doses) * int(unsafe.Sizeof(adapter.Dose{})))
		for _, d := range r.Doses {
			n += roundUp(len(d.Product))
		}
	}
	if len(r.Bookings) > 0 {
		n += roundUp(cap(r.Bookings) * int(unsafe.Sizeof(adapter.BookingRecord{})))
		for _, b := range r.Bookings {
			n += roundUp(len(b.BookingID)) + roundUp(len(b.CampaignID)) + roundUp(len(b.ClinicID)) + roundUp(len(b.Product))
			if b.PersonID != r.PersonID {
				n += roundUp(len(b.PersonID))
			}
		}
	}
	return n
}

func roundUp(n int) int {
	if n == 0 {
		return 0
	}
	return (n + 15) &^ 15 // small allocations come in 16-byte classes
}

// newEntry builds an entry for a record, sharing the key's string with the
// record so the person id is held once.
func newEntry(personID string, rec adapter.Record, fetchedAt time.Time) *entry {
	if rec.PersonID == personID {
		rec.PersonID = personID
	}
	e := &entry{rec: rec, fetchedAt: fetchedAt.UnixNano()}
	e.size = int32(EntrySize(personID, &rec))
	return e
}

// newNegative builds a negative entry.
func newNegative(personID string, fetchedAt time.Time) *entry {
	e := &entry{rec: adapter.Record{PersonID: personID}, fetchedAt: fetchedAt.UnixNano(), notFound: true}
	e.size = int32(EntrySize(personID, &e.rec))
	return e
}
