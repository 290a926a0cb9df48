package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/authnzerver/authnzerver/wire"
)

// Config is one suite run.
type Config struct {
	// URL and Key name an external authnzerver-compatible server; empty URL
	// starts our server in this process on a temporary data directory.
	URL, Key string
	// URL2 is an external server with rate limits on, for ratelimit-check
	// (same key). Empty with an external URL: that measurement is left out.
	URL2 string
	// ServerPID is the external server's process, for the memory scenario's
	// resident-size figures (0: memory is skipped for external servers).
	ServerPID int

	Scenarios []string      // names to run, in order (nil: DefaultScenarios)
	Conns     int           // keep-alive connections per measurement
	Duration  time.Duration // measured window of one run
	Warmup    time.Duration // unrecorded run before the first round
	Runs      int           // rounds; every figure is the median over them
	Rate      float64       // open loop at this many req/s; 0 closed loop
	Sample    int           // decrypt and check one answer in Sample

	Pool          int           // live sessions for the session scenarios
	LoginConns    int           // connections of the login storm
	LoginSessions int           // pre-login sessions made for each login run (bounds it)
	MemoryN       int           // sessions loaded by the memory scenario
	Soak          time.Duration // open-loop run of the soak scenario (0: 10 minutes)
	SoakLoad      float64       // soak rate as a fraction of the mix's closed-loop maximum (0: 0.8)
	CheapHash     bool          // in-process servers: tiny Argon2 parameters
	Shards        int           // in-process servers: AUTHNZERVER_SHARDS (0 default)
	RateLimitsOn  string        // in-process limits-on server: AUTHNZERVER_RATELIMITS
	TempDir       string        // parent of in-process data directories ("" = os.TempDir)
	Progress      io.Writer
	Log           io.Writer // setup and skip messages; nil: discarded

	// Driver is the load generator: "go" (the suite's own, the default),
	// "wrk" (wrk, a load generator in C; "The wrk driver" in
	// bench/README.md) or "both" (every figure wrk can drive is measured by
	// both, in the same round, and reported side by side).
	Driver string
	// Wrk is the wrk binary ("": wrk on $PATH).
	Wrk string
	// WrkCPUs pins wrk to these CPUs (a taskset list, "": wrk runs where
	// the suite does; "Cores and shards" in bench/README.md).
	WrkCPUs string
	// Store is the store of the in-process server: "pebble" (the
	// default), "postgres" (a throwaway PostgreSQL the suite starts), or
	// "both": pebble, and session-check, session-new and login measured
	// on PostgreSQL too, side by side ("The store" in bench/README.md).
	Store string

	// Against are other external servers (same Key) measured in the same
	// rounds as the server under test, scenario by scenario, so that two
	// builds are compared under the same machine noise ("Comparing two
	// builds" in bench/README.md). Their figures are reported as scenarios
	// named "<scenario> @<name>". The scenarios that need a server of their
	// own (ratelimit-check's limits-on twin, metrics-check, memory, soak)
	// are measured on the server under test only.
	Against []Contender

	// ClusterNodes and ServerBin: the cluster scenario (bench/cluster.go).
	ClusterNodes int    // node processes (0: 3)
	ServerBin    string // server binary ("": go build)
}

// Contender is an external server compared with the server under test.
type Contender struct {
	Name, URL string
}

// Drivers are the load generators a Config.Driver asks for, in the order
// each round runs them.
func (c *Config) Drivers() ([]string, error) {
	switch c.Driver {
	case "", DriverGo:
		return []string{DriverGo}, nil
	case DriverWrk:
		return []string{DriverWrk}, nil
	case "both":
		return []string{DriverGo, DriverWrk}, nil
	}
	return nil, fmt.Errorf("bench: unknown driver %q (go, wrk or both)", c.Driver)
}

// The load generators.
const (
	DriverGo  = "go"
	DriverWrk = "wrk"
)

// DefaultScenarios are run when Config.Scenarios is empty. memory is last
// because it loads the most state and restarts its own server. soak is not
// among them: it runs for minutes (Config.Soak); ask for it by name.
var DefaultScenarios = []string{"session-check", "apikey-check", "access-check", "ratelimit-check", "metrics-check", "session-new", "login", "isolation", "mixed", "memory"}

