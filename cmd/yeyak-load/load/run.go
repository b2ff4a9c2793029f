package load

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// runner is one Run's shared state.
type runner struct {
	cfg    Config
	client []*http.Client // one per source address; person k uses client[k % len]
	// queue are the connections of waiting-room calls, apart from client:
	// each person of a crowd has connections of their own, so thousands
	// polling the line never hold up an admitted person's booking call in
	// the load tool (only the target's own queues can).
	queue  []*http.Client
	rec    *recorder
	camp   *campaignInfo
	digit  int
	picker *picker
	runID  string
	flow   []stage
	// line ends when the people still in the waiting room leave it
	// (QueueDrain after arrivals stop, or the Drain's end).
	line context.Context
}

// Run drives the crowd cfg describes against cfg.Target and returns what
// it saw. It returns when arrivals have stopped (Count, Duration, the end
// of a spike, the population running out of people, or ctx ending) and the
// people in the flow have finished or the Drain has passed. An error means
// the run could not start (bad config, a target that is not loopback, no
// such campaign); what the target answers during the run is in the
// Summary, never an error.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := CheckLoopback(ctx, cfg.Target); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, rec: newRecorder(cfg.Record), runID: cfg.RunID}
	r.client, r.queue = clients(cfg), clients(cfg)
	if r.runID == "" {
		b := make([]byte, 4)
		_, _ = crand.Read(b)
		r.runID = "load-" + hex.EncodeToString(b)
	}
	camp, err := r.campaign(ctx)
	if err != nil {
		return nil, err
	}
	r.camp = camp
	today := cfg.Today
	if today.IsZero() {
		today = camp.today(cfg.Now())
	}
	r.digit = camp.digitOn(today)
	r.picker = newPicker(cfg.Population, cfg.PersonSeed, r.digit, cfg.People, cfg.Skip, cfg.Filter)
	r.flow = r.stages()

	start := time.Now()
	flowCtx, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()
	line, leaveLine := context.WithCancel(flowCtx)
	defer leaveLine()
	r.line = line
	var people sync.WaitGroup
	stopProgress := r.progress(start)
	switch cfg.Shape {
	case ShapeClosed:
		r.closedLoop(ctx, flowCtx, &people, start)
	case ShapeFeed:
		r.fedLoop(ctx, flowCtx, &people, start)
	default:
		r.openLoop(ctx, flowCtx, &people, start)
	}
	if cfg.QueueDrain > 0 && cfg.QueueDrain < cfg.Drain {
		lt := time.AfterFunc(cfg.QueueDrain, leaveLine)
		defer lt.Stop()
	}
	done := make(chan struct{})
	go func() { people.Wait(); close(done) }()
	t := time.NewTimer(cfg.Drain)
	select {
	case <-done:
	case <-t.C:
		r.rec.abandoned.Store(r.rec.inFlight.Load())
		abandon()
		<-done
	}
	t.Stop()
	stopProgress()

	s := r.rec.summary()
	s.Target, s.Campaign, s.Shape, s.Started, s.Digit = cfg.Target, camp.ID, cfg.Shape, start, r.digit
	s.ElapsedSeconds = time.Since(start).Seconds()
	if s.ElapsedSeconds > 0 {
		s.BookingsPerSecond = float64(s.Booked) / s.ElapsedSeconds
	}
	return s, nil
}

