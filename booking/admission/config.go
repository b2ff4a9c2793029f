package admission

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Key is one HMAC key for tickets and passes. The first key of
// Config.Keys signs; every configured key verifies, so a key is rotated by
// putting the new one first and dropping the old one once every token it
// signed has expired (TicketTTL after the swap).
type Key struct {
	// ID names the key inside tokens: 1 to 32 characters of [A-Za-z0-9_-].
	ID string
	// Secret is the HMAC-SHA256 key; at least 16 bytes.
	Secret []byte
}

// Config configures a Controller. Every zero value means the documented
// default; only Keys and PersonFunc are required.
type Config struct {
	// Keys sign (the first) and verify (all) tickets and passes. Required.
	Keys []Key
	// PersonSalt keys the hash that stands for a person in the store (stores
	// never see raw person ids). Every instance sharing a line must use the
	// same salt. Empty means derived from Keys[0].Secret: set it explicitly
	// before rotating keys, or the line forgets who already holds a place.
	PersonSalt []byte
	// PersonFunc returns the verified person id of a request (the host knows
	// the identity token). Required.
	PersonFunc func(*http.Request) (string, bool)

	// Floor and Ceiling clamp the admission rate, in people admitted per
	// second. Defaults 10 and 1000.
	Floor, Ceiling float64
	// Initial is the admission rate at start. Default Floor.
	Initial float64
	// Law holds the control-law parameters (see Law).
	Law Law

	// PassTTL is how long a pass stays valid. Default 5 minutes.
	PassTTL time.Duration
	// TicketTTL is how long a ticket stays valid. Default 12 hours.
	TicketTTL time.Duration
	// ClaimWindow is how long after admission a person may still collect a
	// pass with their ticket; afterwards the place is forgotten and the
	// person joins again at the back. Default 15 minutes.
	ClaimWindow time.Duration

	// Openings are the times booking windows open (e.g. OpeningsOf a
	// campaign's rotation days). Everyone who joins during the PreOpening
	// window before an opening is placed in a uniformly random order at the
	// opening. Openings closer together than PreOpening are refused by New.
	Openings []time.Time
	// PreOpening is the length of the window before each opening whose
	// arrivals are shuffled. Default 30 minutes.
	PreOpening time.Duration
	// ShuffleSeed seeds the shuffle (ChaCha8) for reproducible tests. Empty
	// means a fresh seed from crypto/rand: nobody can predict the draw.
	ShuffleSeed []byte

	// RequestsPerAdmit scales the free-flow token bucket: while nobody
	// waits, requests without a pass pass at rate × RequestsPerAdmit per
	// second. A request let through in free flow hands its person a pass
	// (X-Yeyak-Pass), and their next requests carry it and take no token,
	// so a token is a person: at 1 free flow admits people at the
	// admission rate, as the line does. Above 1 it lets clients that drop
	// the pass make several requests per person, and admits up to that many
	// times the rate of the ones that keep it (5 did: in the surge's first
	// seconds, 50 people at once and 50 a second at a rate of 10). A
	// person free flow let in who comes back without the pass within
	// PassTTL is let in again without a token (a client that drops the
	// pass, curl in a tour). Default 1.
	RequestsPerAdmit float64
	// FreeFlowHold keeps free flow closed after it refused a request: the
	// refused people are on their way to the line, and nobody arriving
	// after them may pass them in free flow (a refill of the bucket would
	// let them). Free flow opens again once FreeFlowHold has passed without
	// a refusal and nobody waits. Default 3 s.
	FreeFlowHold time.Duration
	// AdvanceInterval is how often the admission cursor is moved (lazily, on
	// requests; no goroutine). Default 100 ms.
	AdvanceInterval time.Duration
	// MinPoll and MaxPoll clamp the poll interval told to waiting clients
	// (Retry-After: half the estimated wait). Defaults 1 s and 60 s.
	MinPoll, MaxPoll time.Duration

	// Now is the clock; every time the controller uses is the server's.
	// Default time.Now.
	Now func() time.Time
	// Store holds the line. Default NewMemoryStore(); use NewRedisStore so
	// several instances share one line.
	Store Store
	// Registerer receives the metrics (names start yeyak_admission_). nil
	// means a private registry.
	Registerer prometheus.Registerer
	// Logger receives rate changes, draws and store errors. Default
	// slog.Default().
	Logger *slog.Logger
	// QueuePath is the path clients are sent to join (Location of a
	// queue_required answer). Default "/v1/queue".
	QueuePath string
}