// Defaults fills the zero fields of c.
func (c *Config) Defaults() {
	if len(c.Scenarios) == 0 {
		c.Scenarios = DefaultScenarios
	}
	if c.Conns <= 0 {
		c.Conns = 32
	}
	if c.Duration <= 0 {
		c.Duration = 5 * time.Second
	}
	if c.Runs <= 0 {
		c.Runs = 3
	}
	if c.Sample <= 0 {
		c.Sample = 64
	}
	if c.Pool <= 0 {
		c.Pool = 1000
	}
	if c.LoginConns <= 0 {
		c.LoginConns = 16
	}
	if c.LoginSessions <= 0 {
		c.LoginSessions = 1000
	}
	if c.MemoryN <= 0 {
		c.MemoryN = 1_000_000
	}
	if c.Soak <= 0 {
		c.Soak = 10 * time.Minute
	}
	if c.SoakLoad <= 0 {
		c.SoakLoad = 0.8
	}
	if c.RateLimitsOn == "" {
		// High enough that the benchmark's own traffic is never refused:
		// the figure prices the limiter's bookkeeping, not its refusals.
		// 1,000,000 is inside the limiter's range (values above 2^20 are
		// clamped); over 4096 client addresses that is far more than a run
		// sends.
		c.RateLimitsOn = "ipaddr:1000000; user:1000000; session:1000000; apikey:1000000; burst:1000000"
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// Suite is a running suite: its targets and the state its scenarios set up.
type Suite struct {
	cfg      Config
	main     *Target // server under test
	limitsOn *Target // same server kind with rate limits on (nil: not available)
	hello    *Target
	codec    *Target // codec-only
	stick    *Target // codec-stick
	closers  []func()
	mainCall *caller

	pool  []string    // live sessions on main (lazy)
	users []benchUser // real users (lazy): ensureUsers

	drivers []string
	wrk     *Wrk // nil unless a driver is wrk
	// wrkChecked holds the check pass of each (target, bodies) the wrk
	// driver has run, made before its first run.
	wrkChecked map[wrkKey]Stats

	pg pgServer // -store postgres|both
}

type wrkKey struct {
	url    string
	bodies *Bodies
}

// scenario is a named workload.
type scenario struct {
	name  string
	setup func(ctx context.Context, s *Suite) (*workload, error)
}

// workload is a set up scenario: its measurements run once per round.
type workload struct {
	measures []measure
	// derive computes scenario figures from the median stats of each
	// measurement (by name).
	derive func(med map[string]Stats) map[string]float64
	notes  []string
	close  func()
}

// measure is one measured run; it may report more than one figure (the
// isolation storm reports the logins it ran alongside).
type measure struct {
	name string
	run  func(ctx context.Context, label string) (map[string]Stats, error)
	// goOnly, when not empty, says why only the Go generator can drive
	// this measure; the wrk driver leaves it out.
	goOnly string
}

var scenarios = map[string]scenario{}

func register(name string, setup func(ctx context.Context, s *Suite) (*workload, error)) {
	scenarios[name] = scenario{name: name, setup: setup}
}

// Run runs the suite and returns its report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.Defaults()
	for _, n := range cfg.Scenarios {
		if _, ok := scenarios[n]; !ok {
			return nil, fmt.Errorf("bench: unknown scenario %q (known: %s)", n, strings.Join(sortedKeys(scenarios), ", "))
		}
	}
	drivers, err := cfg.Drivers()
	if err != nil {
		return nil, err
	}
	s := &Suite{cfg: cfg, drivers: drivers, wrkChecked: map[wrkKey]Stats{}}
	defer s.close()
	if err := s.checkStore(); err != nil {
		return nil, err
	}
	if slices.Contains(drivers, DriverWrk) {
		if cfg.Rate > 0 {
			return nil, fmt.Errorf("bench: the wrk driver runs closed loop only: -rate needs -driver go")
		}
		if s.wrk, err = FindWrk(cfg.Wrk); err != nil {
			return nil, err
		}
		s.wrk.TempDir = cfg.TempDir
		s.wrk.CPUs = cfg.WrkCPUs
		if d := time.Duration(wrkSeconds(cfg.Duration)) * time.Second; d != cfg.Duration {
			fmt.Fprintf(cfg.Log, "wrk takes whole seconds: its runs last %v (-d %v)\n", d, cfg.Duration)
		}
	}
	rep := newReport(cfg, drivers)
	if s.wrk != nil {
		rep.Settings.Wrk = s.wrk.Version
	}
	if err := s.startTargets(); err != nil {
		return nil, err
	}
	suites := []*Suite{s}
	for _, c := range cfg.Against {
		cs, err := s.contender(c)
		if err != nil {
			return nil, err
		}
		suites = append(suites, cs)
	}

	// Set every scenario up before the first round, so rounds interleave
	// scenarios and baselines: a burst of machine noise then spreads over
	// all figures instead of spoiling one.
	type live struct {
		name string
		w    *workload
		rep  *ScenarioReport
	}
	var lives []live
	for _, scen := range cfg.Scenarios {
		if scen == "memory" || scen == "soak" {
			continue // run apart, after the rounds
		}
		for i, s := range suites {
			name := scen
			if i > 0 {
				name += " @" + s.main.Name
			}
			sr := &ScenarioReport{Name: name}
			rep.Scenarios = append(rep.Scenarios, sr)
			fmt.Fprintf(cfg.Log, "setup %s\n", name)
			w, err := scenarios[scen].setup(ctx, s)
			if errors.Is(err, ErrSkip) {
				sr.Skipped = err.Error()
				fmt.Fprintf(cfg.Log, "%s: %v\n", name, err)
				continue
			}
			if err != nil {
				return rep, fmt.Errorf("bench: %s setup: %w", name, err)
			}
			if w.close != nil {
				s.closers = append(s.closers, w.close)
			}
			sr.Notes = w.notes
			if !slices.Contains(drivers, DriverGo) {
				// wrk alone: measures only the Go generator can drive are left out.
				var kept []measure
				for _, m := range w.measures {
					if m.goOnly == "" {
						kept = append(kept, m)
					} else {
						sr.Notes = append(sr.Notes, m.name+" not measured: "+m.goOnly)
					}
				}
				if len(kept) == 0 && len(w.measures) > 0 {
					sr.Skipped = "skipped: " + w.measures[0].goOnly + " (use -driver go or both)"
					sr.Notes = nil
					fmt.Fprintf(cfg.Log, "%s: %s\n", name, sr.Skipped)
					continue
				}
				w.measures = kept
			}
			lives = append(lives, live{name, w, sr})
		}
	}
	if twins := twinScenarios(cfg.Scenarios); cfg.Store == StoreBoth && len(twins) > 0 {
		pgs, err := s.postgresTwin()
		if err != nil {
			return rep, err
		}
		for _, name := range twins {
			sr := &ScenarioReport{Name: name + postgresSuffix}
			rep.Scenarios = append(rep.Scenarios, sr)
			fmt.Fprintf(cfg.Log, "setup %s\n", sr.Name)
			w, err := scenarios[name].setup(ctx, pgs)
			if errors.Is(err, ErrSkip) {
				sr.Skipped = err.Error()
				continue
			}
			if err != nil {
				return rep, fmt.Errorf("bench: %s setup: %w", sr.Name, err)
			}
			if w.close != nil {
				s.closers = append(s.closers, w.close)
			}
			sr.Notes = w.notes
			lives = append(lives, live{sr.Name, w, sr})
		}
	}

	baseBodies, err := s.baselineBodies()
	if err != nil {
		return rep, err
	}
	defer baseBodies.Close()
	baseline := func(ctx context.Context, t *Target, label string) (Stats, error) {
		return s.runOn(ctx, t, baseBodies, Expect{Plain: t.Codec == nil}, label, 0)
	}
	// label names the driver when there are several.
	label := func(d, l string) string {
		if len(drivers) > 1 {
			return l + " [" + d + "]"
		}
		return l
	}
	// driversOf are the drivers that run m, in round order.
	driversOf := func(m measure) []string {
		if m.goOnly != "" {
			return []string{DriverGo}
		}
		return drivers
	}
	if cfg.Warmup > 0 && len(lives) > 0 {
		// One warm-up per figure, by the first driver that runs it (the
		// wrk driver's check pass comes with its first run).
		wctx := withDriver(ctx, drivers[0])
		for _, t := range s.baselines() {
			if _, err := s.runFor(wctx, t, baseBodies, Expect{Plain: t.Codec == nil}, label(drivers[0], "warmup "+t.Name), cfg.Warmup); err != nil {
				return rep, err
			}
		}
		for _, l := range lives {
			for _, m := range l.w.measures {
				d := driversOf(m)[0]
				if _, err := m.run(withDriver(withWarmup(ctx, cfg.Warmup), d), label(d, "warmup "+l.name+" "+m.name)); err != nil {
					return rep, fmt.Errorf("bench: warmup %s: %w", l.name, err)
				}
			}
		}
	}

	for round := range cfg.Runs {
		if len(lives) == 0 {
			break
		}
		tag := fmt.Sprintf("[%d/%d] ", round+1, cfg.Runs)
		// Each driver's baselines, in baselineNames' order; every figure's
		// ratios are to the baselines its own driver measured this round.
		bases := map[string]*roundBases{}
		for _, d := range drivers {
			bases[d] = &roundBases{}
		}
		for _, bt := range s.baselines() {
			for _, d := range drivers {
				st, err := baseline(withDriver(ctx, d), bt, label(d, tag+bt.Name))
				if err != nil {
					return rep, err
				}
				switch bt {
				case s.hello:
					bases[d].hello = st
				case s.codec:
					bases[d].codec = st
				case s.stick:
					bases[d].stick = st
				}
			}
		}
		for _, d := range drivers {
			rep.addBaselines(d, *bases[d])
		}
		for _, l := range lives {
			for _, m := range l.w.measures {
				for _, d := range driversOf(m) {
					got, err := m.run(withDriver(ctx, d), label(d, tag+l.name+" "+m.name))
					if err != nil {
						return rep, fmt.Errorf("bench: %s %s (%s driver): %w", l.name, m.name, d, err)
					}
					for _, name := range sortedKeys(got) {
						l.rep.add(name, d, got[name], *bases[d])
					}
				}
			}
		}
	}
	for _, l := range lives {
		l.rep.finish()
		if l.w.derive != nil {
			l.rep.derive(l.w.derive, rep.primaryDriver())
		}
	}
	// soak before memory: memory's server stays up until the suite ends
	// and would count in the in-process soak's resident size.
	if slices.Contains(cfg.Scenarios, "soak") && !slices.Contains(drivers, DriverGo) {
		rep.Soak = &SoakReport{Skipped: "skipped: the soak runs in open loop, which only the Go generator does (use -driver go or both)"}
	} else if slices.Contains(cfg.Scenarios, "soak") {
		sr, err := s.soak(ctx)
		switch {
		case errors.Is(err, ErrSkip):
			rep.Soak = &SoakReport{Skipped: err.Error()}
		case err != nil && sr != nil: // interrupted: keep what was measured
			rep.Soak = sr
			rep.finish()
			return rep, fmt.Errorf("bench: soak: %w", err)
		case err != nil:
			return rep, fmt.Errorf("bench: soak: %w", err)
		default:
			rep.Soak = sr
		}
	}
	if slices.Contains(cfg.Scenarios, "memory") {
		mr, err := s.memory(ctx)
		if errors.Is(err, ErrSkip) {
			rep.Memory = &MemoryReport{Skipped: err.Error()}
		} else if err != nil {
			return rep, fmt.Errorf("bench: memory: %w", err)
		} else {
			rep.Memory = mr
		}
	}
	rep.finish()
	return rep, nil
}

type warmupKey struct{}

type driverKey struct{}

// withDriver makes the runs under ctx use driver d (DriverGo, DriverWrk).
func withDriver(ctx context.Context, d string) context.Context {
	return context.WithValue(ctx, driverKey{}, d)
}

// driverOf is the driver of runs under ctx (DriverGo unless set).
func driverOf(ctx context.Context) string {
	if d, ok := ctx.Value(driverKey{}).(string); ok {
		return d
	}
	return DriverGo
}

// withWarmup marks ctx so a measure runs for d instead of the configured
// window (warmup runs are not recorded).
func withWarmup(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, warmupKey{}, d)
}

