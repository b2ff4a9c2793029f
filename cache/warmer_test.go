package cache_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/cache"
	"github.com/yeyak/yeyak/mocks/population"
)

// rosterOf builds a SliceRoster over a synthetic population.
func rosterOf(cfg population.Config) *cache.SliceRoster {
	var ids []string
	digit := map[string]int{}
	for p := range population.People(cfg) {
		ids = append(ids, p.ID)
		digit[p.ID] = p.Digit()
	}
	return cache.NewSliceRoster(ids, func(id string) int { return digit[id] })
}

// warmDigit runs a warmer over roster's digit group into c, in chunks of
// 500, and waits until it is done.
func warmDigit(t *testing.T, c *cache.Cache, roster cache.Roster, digit int) *cache.Warmer {
	t.Helper()
	w, err := cache.NewWarmer(c, cache.WarmerConfig{Roster: roster, ChunkSize: 500, ChunksPerSecond: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background(), digit); err != nil {
		t.Fatal(err)
	}
	eventually(t, "warmer to finish", func() bool { return w.Status().State == cache.WarmerDone })
	return w
}

func TestWarmedDigitGroupMakesNoRegistryReads(t *testing.T) {
	reg, pcfg := populated(20_000)
	c := newCache(t, reg, cache.Config{})
	roster := rosterOf(pcfg)
	const digit = 3
	w := warmDigit(t, c, roster, digit)
	st := w.Status()
	group, _ := roster.CountForDigit(context.Background(), digit)
	if st.People != int64(group) || st.Progress != 1 || st.Chunks != int64((group+499)/500) {
		t.Fatalf("status = %+v, want %d people in %d chunks", st, group, (group+499)/500)
	}
	if got := reg.bulk.Load(); got != st.Chunks {
		t.Fatalf("bulk calls = %d, want one per chunk (%d)", got, st.Chunks)
	}

	// 1,000 lookups of the group's known people: zero registry reads.
	people := population.PeopleWithDigit(pcfg, digit, 1_100)
	n := 0
	for _, p := range people {
		if p.Unknown || n == 1_000 {
			continue
		}
		n++
		per, err := c.Person(context.Background(), p.ID)
		if err != nil || per.BirthDate != p.BirthDate {
			t.Fatalf("Person = %+v, %v", per, err)
		}
	}
	if n != 1_000 {
		t.Fatalf("only %d known people in the group", n)
	}
	if got := reg.single.Load(); got != 0 {
		t.Fatalf("registry reads = %d after warming, want 0", got)
	}
}

// TestWarmerRemembersUnknownPeople: the people of a digit group the bulk
// answer leaves out are unknown to the registry: after warming they are
// answered ErrNotFound without a registry read, and past NegativeTTL,
// while the registry cannot answer, still ErrNotFound (not 503).
func TestWarmerRemembersUnknownPeople(t *testing.T) {
	reg, pcfg := populated(20_000)
	clk := newClock()
	c := newCache(t, reg, cache.Config{Now: clk.Now})
	roster := rosterOf(pcfg)
	const digit = 3
	warmDigit(t, c, roster, digit)
	var unknown []string
	for p := range population.People(pcfg) {
		if p.Unknown && p.Digit() == digit {
			unknown = append(unknown, p.ID)
		}
	}
	if len(unknown) == 0 {
		t.Fatal("no unknown people in the digit group")
	}
	ctx := context.Background()
	for _, id := range unknown {
		if _, err := c.Get(ctx, id); !errors.Is(err, adapter.ErrNotFound) {
			t.Fatalf("Get(unknown %s): %v, want ErrNotFound", id, err)
		}
	}
	if got := reg.single.Load(); got != 0 {
		t.Fatalf("registry reads = %d for %d warmed unknown people, want 0", got, len(unknown))
	}
	clk.Advance(cache.DefaultNegativeTTL + time.Second)
	reg.down.Store(true)
	for _, id := range unknown {
		if _, err := c.Get(ctx, id); !errors.Is(err, adapter.ErrNotFound) {
			t.Fatalf("Get(unknown %s) past NegativeTTL with the registry down: %v, want ErrNotFound", id, err)
		}
	}
}

// holdingRoster lets a test stop the warmer between chunks.
type holdingRoster struct {
	cache.Roster
	pages atomic.Int64
	hold  chan struct{} // the second page waits for it
}

func (h *holdingRoster) PeopleForDigit(ctx context.Context, d int, after string, limit int) ([]string, error) {
	if h.pages.Add(1) == 2 {
		select {
		case <-h.hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return h.Roster.PeopleForDigit(ctx, d, after, limit)
}

func TestWarmerPauseResume(t *testing.T) {
	reg, pcfg := populated(5_000)
	c := newCache(t, reg, cache.Config{})
	roster := &holdingRoster{Roster: rosterOf(pcfg), hold: make(chan struct{})}
	w, err := cache.NewWarmer(c, cache.WarmerConfig{Roster: roster, ChunkSize: 100, ChunksPerSecond: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if st := w.Status(); st.State != cache.WarmerIdle || st.Digit != -1 {
		t.Fatalf("status before Start = %+v", st)
	}
	ctx := context.Background()
	if err := w.Start(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx, 8); !errors.Is(err, cache.ErrWarmerBusy) {
		t.Fatalf("Start of another digit while running: err = %v, want ErrWarmerBusy", err)
	}
	eventually(t, "first chunk", func() bool { return w.Status().Chunks == 1 })
	w.Pause()
	st := w.Status()
	if st.State != cache.WarmerPaused || st.Chunks != 1 || st.People != 100 {
		t.Fatalf("status after Pause = %+v, want paused after 1 chunk of 100", st)
	}
	close(roster.hold)
	if err := w.Start(ctx, 7); err != nil {
		t.Fatal(err)
	}
	eventually(t, "warmer to finish", func() bool { return w.Status().State == cache.WarmerDone })
	group, _ := roster.Roster.(*cache.SliceRoster).CountForDigit(ctx, 7)
	if st := w.Status(); st.People != int64(group) {
		t.Fatalf("people = %d after resume, want %d (each once)", st.People, group)
	}
	// Resumed, not restarted: every id was asked for exactly once.
	if got := reg.bulkIDs.Load(); got != int64(group) {
		t.Fatalf("bulk ids asked = %d, want %d", got, group)
	}
}

func TestWarmerRetriesFailedChunk(t *testing.T) {
	reg, pcfg := populated(2_000)
	reg.bulkFails.Store(2)
	c := newCache(t, reg, cache.Config{})
	w, err := cache.NewWarmer(c, cache.WarmerConfig{Roster: rosterOf(pcfg), ChunksPerSecond: 1000, RetryDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, "warmer to finish", func() bool { return w.Status().State == cache.WarmerDone })
	st := w.Status()
	if st.Errors != 2 || st.LastError == "" || st.Loaded == 0 {
		t.Fatalf("status = %+v, want 2 errors then success", st)
	}
}

func TestWarmerStoppedByClose(t *testing.T) {
	reg, pcfg := populated(5_000)
	c, err := cache.New(reg, cache.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cache.NewWarmer(c, cache.WarmerConfig{Roster: rosterOf(pcfg), ChunkSize: 10, ChunksPerSecond: 5})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if st := w.Status(); st.State != cache.WarmerPaused {
		t.Fatalf("state after Close = %s, want paused", st.State)
	}
	if err := w.Start(context.Background(), 2); !errors.Is(err, cache.ErrClosed) {
		t.Fatalf("Start after Close: err = %v, want ErrClosed", err)
	}
}

func TestSliceRoster(t *testing.T) {
	r := cache.NewSliceRoster([]string{"c", "a", "b", "d", "a", "x"}, func(id string) int {
		if id == "x" {
			return 10 // dropped
		}
		return 1
	})
	ctx := context.Background()
	tests := []struct {
		after string
		limit int
		want  []string
	}{
		{"", 2, []string{"a", "b"}},
		{"b", 2, []string{"c", "d"}},
		{"bb", 10, []string{"c", "d"}},
		{"d", 2, nil},
	}
	for _, tt := range tests {
		got, err := r.PeopleForDigit(ctx, 1, tt.after, tt.limit)
		if err != nil || len(got) != len(tt.want) {
			t.Fatalf("after %q: %v, %v; want %v", tt.after, got, err, tt.want)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Fatalf("after %q: %v, want %v", tt.after, got, tt.want)
			}
		}
	}
	if n, _ := r.CountForDigit(ctx, 1); n != 4 {
		t.Fatalf("count = %d, want 4", n)
	}
	if _, err := r.PeopleForDigit(ctx, 11, "", 1); err == nil {
		t.Fatal("digit 11 accepted")
	}
}

func TestReadRoster(t *testing.T) {
	in := strings.NewReader(`person_id,birth_date
# exported from PERSON_MST
P0000000003,1961-03-14
P0000000001,19700504

P0000000002, 1985-12-25
P0000000004,2001-01-04
`)
	r, err := cache.ReadRoster(in)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for digit, want := range map[int][]string{4: {"P0000000001", "P0000000003", "P0000000004"}, 0: nil} {
		got, err := r.PeopleForDigit(ctx, digit, "", 10)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("digit %d: %v, %v; want %v", digit, got, err, want)
		}
	}
	if n, _ := r.CountForDigit(ctx, 4); n != 3 {
		t.Fatalf("count %d, want 3", n)
	}
	for _, bad := range []string{"P0000000001\n", "P0000000001,14/03/1961\n", ",1961-03-14\n", "h,h\nP1,1961-02-30\n"} {
		_, err := cache.ReadRoster(strings.NewReader(bad))
		if err == nil {
			t.Fatalf("%q accepted", bad)
		}
		if strings.Contains(err.Error(), "P0000000001") || !strings.Contains(err.Error(), "line") {
			t.Fatalf("error %q: want the line number and no person id", err)
		}
	}
	path := filepath.Join(t.TempDir(), "roster.csv")
	if err := os.WriteFile(path, []byte("P0000000009,1999-09-09\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r, err := cache.OpenRosterFile(path); err != nil {
		t.Fatal(err)
	} else if ids, _ := r.PeopleForDigit(ctx, 9, "", 5); !slices.Equal(ids, []string{"P0000000009"}) {
		t.Fatalf("file roster: %v", ids)
	}
}
