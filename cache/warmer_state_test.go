package cache_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/cache"
)

// restart closes c (as a process stopping would) and returns a new cache
// and warmer over the same registry and state file.
func restartWarmer(t *testing.T, reg *fakeRegistry, roster cache.Roster, state string) (*cache.Cache, *cache.Warmer) {
	t.Helper()
	c := newCache(t, reg, cache.Config{})
	w, err := cache.NewWarmer(c, cache.WarmerConfig{Roster: roster, ChunkSize: 100, ChunksPerSecond: 1000, StateFile: state})
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

// TestWarmerResumesAcrossRestart: a run stopped by the process shutting
// down (Cache.Close) comes back paused from the state file and Resume
// continues it after the last chunk done: across the restart every id of
// the group is asked for exactly once.
func TestWarmerResumesAcrossRestart(t *testing.T) {
	reg, pcfg := populated(5_000)
	state := filepath.Join(t.TempDir(), "warmer.json")
	roster := &holdingRoster{Roster: rosterOf(pcfg), hold: make(chan struct{})}
	c1, w1 := restartWarmer(t, reg, roster, state)
	ctx := context.Background()
	if err := w1.Start(ctx, 7); err != nil {
		t.Fatal(err)
	}
	eventually(t, "first chunk", func() bool { return w1.Status().Chunks == 1 })
	if err := c1.Close(); err != nil { // the process stops mid-run
		t.Fatal(err)
	}
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v, %v; want mode 0600", fi, err)
	}

	close(roster.hold)
	_, w2 := restartWarmer(t, reg, roster, state)
	if st := w2.Status(); st.Digit != 7 || st.State != cache.WarmerPaused || st.People != 100 || st.Chunks != 1 {
		t.Fatalf("restored status = %+v, want paused on digit 7 after 1 chunk of 100", st)
	}
	resumed, err := w2.Resume(ctx)
	if err != nil || !resumed {
		t.Fatalf("Resume = %v, %v; want the interrupted run resumed", resumed, err)
	}
	eventually(t, "warmer to finish", func() bool { return w2.Status().State == cache.WarmerDone })
	group, _ := roster.Roster.(*cache.SliceRoster).CountForDigit(ctx, 7)
	if st := w2.Status(); st.People != int64(group) {
		t.Fatalf("people = %d across the restart, want %d", st.People, group)
	}
	if got := reg.bulkIDs.Load(); got != int64(group) {
		t.Fatalf("bulk ids asked = %d across the restart, want %d (each once)", got, group)
	}
	// Done survives a restart too: nothing to resume.
	_, w3 := restartWarmer(t, reg, roster, state)
	if st := w3.Status(); st.State != cache.WarmerDone || st.People != int64(group) {
		t.Fatalf("status after a restart once done = %+v", st)
	}
	if resumed, err := w3.Resume(ctx); resumed || err != nil {
		t.Fatalf("Resume of a finished run = %v, %v", resumed, err)
	}
}

// TestWarmerOpsPauseSurvivesRestart: a run paused by ops stays paused
// after a restart (Resume leaves it); Start of the same digit continues it.
func TestWarmerOpsPauseSurvivesRestart(t *testing.T) {
	reg, pcfg := populated(5_000)
	state := filepath.Join(t.TempDir(), "warmer.json")
	roster := &holdingRoster{Roster: rosterOf(pcfg), hold: make(chan struct{})}
	c1, w1 := restartWarmer(t, reg, roster, state)
	ctx := context.Background()
	if err := w1.Start(ctx, 3); err != nil {
		t.Fatal(err)
	}
	eventually(t, "first chunk", func() bool { return w1.Status().Chunks == 1 })
	w1.Pause() // ops
	c1.Close()
	close(roster.hold)
	_, w2 := restartWarmer(t, reg, roster, state)
	if resumed, err := w2.Resume(ctx); resumed || err != nil {
		t.Fatalf("Resume of an ops pause = %v, %v; want it left paused", resumed, err)
	}
	if st := w2.Status(); st.State != cache.WarmerPaused || st.People != 100 {
		t.Fatalf("status = %+v", st)
	}
	if err := w2.Start(ctx, 3); err != nil {
		t.Fatal(err)
	}
	eventually(t, "warmer to finish", func() bool { return w2.Status().State == cache.WarmerDone })
	group, _ := roster.Roster.(*cache.SliceRoster).CountForDigit(ctx, 3)
	if got := reg.bulkIDs.Load(); got != int64(group) {
		t.Fatalf("bulk ids asked = %d, want %d", got, group)
	}
}