// window is the measured window of a run under ctx.
func (s *Suite) window(ctx context.Context) time.Duration {
	if d, ok := ctx.Value(warmupKey{}).(time.Duration); ok {
		return d
	}
	return s.cfg.Duration
}

// runOn runs bodies against t with the suite's connections, window and
// mode, driven by the driver of ctx; maxReqs bounds it by count too (0: no
// bound; Go driver only).
func (s *Suite) runOn(ctx context.Context, t *Target, b *Bodies, exp Expect, label string, maxReqs int64) (Stats, error) {
	if driverOf(ctx) == DriverWrk {
		if maxReqs > 0 {
			return Stats{}, fmt.Errorf("bench: run %s: the wrk driver has no request-count bound", label)
		}
		return s.runWrk(ctx, t, b, exp, label)
	}
	return Drive(ctx, t, b, exp, RunOptions{
		Label: label, Conns: s.cfg.Conns, Duration: s.window(ctx), MaxReqs: maxReqs, Rate: s.cfg.Rate,
		SampleEvery: s.cfg.Sample, Progress: s.cfg.Progress,
	})
}

// runWrk is one wrk run of bodies against t. Before the first run of these
// bodies on t, an unmeasured check pass decrypts and checks a sample of the
// answers (Wrk.Drive); every run's Sampled and BadAns are that pass's. A
// run with any answer not 200 (status above 399, socket error) or a bad
// sample fails: wrk cannot tell which request it was, and a figure made
// of refusals measures the wrong thing.
func (s *Suite) runWrk(ctx context.Context, t *Target, b *Bodies, exp Expect, label string) (Stats, error) {
	if s.wrk == nil {
		return Stats{}, fmt.Errorf("bench: run %s: the wrk driver was not set up", label)
	}
	if exp.BusyOK || exp.FailureOK {
		return Stats{}, fmt.Errorf("bench: run %s: the wrk driver counts every answer above 399 as an error: this workload needs -driver go", label)
	}
	key := wrkKey{t.URL, b}
	chk, ok := s.wrkChecked[key]
	if !ok {
		var err error
		chk, err = s.wrk.Drive(ctx, t, b, exp, WrkOptions{Label: label + " check", Duration: wrkCheckWindow, Check: true, SampleEvery: s.cfg.Sample})
		if err != nil {
			return Stats{}, err
		}
		if chk.Errors > 0 || chk.Sampled == 0 || chk.BadAns > 0 {
			return chk, fmt.Errorf("bench: run %s: wrk check pass: %d answers, %d not 200 or lost, %d/%d sampled answers bad", label, chk.Requests, chk.Errors, chk.BadAns, chk.Sampled)
		}
		s.wrkChecked[key] = chk
	}
	if s.cfg.Progress != nil {
		fmt.Fprintf(s.cfg.Progress, "%-36s wrk -t1 -c%d -d%ds ...\n", label, s.cfg.Conns, wrkSeconds(s.window(ctx)))
	}
	st, err := s.wrk.Drive(ctx, t, b, exp, WrkOptions{Label: label, Conns: s.cfg.Conns, Duration: s.window(ctx)})
	if err != nil {
		return st, err
	}
	st.Sampled, st.BadAns = chk.Sampled, chk.BadAns
	if st.Errors > 0 {
		return st, fmt.Errorf("bench: run %s: wrk counted %d of %d answers not 200 or lost (statuses above 399, socket errors)", label, st.Errors, st.Requests)
	}
	return st, nil
}