// clients builds the HTTP clients: cfg.Client, or one per source address
// sharing cfg.Conns connections. The booking flow and the waiting room get
// a set each.
func clients(cfg Config) []*http.Client {
	if cfg.Client != nil {
		return []*http.Client{cfg.Client}
	}
	u, err := url.Parse(cfg.Target)
	if err != nil || cfg.Sources == 1 || strings.Contains(u.Hostname(), ":") {
		return []*http.Client{NewClient(cfg.Conns, cfg.RequestTimeout)}
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil && ip.Is6() && !ip.Is4In6() {
		return []*http.Client{NewClient(cfg.Conns, cfg.RequestTimeout)}
	}
	out := make([]*http.Client, cfg.Sources)
	per := max(1, cfg.Conns/cfg.Sources)
	for i := range out {
		out[i] = newClient(per, cfg.RequestTimeout, &net.TCPAddr{IP: SourceAddr(i).AsSlice()})
	}
	return out
}

// campaign reads the campaign from GET /v1/campaigns.
func (r *runner) campaign(ctx context.Context) (*campaignInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.cfg.Target+"/v1/campaigns", nil)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	resp, err := r.client[0].Do(req)
	if err != nil {
		return nil, fmt.Errorf("load: GET /v1/campaigns: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("load: GET /v1/campaigns: status %d", resp.StatusCode)
	}
	var out struct {
		Campaigns []campaignInfo `json:"campaigns"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("load: GET /v1/campaigns: %w", err)
	}
	for i := range out.Campaigns {
		if out.Campaigns[i].ID == r.cfg.Campaign {
			c := out.Campaigns[i]
			if len(c.Products) == 0 || c.Vaccination.From.IsZero() {
				return nil, fmt.Errorf("load: campaign %q has no products or vaccination dates", c.ID)
			}
			return &c, nil
		}
	}
	return nil, fmt.Errorf("load: the target has no campaign %q", r.cfg.Campaign)
}

// classOf draws the class of the k-th arrival: deterministic per
// (PersonSeed, k), so runs are reproducible whatever the concurrency.
func (r *runner) classOf(k int) int {
	x := rand.New(rand.NewPCG(r.cfg.PersonSeed^0x636c617373, uint64(k))).Float64()
	if x < r.cfg.OtherDigitShare {
		return classOther
	}
	return classToday
}

// start starts the k-th person's flow and returns a channel closed when
// it ends; nil when the population has run out of people.
func (r *runner) start(flowCtx context.Context, people *sync.WaitGroup, k int) <-chan struct{} {
	class := r.classOf(k)
	p, err := r.picker.next(class)
	if err != nil {
		return nil
	}
	v := &visitor{r: r, p: p, class: r.picker.classOf(p), rng: rand.New(rand.NewPCG(r.cfg.PersonSeed, uint64(k))),
		client: r.client[k%len(r.client)], queue: r.queue[k%len(r.queue)]}
	r.rec.started.Add(1)
	r.rec.inFlight.Add(1)
	done := make(chan struct{})
	people.Go(func() {
		defer func() {
			r.rec.inFlight.Add(-1)
			r.rec.finished.Add(1)
			close(done)
		}()
		v.run(flowCtx)
	})
	return done
}

func (r *runner) bounded(k int, since time.Duration) bool {
	return (r.cfg.Count > 0 && k >= r.cfg.Count) || (r.cfg.Duration > 0 && since >= r.cfg.Duration)
}

// openLoop starts people on the Schedule, whatever the target answers.
func (r *runner) openLoop(ctx, flowCtx context.Context, people *sync.WaitGroup, start time.Time) {
	sched := Schedule{Shape: r.cfg.Shape, Rate: r.cfg.Rate, Decay: r.cfg.Decay}
	for k := 0; ; k++ {
		at, ok := sched.At(k)
		if !ok || r.bounded(k, at) {
			return
		}
		if d := time.Until(start.Add(at)); d > 0 && !sleep(ctx, d) {
			return
		}
		if ctx.Err() != nil {
			return
		}
		if !r.launch(flowCtx, people, k) {
			return
		}
	}
}

// launch starts the k-th person, or drops them when MaxInFlight people
// are already in the flow; false means nobody is left to start.
func (r *runner) launch(flowCtx context.Context, people *sync.WaitGroup, k int) bool {
	if r.rec.inFlight.Load() >= int64(r.cfg.MaxInFlight) {
		r.rec.dropped.Add(1)
		return true
	}
	return r.start(flowCtx, people, k) != nil
}

// fedLoop starts one person per value received from Feed, until it is
// closed, ctx ends or the run's bounds are reached.
func (r *runner) fedLoop(ctx, flowCtx context.Context, people *sync.WaitGroup, start time.Time) {
	for k := 0; ; k++ {
		select {
		case _, ok := <-r.cfg.Feed:
			if !ok {
				return
			}
		case <-ctx.Done():
			return
		}
		if r.bounded(k, time.Since(start)) {
			return
		}
		if !r.launch(flowCtx, people, k) {
			return
		}
	}
}

// closedLoop keeps Concurrency people in the flow: each worker starts the
// next person when its last one is done.
func (r *runner) closedLoop(ctx, flowCtx context.Context, people *sync.WaitGroup, start time.Time) {
	var next atomic.Int64
	var workers sync.WaitGroup
	for range r.cfg.Concurrency {
		workers.Go(func() {
			for ctx.Err() == nil {
				k := int(next.Add(1) - 1)
				if r.bounded(k, time.Since(start)) {
					return
				}
				done := r.start(flowCtx, people, k)
				if done == nil {
					return
				}
				select {
				case <-done:
				case <-ctx.Done():
					return // the person finishes within the drain
				}
			}
		})
	}
	workers.Wait()
}

// progress writes a progress line once a second until the returned
// function is called.
func (r *runner) progress(start time.Time) (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintln(r.cfg.Progress, r.rec.progress(time.Since(start)))
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// TodayDigit returns the rotation digit of today (in the campaign's time
// zone, by now) of campaign on target, -1 when today is not a rotation
// day: whose day it is, for a caller that prepares the target (say, warms
// its cache) before a run.
func TodayDigit(ctx context.Context, target, campaign string, now time.Time) (int, error) {
	if err := CheckLoopback(ctx, target); err != nil {
		return 0, err
	}
	cfg := Config{Target: target, Campaign: campaign}.withDefaults()
	r := &runner{cfg: cfg, client: []*http.Client{NewClient(1, cfg.RequestTimeout)}}
	c, err := r.campaign(ctx)
	if err != nil {
		return 0, err
	}
	return c.digitOn(c.today(now)), nil
}
