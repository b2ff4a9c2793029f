package admission

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/yeyak/yeyak/mocks/testenv"
)

func pk(i int) PersonKey {
	var k PersonKey
	binary.BigEndian.PutUint64(k[:], uint64(i)+1)
	k[15] = 0xAB
	return k
}

// reverse is a deterministic "shuffle" that reverses, so tests can predict
// a draw's order.
func reverse(n int, swap func(i, j int)) {
	for i := 0; i < n/2; i++ {
		swap(i, n-1-i)
	}
}

// storeContract runs the Store contract against one implementation.
func storeContract(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	step := func(t *testing.T, s Store, now time.Time, rate float64) (int64, Stats) {
		t.Helper()
		n, st, err := s.Advance(ctx, Step{Now: now, Rate: rate, Burst: 1000, ForgetBefore: now.Add(-time.Hour)})
		if err != nil {
			t.Fatalf("Advance: %v", err)
		}
		return n, st
	}
	join := func(t *testing.T, s Store, i int, draw time.Time) Place {
		t.Helper()
		p, _, err := s.Join(ctx, pk(i), draw)
		if err != nil {
			t.Fatalf("Join: %v", err)
		}
		return p
	}
	place := func(t *testing.T, s Store, i int) Place {
		t.Helper()
		p, err := s.Place(ctx, pk(i))
		if err != nil {
			t.Fatalf("Place: %v", err)
		}
		return p
	}

	t.Run("FIFO and duplicates", func(t *testing.T) {
		s := newStore(t)
		for i := range 5 {
			p, created, err := s.Join(ctx, pk(i), time.Time{})
			if err != nil || !created || p.State != StateWaiting || p.Ahead != int64(i) || p.Seq != uint64(i+1) {
				t.Fatalf("join %d: %+v created=%v err=%v", i, p, created, err)
			}
		}
		p, created, err := s.Join(ctx, pk(2), time.Time{})
		if err != nil || created || p.Ahead != 2 || p.Seq != 3 {
			t.Fatalf("duplicate join: %+v created=%v err=%v, want the same place", p, created, err)
		}
		if p := place(t, s, 99); p.State != StateUnknown {
			t.Fatalf("unknown person: %+v", p)
		}
		step(t, s, t0, 1)
		n, st := step(t, s, t0.Add(2*time.Second), 1) // 2 s at 1/s
		if n != 2 || st.Waiting != 3 || st.Admitted != 2 {
			t.Fatalf("advance: n=%d stats=%+v, want 2 admitted, 3 waiting", n, st)
		}
		for i, want := range []State{StateAdmitted, StateAdmitted, StateWaiting, StateWaiting, StateWaiting} {
			if p := place(t, s, i); p.State != want || (want == StateWaiting && p.Ahead != int64(i-2)) {
				t.Fatalf("person %d: %+v, want %v", i, p, want)
			}
		}
		// Fractional credit carries over: 0.5 s + 0.5 s admits one.
		step(t, s, t0.Add(2500*time.Millisecond), 1)
		n, _ = step(t, s, t0.Add(3*time.Second), 1)
		if n != 1 {
			t.Fatalf("carried credit admitted %d, want 1", n)
		}
		// While people wait, credit accrues in full: an hour admits the rest.
		n, st, _ = s.Advance(ctx, Step{Now: t0.Add(time.Hour), Rate: 1, Burst: 1, ForgetBefore: t0})
		if n != 2 || st.Waiting != 0 {
			t.Fatalf("advance after an hour: n=%d %+v", n, st)
		}
		// While nobody waits, credit is capped by Burst.
		for i := 10; i < 13; i++ {
			join(t, s, i, time.Time{})
		}
		n, st, _ = s.Advance(ctx, Step{Now: t0.Add(2 * time.Hour), Rate: 1, Burst: 1, ForgetBefore: t0})
		if n != 1 || st.Waiting != 2 {
			t.Fatalf("burst-capped advance after idling: n=%d %+v", n, st)
		}
		// A clock going backwards admits nothing.
		if n, _ := step(t, s, t0, 1000); n != 0 {
			t.Fatalf("backwards clock admitted %d", n)
		}
	})

	t.Run("draw", func(t *testing.T) {
		s := newStore(t)
		open := t0.Add(30 * time.Minute)
		join(t, s, 0, time.Time{}) // before the pre-opening window: FIFO
		for i := 1; i <= 4; i++ {
			if p := join(t, s, i, open); p.State != StatePending || p.Ahead != 1 || p.Pending != int64(i) {
				t.Fatalf("pending join %d: %+v", i, p)
			}
		}
		if p := join(t, s, 3, open); p.State != StatePending || p.Seq != 4 {
			t.Fatalf("duplicate pending join: %+v", p)
		}
		// Before the draw only person 0 can be admitted.
		step(t, s, t0, 100)
		if n, st, _ := s.Advance(ctx, Step{Now: t0.Add(time.Minute), Rate: 100, Burst: 0}); n != 1 || st.Pending != 4 || st.Waiting != 0 {
			t.Fatalf("before the draw: n=%d %+v", n, st)
		}
		if err := s.Draw(ctx, open, reverse); err != nil {
			t.Fatal(err)
		}
		if err := s.Draw(ctx, open, reverse); err != nil { // idempotent
			t.Fatal(err)
		}
		join(t, s, 5, open)        // late pending join for a drawn opening: ranked at the back
		join(t, s, 6, time.Time{}) // after the opening
		// reverse of [1 2 3 4] is [4 3 2 1]
		for i, ahead := range map[int]int64{4: 0, 3: 1, 2: 2, 1: 3, 5: 4, 6: 5} {
			if p := place(t, s, i); p.State != StateWaiting || p.Ahead != ahead {
				t.Fatalf("after draw person %d: %+v, want %d ahead", i, p, ahead)
			}
		}
		if n, st, _ := s.Advance(ctx, Step{Now: t0.Add(time.Minute + 20*time.Millisecond), Rate: 100, Burst: 2}); n != 2 || st.Waiting != 4 || st.Pending != 0 {
			t.Fatalf("after the draw: n=%d %+v", n, st)
		}
		if p := place(t, s, 3); p.State != StateAdmitted {
			t.Fatalf("person 3 drawn second: %+v", p)
		}
	})

	t.Run("forget", func(t *testing.T) {
		s := newStore(t)
		for i := range 3 {
			join(t, s, i, time.Time{})
		}
		s.Advance(ctx, Step{Now: t0, Rate: 1, Burst: 10})
		s.Advance(ctx, Step{Now: t0.Add(2 * time.Second), Rate: 1, Burst: 10, ForgetBefore: t0})
		if p := place(t, s, 0); p.State != StateAdmitted {
			t.Fatalf("admitted person: %+v", p)
		}
		// Ten minutes later, places admitted more than 5 minutes ago go.
		now := t0.Add(10 * time.Minute)
		_, st, err := s.Advance(ctx, Step{Now: now, Rate: 0, Burst: 10, ForgetBefore: now.Add(-5 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if st.Admitted != 2 || st.Waiting != 1 {
			t.Fatalf("stats after forgetting: %+v", st)
		}
		for i, want := range []State{StateUnknown, StateUnknown, StateWaiting} {
			if p := place(t, s, i); p.State != want || (want == StateWaiting && p.Ahead != 0) {
				t.Fatalf("person %d after forgetting: %+v, want %v", i, p, want)
			}
		}
		// Forgotten people join again at the back.
		if p := join(t, s, 0, time.Time{}); p.State != StateWaiting || p.Ahead != 1 || p.Seq != 4 {
			t.Fatalf("rejoin after forgetting: %+v", p)
		}
	})
}

func TestMemoryStore(t *testing.T) {
	storeContract(t, func(*testing.T) Store { return NewMemoryStore() })
}

// redisStoreFor returns a Redis store under a unique prefix on the test
// Redis, deleting its keys at the end.
func redisStoreFor(t *testing.T) Store {
	addr, prefix := testenv.RedisAddr(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		rdb.Close()
	})
	return NewRedisStore(rdb, prefix)
}

func TestRedisStore(t *testing.T) {
	storeContract(t, redisStoreFor)
}

func TestRedisStoreRecoversAbandonedDraw(t *testing.T) {
	s := redisStoreFor(t).(*redisStore)
	ctx := context.Background()
	open := t0.Add(time.Minute)
	for i := range 3 {
		if _, _, err := s.Join(ctx, pk(i), open); err != nil {
			t.Fatal(err)
		}
	}
	// An instance closes the draw and dies before moving anyone.
	if seq, err := drawStartScript.Run(ctx, s.rdb, []string{s.keys.state, s.keys.drawing}, open.UnixMilli(), "dead", 60000).Int64(); err != nil || seq != 3 {
		t.Fatalf("draw start: %d %v", seq, err)
	}
	s.rdb.Del(ctx, s.keys.drawing) // its lock expired
	if _, _, err := s.Advance(ctx, Step{Now: open, Rate: 1, Burst: 1}); err != nil {
		t.Fatal(err)
	}
	_, st, err := s.Advance(ctx, Step{Now: open.Add(time.Second), Rate: 1, Burst: 1})
	if err != nil || st.Pending != 0 || st.Waiting+st.Admitted != 3 {
		t.Fatalf("after recovery: %+v %v", st, err)
	}
}
