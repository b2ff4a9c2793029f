package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Roster lists the people of a birth-digit group (the last digit of their
// day of birth, booking.BirthDigit), for pre-warming. A production Roster
// reads the registry's person master; SliceRoster is an in-memory one.
type Roster interface {
	// PeopleForDigit returns up to limit person ids of the digit group,
	// in ascending order, all greater than after ("" for the first page).
	// An empty result means the group is done.
	PeopleForDigit(ctx context.Context, digit int, after string, limit int) ([]string, error)
}

// DigitCounter is implemented by Rosters that can count a digit group; the
// warmer then reports its progress as a ratio.
type DigitCounter interface {
	CountForDigit(ctx context.Context, digit int) (int, error)
}

// WarmerConfig configures a Warmer. Zero values mean the documented
// defaults; Roster is required.
type WarmerConfig struct {
	// Roster lists the people to warm.
	Roster Roster
	// ChunkSize is the number of people per bulk registry call. 0 means 500.
	ChunkSize int
	// ChunksPerSecond caps the bulk calls per second: the registry's
	// budget for pre-warming. 0 means 2 (1,000 people a second at the
	// default chunk size: a 200,000-person digit group in under 4 minutes).
	ChunksPerSecond float64
	// ChunkTimeout bounds one bulk call. 0 means 30s.
	ChunkTimeout time.Duration
	// RetryDelay is the wait before retrying a chunk that failed (the same
	// chunk is retried until the warmer is paused). 0 means 5s.
	RetryDelay time.Duration
	// Logger receives one line per chunk (no person ids). nil means the
	// cache's logger.
	Logger *slog.Logger
	// StateFile, when set, is a small JSON file where the warmer keeps its
	// position — digit, state, counters, the last person id done, the
	// window WarmBefore started it for — rewritten (atomically) after every
	// chunk and every change of state, so that a restarted process resumes
	// the run instead of starting the digit group over: NewWarmer reads it,
	// and a run that was going when the process stopped comes back paused,
	// to be resumed by Resume (RunSchedule calls it first). It holds one
	// person id: keep it with the service's data (it is written 0600). ""
	// keeps the position in memory only.
	StateFile string
}

// WarmerState is where the warmer is.
type WarmerState string

// The warmer's states.
const (
	WarmerIdle    WarmerState = "idle"    // never started
	WarmerRunning WarmerState = "running" // loading chunks
	WarmerPaused  WarmerState = "paused"  // stopped by Pause or Close; Start with the same digit resumes
	WarmerDone    WarmerState = "done"    // the digit group is loaded
)

// WarmerStatus is the warmer's progress on its current (or last) digit
// group. It carries no person ids.
type WarmerStatus struct {
	Digit      int         `json:"digit"` // -1 before the first Start
	State      WarmerState `json:"state"`
	People     int64       `json:"people"` // ids looked up in this run
	Loaded     int64       `json:"loaded"` // records stored (people the registry knows)
	Chunks     int64       `json:"chunks"`
	Errors     int64       `json:"errors"` // failed chunk attempts
	Total      int64       `json:"total"`  // size of the digit group, -1 if the roster cannot count
	Progress   float64     `json:"progress"`
	LastError  string      `json:"last_error,omitempty"`
	StartedAt  time.Time   `json:"started_at,omitzero"`
	UpdatedAt  time.Time   `json:"updated_at,omitzero"`
	FinishedAt time.Time   `json:"finished_at,omitzero"`
}

// ErrWarmerBusy: Start was asked for another digit while a run is going.
var ErrWarmerBusy = errors.New("cache: warmer is running another digit group; pause it first")

// Warmer loads a birth-digit group's eligibility into the cache in bulk
// (Registry.EligibilityBulk), chunked, rate-limited and resumable, before
// that group's rotation day opens. One warmer per cache; its run is owned by
// the cache and stopped by Pause or Cache.Close.
type Warmer struct {
	c   *Cache
	cfg WarmerConfig
	log *slog.Logger

	mu     sync.Mutex
	st     WarmerStatus
	after  string // last id done in the current digit group
	cancel context.CancelFunc
	done   chan struct{} // closed when the current run ends
	tot    WarmerStatus  // cumulative counters for the metrics

	scheduledFor time.Time // opening of the window WarmBefore last started a run for
	// interrupted: the state file says a run was going when the process
	// stopped (Resume continues it; an ops Pause is not an interruption).
	interrupted bool
	closing     bool   // Cache.Close stops the run: the state file keeps it as running
	saveErr     string // last state file error logged
}

// NewWarmer returns the cache's warmer and attaches it to c, so that
// c.Stats, the metrics and c.OpsHandler show and drive it.
func NewWarmer(c *Cache, cfg WarmerConfig) (*Warmer, error) {
	if cfg.Roster == nil {
		return nil, errors.New("cache: WarmerConfig.Roster is required")
	}
	if cfg.ChunkSize < 0 || cfg.ChunksPerSecond < 0 || cfg.ChunkTimeout < 0 || cfg.RetryDelay < 0 {
		return nil, errors.New("cache: negative value in WarmerConfig")
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = 500
	}
	if cfg.ChunksPerSecond == 0 {
		cfg.ChunksPerSecond = 2
	}
	if cfg.ChunkTimeout == 0 {
		cfg.ChunkTimeout = 30 * time.Second
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = c.log
	}
	w := &Warmer{c: c, cfg: cfg, log: cfg.Logger.With("component", "cache_warmer"),
		st: WarmerStatus{Digit: -1, State: WarmerIdle, Total: -1}}
	if cfg.StateFile != "" {
		if err := w.load(); err != nil {
			return nil, err
		}
	}
	if !c.warmer.CompareAndSwap(nil, w) {
		return nil, errors.New("cache: the cache already has a warmer")
	}
	return w, nil
}

// warmerFile is the StateFile's content.
type warmerFile struct {
	Version      int          `json:"version"`
	Status       WarmerStatus `json:"status"`
	After        string       `json:"after"`
	ScheduledFor time.Time    `json:"scheduled_for,omitzero"`
}

// load restores the position StateFile holds, if the file exists.
func (w *Warmer) load() error {
	b, err := os.ReadFile(w.cfg.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cache: read warmer state: %w", err)
	}
	var f warmerFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 || f.Status.Digit < -1 || f.Status.Digit > 9 {
		return fmt.Errorf("cache: warmer state file %s is not a version 1 state (%v); remove it to start afresh", w.cfg.StateFile, err)
	}
	w.st, w.after, w.scheduledFor = f.Status, f.After, f.ScheduledFor
	w.st.Progress = 0
	if w.st.State == WarmerRunning {
		w.st.State, w.interrupted = WarmerPaused, true
	}
	w.log.Info("warmer state restored", "digit", w.st.Digit, "state", string(w.st.State),
		"interrupted", w.interrupted, "people", w.st.People, "chunks", w.st.Chunks)
	return nil
}

// save writes the position to StateFile (if set); w.mu is held. A failure
// is logged (once per distinct error) and warming goes on: the worst it
// costs is warming some people again after a restart.
func (w *Warmer) save() {
	if w.cfg.StateFile == "" {
		return
	}
	st := w.st
	if w.closing && st.State == WarmerPaused {
		// Stopped by the process shutting down, not by ops: a restart
		// resumes it.
		st.State = WarmerRunning
	}
	b, err := json.Marshal(warmerFile{Version: 1, Status: st, After: w.after, ScheduledFor: w.scheduledFor})
	if err == nil {
		tmp := w.cfg.StateFile + ".tmp"
		if err = os.WriteFile(tmp, b, 0o600); err == nil {
			err = os.Rename(tmp, w.cfg.StateFile)
		}
	}
	if err != nil && err.Error() != w.saveErr {
		w.log.Warn("warmer state not saved; a restart would warm this group again", "err", err)
	}
	w.saveErr = ""
	if err != nil {
		w.saveErr = err.Error()
	}
}

// Resume continues the run the state file says was going when the process
// stopped (the same digit, after the last chunk done) and reports whether
// it did. A run paused by ops stays paused. Returns ErrClosed if the cache
// is closed.
func (w *Warmer) Resume(ctx context.Context) (bool, error) {
	w.mu.Lock()
	resume, digit := w.interrupted && w.st.State == WarmerPaused, w.st.Digit
	w.mu.Unlock()
	if !resume {
		return false, nil
	}
	if err := w.start(ctx, digit, false); err != nil {
		return false, err
	}
	w.log.Info("warmer resumed after a restart", "digit", digit)
	return true, nil
}

// Start warms digit's group. It returns at once; the run goes on until the
// group is done or Pause or Cache.Close is called (ctx's values are kept,
// its cancellation is not: an ops request that starts the warmer ends long
// before the run). Start after Pause with the same digit continues after the
// last chunk done; another digit, or the same digit after it is done, starts
// from the beginning. Returns ErrWarmerBusy if it is running another digit,
// ErrClosed if the cache is closed.
func (w *Warmer) Start(ctx context.Context, digit int) error {
	return w.start(ctx, digit, false)
}

// start is Start; fresh restarts a paused run of the same digit from the
// beginning.
func (w *Warmer) start(ctx context.Context, digit int, fresh bool) error {
	if digit < 0 || digit > 9 {
		return fmt.Errorf("cache: digit %d is not 0-9", digit)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.st.State == WarmerRunning {
		if w.st.Digit == digit {
			return nil
		}
		return ErrWarmerBusy
	}
	now := time.Now()
	if fresh || w.st.Digit != digit || w.st.State == WarmerDone {
		w.after = ""
		w.st = WarmerStatus{Digit: digit, Total: -1, StartedAt: now}
	}
	prev := w.st.State
	w.st.State = WarmerRunning
	w.st.UpdatedAt = now
	w.st.FinishedAt = time.Time{}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	if !w.c.goOwned(func() { w.run(runCtx, digit, done) }) {
		cancel()
		w.st.State = prev
		return ErrClosed
	}
	w.cancel, w.done = cancel, done
	w.interrupted = false
	w.save()
	return nil
}

// Pause stops the run after the chunk in flight (its bulk call is
// cancelled) and waits for it to end. The progress is kept: Start with the
// same digit resumes.
func (w *Warmer) Pause() {
	w.mu.Lock()
	cancel, done := w.cancel, w.done
	w.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// stopForClose pauses the run because the cache is closing; unlike an ops
// Pause, the state file keeps it as running, so a restart resumes it.
func (w *Warmer) stopForClose() {
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
	w.Pause()
}

// Status returns the progress of the current (or last) run.
func (w *Warmer) Status() WarmerStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.st
	if s.Total > 0 {
		s.Progress = min(1, float64(s.People)/float64(s.Total))
	} else if s.State == WarmerDone {
		s.Progress = 1
	}
	return s
}

// totals returns the counters summed over every run.
func (w *Warmer) totals() WarmerStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.tot
}

func (w *Warmer) run(ctx context.Context, digit int, done chan struct{}) {
	final := WarmerPaused
	defer func() {
		w.mu.Lock()
		w.st.State = final
		w.st.UpdatedAt = time.Now()
		if final == WarmerDone {
			w.st.FinishedAt = w.st.UpdatedAt
		}
		w.cancel, w.done = nil, nil
		st := w.st
		w.save()
		w.mu.Unlock()
		w.log.Info("warmer stopped", "digit", digit, "state", string(final),
			"people", st.People, "loaded", st.Loaded, "chunks", st.Chunks, "errors", st.Errors)
		close(done)
	}()
	// Cache.Close pauses the warmer first; this also ends the run if the
	// cache's context ends some other way.
	stop := context.AfterFunc(w.c.baseCtx, func() { w.Pause() })
	defer stop()

	if dc, ok := w.cfg.Roster.(DigitCounter); ok {
		if n, err := dc.CountForDigit(ctx, digit); err == nil {
			w.mu.Lock()
			w.st.Total = int64(n)
			w.mu.Unlock()
		}
	}
	lim := rate.NewLimiter(rate.Limit(w.cfg.ChunksPerSecond), 1)
	started := time.Now()
	for {
		if err := lim.Wait(ctx); err != nil {
			return
		}
		w.mu.Lock()
		after := w.after
		w.mu.Unlock()
		n, loaded, err := w.chunk(ctx, digit, after)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.mu.Lock()
			w.st.Errors++
			w.tot.Errors++
			w.st.LastError = err.Error()
			w.st.UpdatedAt = time.Now()
			w.mu.Unlock()
			w.log.Warn("warmer chunk failed, will retry", "digit", digit, "err", err, "retry_in", w.cfg.RetryDelay)
			select {
			case <-ctx.Done():
				return
			case <-time.After(w.cfg.RetryDelay):
			}
			continue
		}
		if n == 0 {
			final = WarmerDone
			return
		}
		w.mu.Lock()
		st := w.st
		w.mu.Unlock()
		w.log.Info("warmer chunk done", "digit", digit, "chunk", st.Chunks, "people", st.People,
			"loaded", st.Loaded, "this_chunk", n, "this_chunk_loaded", loaded, "total", st.Total,
			"elapsed", time.Since(started).Round(time.Millisecond))
	}
}

