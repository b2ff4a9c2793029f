package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/sqlstore"
)

// config is every setting of yeyakd. Each has a flag and a YEYAK_*
// environment variable; the flag wins when both are set.
type config struct {
	Listen          string
	OpsListen       string
	DB              string
	Demo            bool
	Now             string
	Issuers         multiFlag
	OpsToken        string
	PersonKey       string
	Registry        string
	Kafka           string
	Role            string
	ShutdownTimeout time.Duration
	LogLevel        string
	DemoPeople      int
	DemoClinics     int
	DemoPolicy      string

	Redis       string
	RedisPrefix string

	Admission         bool
	AdmissionFloor    float64
	AdmissionCeiling  float64
	AdmissionInitial  float64
	AdmissionP90      time.Duration
	AdmissionP99      time.Duration
	AdmissionMaxSched time.Duration
	AdmissionKeys     string
	AdmissionPassTTL  time.Duration
	AdmissionPreOpen  time.Duration
	QueueWorkers      int
	IdempotencyMaxAge time.Duration
	Campaign          string
	OutboxNotify      string
	Pprof             bool
	DBMaxConns        int

	TrustedProxies  string
	RatePerson      float64
	RatePersonBurst int
	RateAddr        float64
	RateAddrBurst   int
	AddrInFlight    int
	Sessions        string
	SessionWindow   time.Duration

	WarmRoster string
	WarmLead   time.Duration
	WarmRate   float64
	WarmState  string
}

// secret marks settings printed masked.
var secret = map[string]bool{"ops-token": true, "person-key": true, "admission-keys": true}

type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, " ; ") }
func (m *multiFlag) Set(v string) error {
	*m = append(*m, v)
	return nil
}