// Law holds the parameters of the AIMD control law. Each evaluation
// interval with at least MinSamples observations, the controller compares
// the window's booking-path latency (p90, p99), error rate and database pool
// wait (p90) with their targets; the booking writes' latency (p90, p99) is
// also compared on its own once a window holds MinWriteSamples of them. Any
// target exceeded: rate ×= Decrease, then the rate holds for Settle (the
// people already admitted are still on their way to the booking step).
// All healthy, with Headroom, and people waiting (the rate is the binding
// constraint), the writes' p90 within Gradient of its recent best:
// rate += Increase, in smaller steps as the rate nears the one
// the last decrease was taken at (the knee found), down to Probe of a
// step at and past it. Otherwise the rate holds. The rate is clamped to
// [Floor, Ceiling].
type Law struct {
	// Interval is the evaluation window. Default 1 s.
	Interval time.Duration
	// MinSamples is the fewest latency observations a window needs before
	// it changes the rate. Default 20.
	MinSamples int
	// MinWriteSamples is the fewest booking writes (ObserveWrite) a window
	// needs before their own latency is judged. Default 5.
	MinWriteSamples int
	// TargetP90 and TargetP99 are the booking-path latency targets, for
	// all observed requests together and for the booking writes alone.
	// Defaults 250 ms and 1 s.
	TargetP90, TargetP99 time.Duration
	// MaxErrorRate is the highest healthy share of failed requests.
	// Default 0.02.
	MaxErrorRate float64
	// MaxPoolWait is the highest healthy p90 of database pool waits.
	// Default 50 ms.
	MaxPoolWait time.Duration
	// MaxSchedLatency is the highest healthy scheduling latency of the
	// host's goroutines (ObserveSchedLatency: the p99 of the time runnable
	// goroutines waited for a CPU, over the window). It is the leading
	// sign of a process out of CPU: every request's round trips then wait
	// their turn to run, the pool's connections stay held meanwhile, and a
	// few windows later the writes' latency leaves a cliff. Over Headroom
	// of it the rate holds; over it, decreases. Default 20 ms.
	MaxSchedLatency time.Duration
	// Increase is the additive step, in admits/s per healthy interval.
	// Default Ceiling/100 (at least 1).
	Increase float64
	// Decrease is the multiplicative factor on an unhealthy interval, in
	// (0,1). Default 0.7.
	Decrease float64
	// Headroom is the share of each latency target under which a healthy
	// window may increase the rate, in (0,1]; between it and the target
	// the rate holds. Default 0.5.
	Headroom float64
	// Settle is how long the rate holds after a decrease before the law
	// judges again: people admitted before it reach the booking step
	// seconds later, and judging their latency again would decrease for
	// the same overload twice. Default 2 s.
	Settle time.Duration
	// Probe is the share of Increase by which the rate grows at and past
	// the rate of the last decrease, in (0,1]; below it the step shrinks
	// from Increase to Probe×Increase as the rate nears it. Past it by a
	// tenth, the knee is forgotten (capacity grew). Default 0.1.
	Probe float64
	// Gradient bounds the booking writes' p90 for an increase relative to
	// their best: a window with MinSamples writes or more may increase
	// only while its writes' p90 is at most Gradient × the lowest writes'
	// p90 of the last BaselineWindows such windows (as adaptive
	// concurrency limiters compare latency with its floor). The fixed
	// targets say when the service is overloaded; this says when it is
	// starting to queue. Default 4.
	Gradient float64
}

// BaselineWindows is how many recent windows with enough booking writes
// the law takes the writes' best p90 from (see Law.Gradient).
const BaselineWindows = 30

