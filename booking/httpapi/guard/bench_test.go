package guard_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking/httpapi/auth"
	"github.com/yeyak/yeyak/booking/httpapi/guard"
)

// BenchmarkAllowPerson: one per-person limit check, many persons, parallel.
func BenchmarkAllowPerson(b *testing.B) {
	g := newGuard(b, guard.Config{PersonRate: 1e9, PersonBurst: 1 << 30})
	ids := make([]string, 10_000)
	for i := range ids {
		ids[i] = "P" + strconv.Itoa(i)
	}
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(n.Add(1)) * 7919
		for pb.Next() {
			g.AllowPerson(ids[i%len(ids)])
			i++
		}
	})
}

// BenchmarkGuardChain: Edge (address resolution behind a trusted proxy,
// concurrency cap, address limit), the person limit and the session rule
// on the memory store, around an empty handler; parallel.
func BenchmarkGuardChain(b *testing.B) {
	g := newGuard(b, guard.Config{TrustedProxies: []string{"10.0.0.0/8"}, PersonRate: 1e9, PersonBurst: 1 << 30, AddrRate: 1e9, AddrBurst: 1 << 30})
	sessions, err := guard.NewSessions(guard.SessionConfig{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	h := g.Edge(g.PersonLimit(identityOf)(sessions.Middleware(identityOf)(okHandler)))
	const people = 10_000
	reqs := make([]*http.Request, people)
	for i := range reqs {
		reqs[i] = asPerson(request("10.0.0.2:1", "203.0.113."+strconv.Itoa(i%250)),
			auth.Identity{PersonID: "P" + strconv.Itoa(i), Session: "s" + strconv.Itoa(i), Expires: time.Now().Add(time.Hour)})
	}
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(n.Add(1)) * 7919
		w := httptest.NewRecorder()
		for pb.Next() {
			h.ServeHTTP(w, reqs[i%people])
			i++
		}
	})
}