// chunk loads the next page after `after` and records the progress;
// it returns the number of ids in the page (0: the group is done).
func (w *Warmer) chunk(ctx context.Context, digit int, after string) (n, loaded int, err error) {
	ids, err := w.cfg.Roster.PeopleForDigit(ctx, digit, after, w.cfg.ChunkSize)
	if err != nil {
		return 0, 0, fmt.Errorf("roster page: %w", err)
	}
	if len(ids) == 0 {
		return 0, 0, nil
	}
	cctx, cancel := context.WithTimeout(ctx, w.cfg.ChunkTimeout)
	defer cancel()
	seq0 := w.c.invalSeq.Load()
	recs, err := w.c.reg.EligibilityBulk(cctx, ids)
	if err != nil {
		return 0, 0, fmt.Errorf("bulk eligibility of %d people: %w", len(ids), err)
	}
	w.c.putWarm(ids, recs, seq0)
	w.mu.Lock()
	w.after = ids[len(ids)-1]
	w.st.People += int64(len(ids))
	w.st.Loaded += int64(len(recs))
	w.st.Chunks++
	w.st.UpdatedAt = time.Now()
	w.tot.People += int64(len(ids))
	w.tot.Loaded += int64(len(recs))
	w.tot.Chunks++
	w.save()
	w.mu.Unlock()
	return len(ids), len(recs), nil
}