// envName maps a flag name to its environment variable: ops-listen → YEYAK_OPS_LISTEN.
func envName(flagName string) string {
	return "YEYAK_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

const usageHeader = `yeyakd — the yeyak vaccination booking service.

Usage:
  yeyakd [flags]                     serve (every role in one process by default)
  yeyakd migrate [flags]             apply database migrations and exit
  yeyakd campaign load FILE [flags]  add or replace campaigns from a JSON file (docs/campaign-2021.json)
  yeyakd clinic load FILE [flags]    add or replace clinics from CSV (id,name,region,lat,lon,products) or JSON
  yeyakd supply load FILE --campaign ID [flags]
                                     load supply from CSV (clinic_id,date,product,dose,doses) or JSON

Every flag has an environment equivalent: --ops-listen is YEYAK_OPS_LISTEN,
--issuer is YEYAK_ISSUER (several issuers separated by ';'). Flags win.

Flags:
`

func newFlagSet(cfg *config, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("yeyakd", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&cfg.Listen, "listen", ":8080", "public /v1 API listen address")
	fs.StringVar(&cfg.OpsListen, "ops-listen", "127.0.0.1:9090", "ops listener (metrics, breakers, cache, outbox); keep it on loopback")
	fs.StringVar(&cfg.DB, "db", "", "database: sqlite:PATH or postgres://… (default sqlite:yeyak.db, or sqlite:yeyak-demo.db with --demo)")
	fs.BoolVar(&cfg.Demo, "demo", false, "demo mode: seed a campaign whose rotation starts today (Asia/Seoul), mock registry and identity provider, print a curl tour")
	fs.StringVar(&cfg.Now, "now", "", "fake clock start (RFC3339); the clock runs on from there. Refused unless --demo")
	fs.Var(&cfg.Issuers, "issuer", "trusted identity provider, repeatable: name=N,iss=ISSUER,aud=AUDIENCE,jwks=https://…[,algs=RS256|ES256][,skew=30s][,sub=CLAIM][,birthdate=CLAIM][,session=CLAIM][,refresh=1h][,minrefresh=30s][,backoff=1s][,maxbackoff=1m]")
	fs.StringVar(&cfg.OpsToken, "ops-token", "", "bearer token for mutating ops endpoints (secret; empty makes them answer 403)")
	fs.StringVar(&cfg.PersonKey, "person-key", "", "HMAC key for person ids in logs, the session store and search cursors (secret; the same across a fleet; empty means a random key per process)")
	fs.StringVar(&cfg.Registry, "registry", "mock", "legacy registry: mock | gateway:URL | oracle:DSN (godror, needs cgo and Oracle client libraries) | oracle+pgx:postgres://… (the legacy schema on PostgreSQL, for tests)")
	fs.StringVar(&cfg.Kafka, "kafka", "", "Kafka brokers host:port,host:port; or embedded (in-process, keeps nothing across restarts: the default with --demo only)")
	fs.StringVar(&cfg.Redis, "redis", "", "Redis URL (redis://host:port/db) shared by a fleet: second cache tier, breaker state, the waiting-room line; empty: everything in process")
	fs.StringVar(&cfg.RedisPrefix, "redis-prefix", "yeyak:", "prefix of every Redis key yeyakd writes (one per environment)")
	fs.BoolVar(&cfg.Admission, "admission", true, "surge admission: a waiting room in front of the booking flow (POST /v1/queue, GET /queue); false lets every request through")
	fs.Float64Var(&cfg.AdmissionFloor, "admission-floor", 10, "lowest admission rate, people per second")
	fs.Float64Var(&cfg.AdmissionCeiling, "admission-ceiling", 1000, "highest admission rate, people per second")
	fs.Float64Var(&cfg.AdmissionInitial, "admission-initial", 0, "admission rate at start, people per second (0: the floor)")
	fs.DurationVar(&cfg.AdmissionP90, "admission-target-p90", 250*time.Millisecond, "admission law: the booking path's healthy p90 (all its requests, and booking writes alone); over it, the rate is cut")
	fs.DurationVar(&cfg.AdmissionP99, "admission-target-p99", time.Second, "admission law: the booking path's healthy p99, as --admission-target-p90")
	fs.DurationVar(&cfg.AdmissionMaxSched, "admission-max-sched", 20*time.Millisecond, "admission law: the highest healthy p99 of this process's goroutine scheduling latency (runnable, waiting for a CPU); over half of it the rate holds, over it the rate is cut")
	fs.StringVar(&cfg.AdmissionKeys, "admission-keys", "", "HMAC keys of tickets and passes, id:secret[,id:secret…] (secret; the first signs; secrets ≥ 16 bytes; every instance of a fleet needs the same); empty: a random key per process")
	fs.DurationVar(&cfg.AdmissionPassTTL, "admission-pass-ttl", 5*time.Minute, "how long a waiting-room pass stays valid")
	fs.IntVar(&cfg.QueueWorkers, "queue-workers", 0, "waiting-room joins and polls (and demo sign-ins) served at once; more wait their turn, leaving the CPU to admitted bookings (0: half the cores, at least 1)")
	fs.DurationVar(&cfg.AdmissionPreOpen, "admission-pre-opening", 30*time.Minute, "arrivals this long before a window opens are shuffled at the opening")
	fs.DurationVar(&cfg.IdempotencyMaxAge, "idempotency-max-age", 24*time.Hour, "how long Idempotency-Keys and their stored responses are kept")
	fs.StringVar(&cfg.Campaign, "campaign", "", "supply load: the campaign the supply file is for")
	fs.IntVar(&cfg.DBMaxConns, "db-max-conns", 0, "database connection pool size (0: PostgreSQL 4 × cores, at least 16; SQLite 4)")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "serve Go's profiler at /debug/pprof/ on the ops listener (for diagnosing load; keep the ops listener on loopback)")
	fs.StringVar(&cfg.OutboxNotify, "outbox-notify", "after_commit", "PostgreSQL: how bookings wake the outbox relays: after_commit (one coalesced NOTIFY after commits; about twice the booking rate) | in_tx (NOTIFY inside each booking transaction)")
	fs.StringVar(&cfg.TrustedProxies, "trusted-proxies", "", "CIDRs or addresses of load balancers whose X-Forwarded-For is believed, comma-separated; empty: the peer address is the client")
	fs.Float64Var(&cfg.RatePerson, "rate-person", 2, "requests per second one person may make (verified token); negative: off")
	fs.IntVar(&cfg.RatePersonBurst, "rate-person-burst", 20, "requests one person may make at once")
	fs.Float64Var(&cfg.RateAddr, "rate-addr", 100, "requests per second of one client address, a backstop for carrier NAT; negative: off")
	fs.IntVar(&cfg.RateAddrBurst, "rate-addr-burst", 500, "requests one client address may make at once")
	fs.IntVar(&cfg.AddrInFlight, "addr-inflight", 32, "requests one client address may have in progress; negative: off")
	fs.StringVar(&cfg.Sessions, "sessions", "rotation", "one active session per person: rotation (during rotation phases, as in 2021) | always | off")
	fs.DurationVar(&cfg.SessionWindow, "session-window", 10*time.Minute, "a person may start a new session at most once per this window; negative: no window")
	fs.StringVar(&cfg.WarmRoster, "warm-roster", "", "who the cache pre-warmer loads before each rotation day: a roster FILE (person_id,birth_date per line), registry (the Oracle registry's person master), or off; empty: the registry's with --registry oracle, the synthetic population with --demo, else off")
	fs.DurationVar(&cfg.WarmLead, "warm-lead", 12*time.Hour, "the pre-warmer starts loading a rotation day's digit group this long before its window opens")
	fs.Float64Var(&cfg.WarmRate, "warm-rate", 2, "pre-warmer bulk registry calls per second (500 people each): the registry's budget for warming")
	fs.StringVar(&cfg.WarmState, "warm-state", "", "file where the pre-warmer keeps its position, so a restart resumes (empty: in memory only)")
	fs.StringVar(&cfg.Role, "role", "all", "roles to run: all | api | relay | sync")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long in-flight requests may finish after SIGTERM")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "debug | info | warn | error")
	fs.IntVar(&cfg.DemoPeople, "demo-people", 100_000, "demo: size of the synthetic population in the mock registry")
	fs.IntVar(&cfg.DemoClinics, "demo-clinics", 300, "demo: number of generated clinics")
	fs.StringVar(&cfg.DemoPolicy, "demo-registry-policy", "fail_closed", "demo: what the demo campaign does when the registry cannot answer for an uncached person: fail_closed (503) | provisional (a provisional booking, verified later)")
	fs.Usage = func() {
		fmt.Fprint(out, usageHeader)
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" {
				def = " (default " + f.DefValue + ")"
			}
			fmt.Fprintf(out, "  --%s  [%s]%s\n      %s\n", f.Name, envName(f.Name), def, f.Usage)
		})
	}
	return fs
}