// share fills a law parameter that is a share: def when zero, else it must
// be in (0,1), or (0,1] when one is allowed.
func share(name string, v *float64, def float64, one bool) error {
	switch {
	case *v == 0:
		*v = def
	case *v < 0 || *v > 1 || (*v == 1 && !one):
		bound := ")"
		if one {
			bound = "]"
		}
		return fmt.Errorf("admission: law %s %g must be in (0,1%s", name, *v, bound)
	}
	return nil
}

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// withDefaults validates cfg and fills its zero values.
func (cfg Config) withDefaults() (Config, error) {
	if len(cfg.Keys) == 0 {
		return cfg, errors.New("admission: at least one key is required")
	}
	seen := map[string]bool{}
	for i, k := range cfg.Keys {
		if !keyIDPattern.MatchString(k.ID) {
			return cfg, fmt.Errorf("admission: key %d: id %q must be 1-32 characters of [A-Za-z0-9_-]", i, k.ID)
		}
		if seen[k.ID] {
			return cfg, fmt.Errorf("admission: key id %q is configured twice", k.ID)
		}
		seen[k.ID] = true
		if len(k.Secret) < 16 {
			return cfg, fmt.Errorf("admission: key %q: secret must be at least 16 bytes", k.ID)
		}
	}
	if cfg.PersonFunc == nil {
		return cfg, errors.New("admission: PersonFunc is required")
	}
	if len(cfg.PersonSalt) == 0 {
		h := sha256.Sum256(append([]byte("yeyak-admission-person\x00"), cfg.Keys[0].Secret...))
		cfg.PersonSalt = h[:]
	}
	if cfg.Floor <= 0 {
		cfg.Floor = 10
	}
	if cfg.Ceiling <= 0 {
		cfg.Ceiling = 1000
	}
	if cfg.Ceiling < cfg.Floor {
		return cfg, fmt.Errorf("admission: ceiling %g is below floor %g", cfg.Ceiling, cfg.Floor)
	}
	if cfg.Initial <= 0 {
		cfg.Initial = cfg.Floor
	}
	cfg.Initial = min(max(cfg.Initial, cfg.Floor), cfg.Ceiling)
	l := &cfg.Law
	if l.Interval <= 0 {
		l.Interval = time.Second
	}
	if l.MinSamples <= 0 {
		l.MinSamples = 20
	}
	if l.MinWriteSamples <= 0 {
		l.MinWriteSamples = 5
	}
	if l.TargetP90 <= 0 {
		l.TargetP90 = 250 * time.Millisecond
	}
	if l.TargetP99 <= 0 {
		l.TargetP99 = time.Second
	}
	if l.MaxErrorRate <= 0 {
		l.MaxErrorRate = 0.02
	}
	if l.MaxPoolWait <= 0 {
		l.MaxPoolWait = 50 * time.Millisecond
	}
	if l.MaxSchedLatency <= 0 {
		l.MaxSchedLatency = 20 * time.Millisecond
	}
	if l.Increase <= 0 {
		l.Increase = max(1, cfg.Ceiling/100)
	}
	if err := share("decrease", &l.Decrease, 0.7, false); err != nil {
		return cfg, err
	}
	if err := share("headroom", &l.Headroom, 0.5, true); err != nil {
		return cfg, err
	}
	if err := share("probe", &l.Probe, 0.1, true); err != nil {
		return cfg, err
	}
	if l.Settle < 0 {
		return cfg, fmt.Errorf("admission: law settle %v must not be negative", l.Settle)
	}
	if l.Settle == 0 {
		l.Settle = 2 * time.Second
	}
	if l.Gradient < 0 || (l.Gradient > 0 && l.Gradient < 1) {
		return cfg, fmt.Errorf("admission: law gradient %g must be at least 1", l.Gradient)
	}
	if l.Gradient == 0 {
		l.Gradient = 4
	}
	if cfg.PassTTL <= 0 {
		cfg.PassTTL = 5 * time.Minute
	}
	if cfg.TicketTTL <= 0 {
		cfg.TicketTTL = 12 * time.Hour
	}
	if cfg.ClaimWindow <= 0 {
		cfg.ClaimWindow = 15 * time.Minute
	}
	if cfg.PreOpening <= 0 {
		cfg.PreOpening = 30 * time.Minute
	}
	cfg.Openings = slices.Clone(cfg.Openings)
	slices.SortFunc(cfg.Openings, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(cfg.Openings); i++ {
		if cfg.Openings[i].Sub(cfg.Openings[i-1]) <= cfg.PreOpening {
			return cfg, fmt.Errorf("admission: openings %s and %s are closer than the pre-opening window %s",
				cfg.Openings[i-1].Format(time.RFC3339), cfg.Openings[i].Format(time.RFC3339), cfg.PreOpening)
		}
	}
	if len(cfg.ShuffleSeed) == 0 {
		cfg.ShuffleSeed = make([]byte, 32)
		if _, err := rand.Read(cfg.ShuffleSeed); err != nil {
			return cfg, fmt.Errorf("admission: shuffle seed: %w", err)
		}
	}
	if cfg.RequestsPerAdmit <= 0 {
		cfg.RequestsPerAdmit = 1
	}
	if cfg.FreeFlowHold <= 0 {
		cfg.FreeFlowHold = 3 * time.Second
	}
	if cfg.AdvanceInterval <= 0 {
		cfg.AdvanceInterval = 100 * time.Millisecond
	}
	if cfg.MinPoll <= 0 {
		cfg.MinPoll = time.Second
	}
	if cfg.MaxPoll <= 0 {
		cfg.MaxPoll = 60 * time.Second
	}
	if cfg.MaxPoll < cfg.MinPoll {
		cfg.MaxPoll = cfg.MinPoll
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Store == nil {
		cfg.Store = NewMemoryStore()
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.QueuePath == "" {
		cfg.QueuePath = "/v1/queue"
	}
	return cfg, nil
}