func (s *Suite) runFor(ctx context.Context, t *Target, b *Bodies, exp Expect, label string, d time.Duration) (Stats, error) {
	return s.runOn(withWarmup(ctx, d), t, b, exp, label, 0)
}

func (s *Suite) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// startTargets starts the baselines and (unless an external URL is given)
// our server in this process.
func (s *Suite) startTargets() error {
	h, hb, err := startHello()
	if err != nil {
		return err
	}
	s.closers = append(s.closers, hb.close)
	s.hello = h
	key := s.cfg.Key
	if s.cfg.URL == "" {
		key = benchKey
	}
	if key == "" {
		return fmt.Errorf("bench: a key is needed with an external URL")
	}
	c, cb, err := startCodecOnly(key)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, cb.close)
	s.codec = c
	st, sb, err := startCodecStick(key)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, sb.close)
	s.stick = st
	if s.cfg.URL != "" {
		if s.main, err = NewTarget("authnzerver", s.cfg.URL, key); err != nil {
			return err
		}
		if s.cfg.URL2 != "" {
			if s.limitsOn, err = NewTarget("authnzerver-limits-on", s.cfg.URL2, key); err != nil {
				return err
			}
		}
	} else {
		var env map[string]string
		if s.cfg.Store == StorePostgres {
			if env, err = s.postgresEnv(); err != nil {
				return err
			}
		}
		l, err := s.startLocal(env)
		if err != nil {
			return err
		}
		s.main = l.Target
	}
	s.mainCall = newCaller(s.main, 16)
	s.closers = append(s.closers, s.mainCall.close)
	return nil
}