// TestWarmBeforeResumesAfterRestart: the schedule started a window's run;
// after a restart the same window's schedule step resumes that run rather
// than starting the group over.
func TestWarmBeforeResumesAfterRestart(t *testing.T) {
	seoul, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		t.Skip("no zone database:", err)
	}
	reg, pcfg := populated(5_000)
	state := filepath.Join(t.TempDir(), "warmer.json")
	roster := &holdingRoster{Roster: rosterOf(pcfg), hold: make(chan struct{})}
	c1, w1 := restartWarmer(t, reg, roster, state)
	ctx := context.Background()
	now := time.Date(2021, 8, 13, 23, 0, 0, 0, seoul) // the window for digit 4 opens 08-14 20:00
	if d, started, err := w1.WarmBefore(ctx, rotationCampaign(), now, 24*time.Hour); err != nil || !started || d != 4 {
		t.Fatalf("WarmBefore = %d, %v, %v", d, started, err)
	}
	eventually(t, "first chunk", func() bool { return w1.Status().Chunks == 1 })
	c1.Close()
	close(roster.hold)
	_, w2 := restartWarmer(t, reg, roster, state)
	if d, started, err := w2.WarmBefore(ctx, rotationCampaign(), now.Add(time.Minute), 24*time.Hour); err != nil || !started || d != 4 {
		t.Fatalf("WarmBefore after restart = %d, %v, %v; want the run resumed", d, started, err)
	}
	eventually(t, "warmer to finish", func() bool { return w2.Status().State == cache.WarmerDone })
	group, _ := roster.Roster.(*cache.SliceRoster).CountForDigit(ctx, 4)
	if got := reg.bulkIDs.Load(); got != int64(group) {
		t.Fatalf("bulk ids asked = %d across the restart, want %d (resumed, not restarted)", got, group)
	}
	if _, started, _ := w2.WarmBefore(ctx, rotationCampaign(), now.Add(2*time.Minute), 24*time.Hour); started {
		t.Fatal("WarmBefore started the finished window again")
	}
}

// TestWarmerStateFileMustBeValid: a state file that is not the warmer's
// stops NewWarmer with an error instead of being silently overwritten.
func TestWarmerStateFileMustBeValid(t *testing.T) {
	reg, pcfg := populated(100)
	state := filepath.Join(t.TempDir(), "warmer.json")
	if err := os.WriteFile(state, []byte(`{"version": 9}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCache(t, reg, cache.Config{})
	if _, err := cache.NewWarmer(c, cache.WarmerConfig{Roster: rosterOf(pcfg), StateFile: state}); err == nil {
		t.Fatal("a foreign state file was accepted")
	}
}

// TestRunScheduleResumesInterruptedRun: the schedule loop resumes a run a
// restart interrupted even when no window is due.
func TestRunScheduleResumesInterruptedRun(t *testing.T) {
	reg, pcfg := populated(3_000)
	state := filepath.Join(t.TempDir(), "warmer.json")
	roster := &holdingRoster{Roster: rosterOf(pcfg), hold: make(chan struct{})}
	c1, w1 := restartWarmer(t, reg, roster, state)
	if err := w1.Start(context.Background(), 5); err != nil {
		t.Fatal(err)
	}
	eventually(t, "first chunk", func() bool { return w1.Status().Chunks == 1 })
	c1.Close()
	close(roster.hold)
	_, w2 := restartWarmer(t, reg, roster, state)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w2.RunSchedule(ctx, func() *booking.Campaign { return nil }, time.Hour, time.Hour)
	}()
	eventually(t, "the interrupted run to finish", func() bool { return w2.Status().State == cache.WarmerDone })
	cancel()
	<-done
}
