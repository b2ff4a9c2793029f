package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/mocks/testenv"
)

// rollFixture is campaign2021 with c1 holding 110 pfizer doses on day1
// (10 a wave), wave 1 three booked, wave 2 full, and a settable clock.
type rollFixture struct {
	db     *DB
	c      *booking.Campaign
	roller *booking.Roller
	mu     sync.Mutex
	now    time.Time
	wave1  []*booking.Booking
	wave2  []*booking.Booking
}

func (f *rollFixture) clock() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
func (f *rollFixture) set(t time.Time)  { f.mu.Lock(); defer f.mu.Unlock(); f.now = t }

func newRollFixture(tb testing.TB, db *DB) *rollFixture {
	tb.Helper()
	f := &rollFixture{db: db, c: seedCampaign(tb, db)}
	mustSetQuotas(tb, db, booking.SplitSupply(f.c, booking.Supply{ClinicID: "c1", Date: day1, Product: "pfizer", Dose: 1, Doses: 110})...)
	var bs []*booking.Booking
	for i := range 3 {
		bs = append(bs, newBooking(fmt.Sprintf("w1-%d", i), "c1", day1, 1, 1))
	}
	for i := range 10 {
		f.wave2 = append(f.wave2, newBooking(fmt.Sprintf("w2-%d", i), "c1", day1, 1, 2))
	}
	f.wave1 = bs
	book(tb, db, append(bs, f.wave2...)...)
	r, err := booking.NewRoller(booking.RollerConfig{Store: db, Now: f.clock, Interval: 5 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	f.roller = r
	return f
}

func (f *rollFixture) caps(tb testing.TB) []int {
	tb.Helper()
	return capacities(tb, f.db, "c1", day1, "pfizer", 1)
}

func rollOvers(tb testing.TB, db *DB) int {
	tb.Helper()
	return count(tb, db, "SELECT COUNT(*) FROM quota_rollovers")
}

func TestRollOverSQLite(t *testing.T) {
	t.Parallel()
	runRollOverTests(t, openSQLite)
}

func TestRollOverPostgres(t *testing.T) {
	t.Parallel()
	openPostgres(t)
	runRollOverTests(t, openPostgres)
}

func runRollOverTests(t *testing.T, open func(testing.TB) *DB) {
	t.Run("ExactlyOnce", func(t *testing.T) {
		t.Parallel()
		f := newRollFixture(t, open(t))
		ctx := ctxT(t)
		fresh := []int{10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10}

		// Wave 1's window (08-09 20:00 → 08-10 18:00) is still open.
		f.set(kst("2021-08-10 17:59"))
		if res, err := f.roller.RollOver(ctx, f.c.ID); err != nil || len(res) != 0 {
			t.Fatalf("before close: %+v, %v", res, err)
		}
		if got := f.caps(t); !slices.Equal(got, fresh) {
			t.Fatalf("before close: %v", got)
		}

		// It closes: its 7 unbooked doses move to the open wave.
		f.set(kst("2021-08-10 18:00"))
		res, err := f.roller.RollOver(ctx, f.c.ID)
		if err != nil || len(res) != 1 || res[0].Wave != 1 || res[0].Already || res[0].Doses != 7 || res[0].QuotaRows != 1 {
			t.Fatalf("wave 1 closed: %+v, %v", res, err)
		}
		want := []int{17, 3, 10, 10, 10, 10, 10, 10, 10, 10, 10}
		if got := f.caps(t); !slices.Equal(got, want) {
			t.Fatalf("after wave 1: %v, want %v", got, want)
		}

		// Two days on: waves 2 (full: nothing to move) and 3 (10) roll over;
		// wave 1 has already.
		f.set(kst("2021-08-12 18:00"))
		res, err = f.roller.RollOver(ctx, f.c.ID)
		if err != nil || len(res) != 3 || !res[0].Already || res[0].Doses != 7 || res[1].Doses != 0 || res[1].Already || res[2].Doses != 10 {
			t.Fatalf("waves 1–3: %+v, %v", res, err)
		}
		want = []int{27, 3, 10, 0, 10, 10, 10, 10, 10, 10, 10}
		if got := f.caps(t); !slices.Equal(got, want) {
			t.Fatalf("after wave 3: %v, want %v", got, want)
		}

		// Again, and through RollOverAll: nothing moves twice.
		for range 2 {
			if res, err := f.roller.RollOver(ctx, f.c.ID); err != nil || len(res) != 3 || !res[0].Already || !res[1].Already || !res[2].Already {
				t.Fatalf("again: %+v, %v", res, err)
			}
			if res, err := f.roller.RollOverAll(ctx); err != nil || len(res) != 0 {
				t.Fatalf("RollOverAll again: %+v, %v", res, err)
			}
		}
		if got := f.caps(t); !slices.Equal(got, want) || sum(got) != 110 {
			t.Fatalf("after reruns: %v, want %v", got, want)
		}
		if n := rollOvers(t, f.db); n != 3 {
			t.Fatalf("roll-over records = %d, want 3", n)
		}
		// A second store process (no cache) sees the same.
		if res, err := f.db.RollOverWave(ctx, f.c.ID, 3, time.Now()); err != nil || !res.Already || res.Doses != 10 {
			t.Fatalf("RollOverWave(3) again = %+v, %v", res, err)
		}
		consistent(t, f.db)
		if _, err := f.db.RollOverWave(ctx, f.c.ID, booking.OpenWave, time.Now()); booking.ErrorCode(err) != booking.EINVALID {
			t.Fatalf("rolling the open wave over = %v, want EINVALID", err)
		}
		if _, err := f.roller.RollOver(ctx, "nope"); booking.ErrorCode(err) != booking.ENOTFOUND {
			t.Fatalf("unknown campaign: %v", err)
		}
	})

	t.Run("CrashBeforeCommit", func(t *testing.T) {
		t.Parallel()
		f := newRollFixture(t, open(t))
		ctx := ctxT(t)
		f.set(kst("2021-08-10 18:00"))
		crash := errors.New("killed between the move and the record")
		f.db.testHookRollOver = func() error { return crash }
		if _, err := f.roller.RollOver(ctx, f.c.ID); !errors.Is(err, crash) {
			t.Fatalf("RollOver with a crash = %v", err)
		}
		if got := f.caps(t); sum(got) != 110 || got[0] != 10 || got[1] != 10 {
			t.Fatalf("a crashed roll-over moved doses: %v", got)
		}
		if n := rollOvers(t, f.db); n != 0 {
			t.Fatalf("a crashed roll-over was recorded")
		}
		f.db.testHookRollOver = nil
		res, err := f.roller.RollOver(ctx, f.c.ID)
		if err != nil || len(res) != 1 || res[0].Already || res[0].Doses != 7 {
			t.Fatalf("rerun after the crash: %+v, %v", res, err)
		}
		if res, err := f.roller.RollOver(ctx, f.c.ID); err != nil || !res[0].Already {
			t.Fatalf("third run: %+v, %v", res, err)
		}
		if got := f.caps(t); got[0] != 17 || got[1] != 3 || sum(got) != 110 {
			t.Fatalf("after the rerun: %v", got)
		}
	})

	t.Run("ReturnsAfterRollOverGoToTheOpenWave", func(t *testing.T) {
		t.Parallel()
		f := newRollFixture(t, open(t))
		ctx := ctxT(t)
		if _, err := f.db.RollOverWave(ctx, f.c.ID, 1, time.Now()); err != nil {
			t.Fatal(err)
		}
		// A cancellation returns the dose; wave 1 cannot book it any more.
		c := *f.wave1[0]
		c.Status, c.CancelReason = booking.StatusCancelled, "person"
		if err := f.db.CancelBookings(ctx, []*booking.Booking{&c}, nil); err != nil {
			t.Fatal(err)
		}
		if got := f.caps(t); got[0] != 18 || got[1] != 2 {
			t.Fatalf("after a cancel: %v, want open 18, wave 1 2", got)
		}
		// So does a reschedule away from wave 1, and a provisional cancelled.
		nb := *f.wave1[1]
		nb.Date, nb.Wave = day1, 0
		if err := f.db.MoveBookings(ctx, []booking.Move{{Old: f.wave1[1], New: &nb}}, nil); err != nil {
			t.Fatal(err)
		}
		if err := f.db.SetStatus(ctx, f.wave1[2].ID, booking.StatusConfirmed, booking.StatusCancelled, time.Now(), nil); err != nil {
			t.Fatal(err)
		}
		if got := f.caps(t); got[0] != 20 || got[1] != 0 || sum(got) != 110 {
			t.Fatalf("after move and cancel: %v, want open 20, wave 1 0", got)
		}
		// A wave that has not rolled over keeps its returns.
		w2c := *f.wave2[0]
		w2c.Status = booking.StatusCancelled
		if err := f.db.CancelBookings(ctx, []*booking.Booking{&w2c}, nil); err != nil {
			t.Fatal(err)
		}
		if got := f.caps(t); got[2] != 10 || got[0] != 20 {
			t.Fatalf("wave 2 (not rolled) after a cancel: %v", got)
		}
		consistent(t, f.db)
	})
}

// Many processes run the roll-over job at once: the wave moves once.
func TestRollOverConcurrentPostgres(t *testing.T) {
	t.Parallel()
	dsn := testenv.Postgres(t)
	db := mustOpen(t, dsn)
	f := newRollFixture(t, db)
	f.set(kst("2021-08-10 18:00"))
	// Separate store handles, as separate yeyakd processes would have.
	others := []*DB{db}
	for range 3 {
		others = append(others, mustOpen(t, dsn))
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		moved int64
		fresh int
	)
	for i := range 16 {
		wg.Go(func() {
			s := others[i%len(others)]
			var res []booking.RollOverResult
			var err error
			if i%2 == 0 {
				var r booking.RollOverResult
				r, err = s.RollOverWave(context.Background(), f.c.ID, 1, time.Now())
				res = []booking.RollOverResult{r}
			} else {
				var roller *booking.Roller
				roller, err = booking.NewRoller(booking.RollerConfig{Store: s, Now: f.clock, Logger: slog.New(slog.DiscardHandler)})
				if err == nil {
					res, err = roller.RollOver(context.Background(), f.c.ID)
				}
			}
			if err != nil {
				t.Errorf("roll-over %d: %v", i, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, r := range res {
				if !r.Already {
					fresh++
					moved += r.Doses
				}
			}
		})
	}
	wg.Wait()
	if fresh != 1 || moved != 7 {
		t.Fatalf("%d roll-overs moved %d doses; want exactly 1 moving 7", fresh, moved)
	}
	if got := f.caps(t); got[0] != 17 || got[1] != 3 || sum(got) != 110 {
		t.Fatalf("after concurrent runs: %v", got)
	}
	consistent(t, db)
}

// Run rolls waves over as their windows close, until its context ends.
func TestRollerRun(t *testing.T) {
	t.Parallel()
	f := newRollFixture(t, openSQLite(t))
	f.set(kst("2021-08-10 12:00"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.roller.Run(ctx) }()
	f.set(kst("2021-08-11 18:00")) // waves 1 and 2 closed
	deadline := time.Now().Add(10 * time.Second)
	for rollOvers(t, f.db) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not roll the closed waves over within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if got := f.caps(t); got[0] != 17 || got[1] != 3 || got[2] != 10 {
		t.Fatalf("after Run: %v", got)
	}
}

// kst parses "2006-01-02 15:04" in Seoul.
func kst(s string) time.Time {
	seoul, _ := time.LoadLocation("Asia/Seoul")
	t, err := time.ParseInLocation("2006-01-02 15:04", s, seoul)
	if err != nil {
		panic(err)
	}
	return t
}