// contender is a suite on the external server c that shares s's baselines,
// drivers and wrk check passes, and is closed with s.
func (s *Suite) contender(c Contender) (*Suite, error) {
	if c.Name == "" || c.URL == "" {
		return nil, fmt.Errorf("bench: a compared server needs a name and a URL (name=URL)")
	}
	key := s.cfg.Key
	if s.cfg.URL == "" {
		key = benchKey // the in-process server's: the compared server must use it too
	}
	t, err := NewTarget(c.Name, c.URL, key)
	if err != nil {
		return nil, err
	}
	cs := &Suite{cfg: s.cfg, drivers: s.drivers, wrk: s.wrk, wrkChecked: s.wrkChecked, hello: s.hello, codec: s.codec, stick: s.stick, main: t}
	cs.cfg.URL, cs.cfg.URL2, cs.cfg.ServerPID = c.URL, "", 0
	cs.mainCall = newCaller(t, 16)
	cs.closers = append(cs.closers, cs.mainCall.close)
	s.closers = append(s.closers, cs.close)
	return cs, nil
}

// baselines are the suite's baseline targets, in baselineNames' order.
func (s *Suite) baselines() []*Target { return []*Target{s.hello, s.codec, s.stick} }

// startLocal starts an in-process server with extra configuration env; it
// is closed with the suite and its data directory removed.
func (s *Suite) startLocal(env map[string]string) (*Local, error) {
	dir, err := os.MkdirTemp(s.cfg.TempDir, "authnzbench-*")
	if err != nil {
		return nil, fmt.Errorf("bench: data dir: %w", err)
	}
	e := map[string]string{}
	if s.cfg.Shards > 0 {
		e["AUTHNZERVER_SHARDS"] = fmt.Sprint(s.cfg.Shards)
	}
	for k, v := range env {
		e[k] = v
	}
	l, err := StartLocal(LocalOptions{DataDir: dir, Env: e, CheapHash: s.cfg.CheapHash})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.closers = append(s.closers, func() { l.Close(); os.RemoveAll(dir) })
	return l, nil
}

