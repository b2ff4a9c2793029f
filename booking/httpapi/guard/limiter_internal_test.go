package guard

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// TestLimiterMemoryBounded: 100 000 distinct persons and addresses leave
// at most MaxKeys buckets per table, and the heap stays small.
func TestLimiterMemoryBounded(t *testing.T) {
	const maxKeys = 1000
	g, err := New(Config{MaxKeys: maxKeys, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range 100_000 {
		g.AllowPerson("P" + strconv.Itoa(i))
		g.AllowAddr(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	if n := g.person.len(); n > maxKeys {
		t.Fatalf("%d person buckets held, want ≤ %d", n, maxKeys)
	}
	if n := g.addr.len(); n > maxKeys {
		t.Fatalf("%d address buckets held, want ≤ %d", n, maxKeys)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// 2 000 buckets are well under 1 MB; 200 000 would be tens of MB.
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 8<<20 {
		t.Fatalf("heap grew by %d bytes for bounded tables", grown)
	}
	runtime.KeepAlive(g)
}

// TestLimiterEvictsLeastRecent: a key in use survives a flood of new keys
// in its shard better than idle ones (LRU), and a table never exceeds its
// bound whatever the shard count.
func TestLimiterEvictsLeastRecent(t *testing.T) {
	for _, maxKeys := range []int{1, 7, 1024, 5000} {
		tab := newLimiterTable[string](1, 1, maxKeys)
		now := time.Unix(0, 0)
		for i := range 3 * maxKeys {
			tab.allow(fmt.Sprint(i), now)
		}
		if n := tab.len(); n > maxKeys || n < maxKeys/2 {
			t.Fatalf("maxKeys %d: %d held", maxKeys, n)
		}
	}
	tab := newLimiterTable[string](1, 1, 100) // one shard: exact LRU
	now := time.Unix(0, 0)
	tab.allow("hot", now) // takes its only token
	for i := range 1000 {
		tab.allow(fmt.Sprint(i), now)
		tab.allow("hot", now) // refused, but touched: stays
	}
	if ok, _ := tab.allow("hot", now); ok {
		t.Fatal("the busy key was evicted and came back with a full bucket")
	}
}

func TestInflightTableHoldsOnlyBusyKeys(t *testing.T) {
	tab := newInflightTable[netip.Addr](2)
	for i := range 10_000 {
		a := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		if !tab.acquire(a) {
			t.Fatal("acquire refused under the cap")
		}
		tab.release(a)
	}
	if n := tab.len(); n != 0 {
		t.Fatalf("%d idle keys held", n)
	}
}