// parseConfig reads flags, then fills every flag not given from YEYAK_*,
// for serving.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (*config, *flag.FlagSet, error) {
	return parseConfigFor(true, args, getenv, out)
}

// parseConfigFor is parseConfig; a subcommand (serving false) needs only
// the database settings checked.
func parseConfigFor(serving bool, args []string, getenv func(string) string, out io.Writer) (*config, *flag.FlagSet, error) {
	cfg := &config{}
	fs := newFlagSet(cfg, out)
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		v := getenv(envName(f.Name))
		if given[f.Name] || v == "" || err != nil {
			return
		}
		if f.Name == "issuer" {
			for _, s := range strings.Split(v, ";") {
				if s = strings.TrimSpace(s); s != "" {
					_ = f.Value.Set(s)
				}
			}
			return
		}
		if e := f.Value.Set(v); e != nil {
			err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, e)
		}
	})
	if err != nil {
		return nil, nil, err
	}
	if cfg.DB == "" {
		cfg.DB = "sqlite:yeyak.db"
		if cfg.Demo {
			cfg.DB = "sqlite:yeyak-demo.db"
		}
	}
	if cfg.Kafka == "" && cfg.Demo {
		cfg.Kafka = "embedded"
	}
	if !serving {
		return cfg, fs, nil
	}
	return cfg, fs, cfg.validate()
}