// baselineBodies are session-exists requests with made-up tokens: the
// baselines never look inside, and the same size keeps the comparison fair.
func (s *Suite) baselineBodies() (*Bodies, error) {
	b, err := PrepareBodies(s.codec.Codec, 1024, func(i int) Call {
		tok, _ := wire.RandomToken(32)
		return Call{Type: "session-exists", Body: map[string]any{"session_token": tok}, ClientIP: clientIP(i)}
	})
	if err != nil {
		return nil, err
	}
	b.StartRefresh(wire.DefaultMaxAge / 2)
	return b, nil
}

// clientIP spreads requests over 4096 end-user addresses, as a frontend
// serving many users would.
func clientIP(i int) string {
	return fmt.Sprintf("10.%d.%d.%d", (i>>16)&255, (i>>8)&15, i&255)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Machine describes where the figures were taken.
type Machine struct {
	CPU        string  `json:"cpu"`
	Cores      int     `json:"cores"`
	GOMAXPROCS int     `json:"gomaxprocs"`
	GoVersion  string  `json:"go_version"`
	OS         string  `json:"os"`
	Kernel     string  `json:"kernel"`
	LoadAvg    string  `json:"loadavg_at_start"`
	MemTotalGB float64 `json:"mem_total_gb"`
}

func describeMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %f kB", &kb); err == nil {
			m.MemTotalGB = kb / (1 << 20)
		}
	}
	return m
}