func (c *config) validate() error {
	if c.Now != "" && !c.Demo {
		return errors.New("--now is only allowed with --demo")
	}
	if c.Now != "" {
		if _, err := time.Parse(time.RFC3339, c.Now); err != nil {
			return fmt.Errorf("--now: %w", err)
		}
	}
	switch c.Role {
	case "all", "api", "relay", "sync":
	default:
		return fmt.Errorf("--role %q: want all, api, relay or sync", c.Role)
	}
	if c.Kafka == "" {
		return errors.New("no Kafka: give --kafka host:port,… (or --kafka embedded for a single-process trial that keeps nothing)")
	}
	if c.Kafka == "embedded" && c.Role != "all" {
		return errors.New("--kafka embedded lives in one process: it needs --role all")
	}
	if !c.Demo && len(c.Issuers) == 0 && (c.Role == "all" || c.Role == "api") {
		return errors.New("no trusted identity provider: give --issuer (or run --demo)")
	}
	if c.ShutdownTimeout <= 0 {
		return errors.New("--shutdown-timeout must be positive")
	}
	if c.Admission {
		if c.AdmissionFloor <= 0 || c.AdmissionCeiling < c.AdmissionFloor {
			return fmt.Errorf("--admission-floor %g and --admission-ceiling %g: want 0 < floor ≤ ceiling", c.AdmissionFloor, c.AdmissionCeiling)
		}
		if c.AdmissionP90 <= 0 || c.AdmissionP99 < c.AdmissionP90 {
			return fmt.Errorf("--admission-target-p90 %v and --admission-target-p99 %v: want 0 < p90 ≤ p99", c.AdmissionP90, c.AdmissionP99)
		}
		if c.AdmissionMaxSched <= 0 {
			return fmt.Errorf("--admission-max-sched %v: want a positive duration", c.AdmissionMaxSched)
		}
		if _, err := parseAdmissionKeys(c.AdmissionKeys); err != nil {
			return err
		}
	}
	switch booking.RegistryPolicy(c.DemoPolicy) {
	case booking.FailClosed, booking.Provisional:
	default:
		return fmt.Errorf("--demo-registry-policy %q: want fail_closed or provisional", c.DemoPolicy)
	}
	switch sqlstore.NotifyMode(c.OutboxNotify) {
	case sqlstore.NotifyAfterCommit, sqlstore.NotifyInTx:
	default:
		return fmt.Errorf("--outbox-notify %q: want after_commit or in_tx", c.OutboxNotify)
	}
	switch c.Sessions {
	case "rotation", "always", "off":
	default:
		return fmt.Errorf("--sessions %q: want rotation, always or off", c.Sessions)
	}
	if c.RatePerson == 0 || c.RateAddr == 0 {
		return errors.New("--rate-person and --rate-addr must be positive (or negative for off)")
	}
	if c.WarmRate <= 0 || c.WarmLead <= 0 {
		return errors.New("--warm-rate and --warm-lead must be positive")
	}
	if c.IdempotencyMaxAge < time.Hour {
		return errors.New("--idempotency-max-age must be at least 1h (clients retry with the same key)")
	}
	if c.Redis != "" {
		if _, err := redisOptions(c.Redis); err != nil {
			return err
		}
	}
	return nil
}

// print writes the effective configuration, secrets masked.
func (c *config) print(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "yeyakd configuration:")
	fs.VisitAll(func(f *flag.Flag) {
		v := f.Value.String()
		switch {
		case secret[f.Name] && v != "":
			v = "****** (set)"
		case f.Name == "db":
			v = maskDSN(v)
		}
		fmt.Fprintf(w, "  %-18s %s\n", f.Name, v)
	})
}

// maskDSN hides a password in a postgres:// DSN.
func maskDSN(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return dsn
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return dsn
	}
	if user, _, hasPw := strings.Cut(userinfo, ":"); hasPw {
		return scheme + "://" + user + ":******@" + host
	}
	return dsn
}

// clock returns the service clock: the real one, or with --now a clock
// that starts at that instant and runs on.
func (c *config) clock() func() time.Time {
	if c.Now == "" {
		return time.Now
	}
	start, _ := time.Parse(time.RFC3339, c.Now)
	began := time.Now()
	return func() time.Time { return start.Add(time.Since(began)) }
}
