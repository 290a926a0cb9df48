package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/authnzerver/authnzerver/wire"
)

// The wrk driver (its section in bench/README.md) measures with wrk, a
// load generator in C, instead of the suite's Go generator, which spends
// enough CPU on a 2-core machine to hold a bare hello down and so flatters
// every ratio to it. wrk replays the same pre-sealed bodies: the suite
// seals them right before each run, writes them to a file, one a line, and
// a generated Lua script builds every HTTP request from them once, in
// init; its request function only hands the next one out, round robin.
//
// A measured run has no Lua response function (wrk then buffers every
// answer's headers and body and calls Lua for each, about a quarter more
// CPU per request): wrk's own counters check every answer's status
// (statuses above 399, socket errors) and any is a failed measurement.
// Answer contents are checked once per workload by a separate, unmeasured
// check pass on one connection, where answers come back in request order:
// its response function keeps one answer in Sample with the index of the
// body it answers, and the suite decrypts those and checks them as the Go
// generator checks its samples (success, reqid).

// ErrNoWrk is returned when the wrk driver is asked for and no wrk binary
// is found. The suite never installs anything itself.
var ErrNoWrk = errors.New("wrk not found: install it with `apt-get install wrk` (Debian/Ubuntu; `make bench-deps` does it), give its path with -wrk, or use -driver go")

// wrkMaxWindow bounds a wrk run: the bodies are sealed once, just before
// the run, and the server refuses tokens older than its freshness window
// (wire.DefaultMaxAge, 120 s); the margin covers the check pass, start-up
// and clock granularity.
const wrkMaxWindow = wire.DefaultMaxAge - 20*time.Second

// wrkCheckWindow is the check pass's run (wrk takes whole seconds).
const wrkCheckWindow = time.Second

// Wrk is a wrk binary.
type Wrk struct {
	Path    string
	Version string // first line of `wrk --version`
	TempDir string // parent of each run's directory ("": os.TempDir)
	// CPUs, when set, pins every wrk run to these CPUs (a taskset list
	// such as "1" or "0,1"). A child inherits its parent's affinity, so a
	// suite started under `taskset -c 0` would otherwise run wrk on the
	// server's core: this says where the load generator runs instead
	// ("Cores and shards" in bench/README.md).
	CPUs    string
	taskset string // taskset binary, found when CPUs is set
}

// FindWrk locates wrk: path if given, else "wrk" on $PATH. A missing
// binary is ErrNoWrk.
func FindWrk(path string) (*Wrk, error) {
	if path == "" {
		path = "wrk"
	}
	p, err := exec.LookPath(path)
	if err != nil {
		return nil, fmt.Errorf("bench: %w (%v)", ErrNoWrk, err)
	}
	// `wrk --version` prints its banner and usage and exits 1.
	out, _ := exec.Command(p, "--version").CombinedOutput()
	first, _, _ := strings.Cut(string(out), "\n")
	first = strings.TrimSpace(first)
	if !strings.HasPrefix(first, "wrk ") {
		return nil, fmt.Errorf("bench: %s does not look like wrk (--version printed %q)", p, first)
	}
	return &Wrk{Path: p, Version: first}, nil
}

// WrkOptions bound one wrk run.
type WrkOptions struct {
	Label    string
	Conns    int           // keep-alive connections (wrk -c); one thread drives them all (-t1)
	Duration time.Duration // measured window; wrk takes whole seconds, so it is rounded (at least 1 s)
	// Check makes this a check pass: one connection, a Lua response
	// function that keeps one answer in SampleEvery (and the first) for
	// checkAnswer. Its figures are not a measurement.
	Check       bool
	SampleEvery int
}

// wrkSeconds is d in the whole seconds wrk accepts (at least 1).
func wrkSeconds(d time.Duration) int {
	return max(1, int(math.Round(d.Seconds())))
}

// Drive runs wrk against t with bodies and returns its figures. Every
// answer's status is counted by wrk (Stats.Errors: statuses above 399 and
// socket errors); with opts.Check the kept answers are decrypted and
// checked (Stats.Sampled, Stats.BadAns). wrk's latency is the round trip
// of each request (closed loop), in microseconds.
func (w *Wrk) Drive(ctx context.Context, t *Target, bodies *Bodies, exp Expect, opts WrkOptions) (Stats, error) {
	secs := wrkSeconds(opts.Duration)
	if time.Duration(secs)*time.Second > wrkMaxWindow {
		return Stats{}, fmt.Errorf("bench: run %s: the wrk driver replays bodies sealed just before the run and the server refuses tokens older than %v: keep -d at or under %v, or use -driver go (which re-seals during the run)", opts.Label, wire.DefaultMaxAge, wrkMaxWindow)
	}
	if !exp.Plain && t.Codec == nil {
		return Stats{}, fmt.Errorf("bench: run %s: target %s has no key", opts.Label, t.Name)
	}
	conns := max(1, opts.Conns)
	every := opts.SampleEvery
	if every <= 0 {
		every = 64
	}
	if opts.Check {
		conns = 1 // an answer is to the last request handed out
	}
	dir, err := os.MkdirTemp(w.TempDir, "authnzbench-wrk-*")
	if err != nil {
		return Stats{}, fmt.Errorf("bench: wrk: %w", err)
	}
	defer os.RemoveAll(dir)
	sealed, err := bodies.SealedNow()
	if err != nil {
		return Stats{}, err
	}
	bodiesPath, scriptPath, samplesPath := dir+"/bodies.txt", dir+"/script.lua", dir+"/samples.txt"
	if err := os.WriteFile(bodiesPath, append(bytes.Join(sealed, []byte("\n")), '\n'), 0o600); err != nil {
		return Stats{}, fmt.Errorf("bench: wrk: %w", err)
	}
	checkEvery := 0
	if opts.Check {
		checkEvery = every
	}
	if err := os.WriteFile(scriptPath, []byte(wrkScript(bodiesPath, samplesPath, checkEvery)), 0o600); err != nil {
		return Stats{}, fmt.Errorf("bench: wrk: %w", err)
	}
	args := []string{"-t1", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(secs) + "s", "--timeout", "30s", "--latency", "-s", scriptPath, t.URL}
	name, argv := w.Path, args
	if w.CPUs != "" {
		if w.taskset == "" {
			p, err := exec.LookPath("taskset")
			if err != nil {
				return Stats{}, fmt.Errorf("bench: run %s: -wrk-cpus needs taskset (util-linux): %w", opts.Label, err)
			}
			w.taskset = p
		}
		name, argv = w.taskset, append([]string{"-c", w.CPUs, w.Path}, args...)
	}
	cmd := exec.CommandContext(ctx, name, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return Stats{}, ctx.Err()
		}
		return Stats{}, fmt.Errorf("bench: run %s: wrk %s: %v: %s%s", opts.Label, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()), strings.TrimSpace(stdout.String()))
	}
	res, err := ParseWrk(stdout.String())
	if err != nil {
		return Stats{}, fmt.Errorf("bench: run %s: %w\nwrk output:\n%s", opts.Label, err, stdout.String())
	}
	st := res.Stats()
	if opts.Check {
		if st.Sampled, st.BadAns, err = checkWrkSamples(t, exp, samplesPath, len(sealed)); err != nil {
			return st, fmt.Errorf("bench: run %s: %w", opts.Label, err)
		}
	}
	return st, nil
}

// checkWrkSamples reads the answers a check pass kept ("index body" a
// line) and checks each: it decrypts, succeeds and carries the reqid of
// body index (checkAnswer). It returns how many were checked and bad.
func checkWrkSamples(t *Target, exp Expect, path string, n int) (sampled, bad int64, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("wrk check pass wrote no samples: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		idx, body, ok := strings.Cut(sc.Text(), " ")
		i, perr := strconv.Atoi(idx)
		if !ok || perr != nil || i < 0 || i >= n {
			return sampled, bad, fmt.Errorf("wrk check pass: odd sample line %.80q", sc.Text())
		}
		sampled++
		if checkAnswer(t, exp, []byte(body), i) != nil {
			bad++
		}
	}
	return sampled, bad, sc.Err()
}

// wrkScript is the Lua script of a run: bodies from bodiesPath, one a
// line; checkEvery > 0 makes it a check pass that writes one answer in
// checkEvery to samplesPath. Lines "authnzbench ..." printed by done carry
// the exact figures (microseconds) the standard summary rounds.
func wrkScript(bodiesPath, samplesPath string, checkEvery int) string {
	var pcts []string
	for _, p := range wrkPercentiles() {
		pcts = append(pcts, strconv.FormatFloat(p, 'g', -1, 64))
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `-- Generated by authnzbench (bench/wrk.go): replays pre-sealed bodies.
local bodies_path = %q
local samples_path = %q
local check_every = %d
local pcts = {%s}

local reqs, n, i = {}, 0, 0

function init(args)
  for line in io.lines(bodies_path) do
    if #line > 0 then
      n = n + 1
      reqs[n] = wrk.format("POST", nil, {["Content-Type"] = "text/plain; charset=UTF-8"}, line)
    end
  end
  if n == 0 then error("authnzbench: no bodies in " .. bodies_path) end
end

-- The whole per-request cost: hand out the next prepared request.
function request()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end
`, bodiesPath, samplesPath, checkEvery, strings.Join(pcts, ", "))
	if checkEvery > 0 {
		sb.WriteString(`
-- Check pass only. On one connection without pipelining an answer is to
-- the last request handed out, reqs[i], whose body has reqid i-1 (wrk
-- also calls request once before the run, to count pipelined requests, so
-- the number of answers is no guide).
-- wrk counts the statuses above 399 itself; only 200 answers are kept.
seen, samples = 0, {}
function response(status, headers, body)
  seen = seen + 1
  if status == 200 and (seen - 1) % check_every == 0 then
    samples[#samples + 1] = (i - 1) .. " " .. body
  end
end

local threads = {}
function setup(thread) threads[#threads + 1] = thread end
`)
	}
	sb.WriteString(`
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("authnzbench requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d min_us=%d max_us=%d mean_us=%.3f stdev_us=%.3f\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean, latency.stdev))
  for _, p in ipairs(pcts) do
    io.write(string.format("authnzbench pct %.15g %d\n", p, latency:percentile(p)))
  end
`)
	if checkEvery > 0 {
		sb.WriteString(`  local f = assert(io.open(samples_path, "w"))
  for _, t in ipairs(threads) do
    for _, s in ipairs(t:get("samples")) do f:write(s, "\n") end
  end
  f:close()
`)
	}
	sb.WriteString("end\n")
	return sb.String()
}

// wrkPercentiles are the percentiles the script's done prints exactly: the
// report's four (50, 90, 99, 99.9) and the percentile curve's points.
func wrkPercentiles() []float64 {
	out := []float64{50, 90, 99, 99.9}
	return append(out, curvePercentiles...)
}

// WrkResult is what one wrk run printed: the standard summary (rounded by
// wrk to two decimals) and, when the run used the suite's script, the
// exact figures of its "authnzbench" lines.
type WrkResult struct {
	Requests int64         // answers completed ("N requests in ...")
	Duration time.Duration // the run ("... in 2.00s")
	RPS      float64       // "Requests/sec:"
	// Thread stats line "Latency avg stdev max".
	Mean, Stdev, Max time.Duration
	// Percentiles: the --latency distribution (50, 75, 90, 99), replaced
	// and extended by the exact ones when present.
	Percentiles map[float64]time.Duration
	Min         time.Duration // exact block only
	// Non2xx3xx is wrk's count of statuses above 399 ("Non-2xx or 3xx
	// responses"; wrk counts status > 399 only, despite the wording).
	Non2xx3xx                      int64
	Connect, Read, Write, Timeouts int64 // "Socket errors: ..."
	Exact                          bool  // the authnzbench lines were found
}

var (
	reWrkRequests = regexp.MustCompile(`^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m|h),`)
	reWrkRPS      = regexp.MustCompile(`^Requests/sec:\s+([0-9.]+)`)
	reWrkLatency  = regexp.MustCompile(`^\s+Latency\s+([0-9.]+)(us|ms|s|m|h)\s+([0-9.]+)(us|ms|s|m|h)\s+([0-9.]+)(us|ms|s|m|h)`)
	reWrkPct      = regexp.MustCompile(`^\s+([0-9.]+)%\s+([0-9.]+)(us|ms|s|m|h)\s*$`)
	reWrkNon2xx   = regexp.MustCompile(`^\s*Non-2xx or 3xx responses: (\d+)`)
	reWrkSocket   = regexp.MustCompile(`^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// wrkTime parses a wrk time figure: v in unit (us, ms, s, m, h).
func wrkTime(v, unit string) (time.Duration, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, err
	}
	mult := map[string]float64{"us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("unknown time unit %q", unit)
	}
	return time.Duration(math.Round(f * mult)), nil
}

// ParseWrk reads wrk's output (as printed with --latency, with or without
// the suite's script). The request count and Requests/sec lines are
// required; the others are read when present.
func ParseWrk(out string) (WrkResult, error) {
	r := WrkResult{Percentiles: map[float64]time.Duration{}}
	var haveReqs, haveRPS, inDist bool
	var exactLines []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.HasPrefix(line, "authnzbench ") {
			exactLines = append(exactLines, line)
			continue
		}
		if strings.TrimSpace(line) == "Latency Distribution" {
			inDist = true
			continue
		}
		if inDist {
			if m := reWrkPct.FindStringSubmatch(line); m != nil {
				p, err1 := strconv.ParseFloat(m[1], 64)
				d, err2 := wrkTime(m[2], m[3])
				if err := errors.Join(err1, err2); err != nil {
					return r, fmt.Errorf("wrk output: %q: %w", line, err)
				}
				r.Percentiles[p] = d
				continue
			}
			inDist = false
		}
		var err error
		if m := reWrkLatency.FindStringSubmatch(line); m != nil {
			var e1, e2, e3 error
			r.Mean, e1 = wrkTime(m[1], m[2])
			r.Stdev, e2 = wrkTime(m[3], m[4])
			r.Max, e3 = wrkTime(m[5], m[6])
			err = errors.Join(e1, e2, e3)
		} else if m := reWrkRequests.FindStringSubmatch(line); m != nil {
			var e1, e2 error
			r.Requests, e1 = strconv.ParseInt(m[1], 10, 64)
			r.Duration, e2 = wrkTime(m[2], m[3])
			err, haveReqs = errors.Join(e1, e2), true
		} else if m := reWrkRPS.FindStringSubmatch(line); m != nil {
			r.RPS, err = strconv.ParseFloat(m[1], 64)
			haveRPS = true
		} else if m := reWrkNon2xx.FindStringSubmatch(line); m != nil {
			r.Non2xx3xx, err = strconv.ParseInt(m[1], 10, 64)
		} else if m := reWrkSocket.FindStringSubmatch(line); m != nil {
			var es [4]error
			r.Connect, es[0] = strconv.ParseInt(m[1], 10, 64)
			r.Read, es[1] = strconv.ParseInt(m[2], 10, 64)
			r.Write, es[2] = strconv.ParseInt(m[3], 10, 64)
			r.Timeouts, es[3] = strconv.ParseInt(m[4], 10, 64)
			err = errors.Join(es[:]...)
		}
		if err != nil {
			return r, fmt.Errorf("wrk output: %q: %w", line, err)
		}
	}
	if !haveReqs || !haveRPS {
		return r, fmt.Errorf("wrk output has no request count or Requests/sec line")
	}
	// The exact figures of the suite's script replace the rounded ones.
	exact := map[float64]time.Duration{}
	for _, line := range exactLines {
		if err := r.parseExact(strings.TrimPrefix(line, "authnzbench "), exact); err != nil {
			return r, fmt.Errorf("wrk output: %q: %w", line, err)
		}
	}
	for p, d := range exact {
		r.Percentiles[p] = d
	}
	return r, nil
}

// parseExact reads one line of the suite script's done block: either
// "key=value ..." (counts and microseconds) or "pct P MICROS".
func (r *WrkResult) parseExact(s string, pcts map[float64]time.Duration) error {
	f := strings.Fields(s)
	if len(f) == 3 && f[0] == "pct" {
		p, err1 := strconv.ParseFloat(f[1], 64)
		us, err2 := strconv.ParseInt(f[2], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		// Lua prints 15 significant digits: snap to the percentile asked for.
		for _, q := range wrkPercentiles() {
			if math.Abs(p-q) < 1e-9 {
				p = q
			}
		}
		pcts[p] = time.Duration(us) * time.Microsecond
		return nil
	}
	for _, kv := range f {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("no key=value in %q", kv)
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return err
		}
		us := time.Duration(math.Round(x * 1e3))
		switch k {
		case "requests":
			r.Requests = int64(x)
		case "duration_us":
			r.Duration = us
		case "connect":
			r.Connect = int64(x)
		case "read":
			r.Read = int64(x)
		case "write":
			r.Write = int64(x)
		case "status":
			r.Non2xx3xx = int64(x)
		case "timeout":
			r.Timeouts = int64(x)
		case "min_us":
			r.Min = us
		case "max_us":
			r.Max = us
		case "mean_us":
			r.Mean = us
		case "stdev_us":
			r.Stdev = us
		}
	}
	r.Exact = true
	return nil
}

// Stats converts a wrk result to the suite's figures. Requests counts
// answers plus transport errors, as the Go generator does; Errors is
// statuses above 399 plus socket errors; RPS is answers per second, as
// wrk's Requests/sec. Without the exact block the percentiles are wrk's
// rounded 50/90/99 and there is no p99.9 or curve.
func (r WrkResult) Stats() Stats {
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	sockErrs := r.Connect + r.Read + r.Write + r.Timeouts
	s := Stats{
		Requests: r.Requests + r.Read + r.Write + r.Timeouts,
		OK:       r.Requests - r.Non2xx3xx,
		Errors:   r.Non2xx3xx + sockErrs,
		Seconds:  r.Duration.Seconds(),
		Mean:     ms(r.Mean),
		Max:      ms(r.Max),
	}
	if s.Seconds > 0 {
		s.RPS = float64(r.Requests) / s.Seconds
	} else {
		s.RPS = r.RPS
	}
	s.P50, s.P90, s.P99, s.P999 = ms(r.Percentiles[50]), ms(r.Percentiles[90]), ms(r.Percentiles[99]), ms(r.Percentiles[99.9])
	if r.Exact && r.Requests > 0 {
		s.Curve = curveFrom(r.Requests, func(p float64) float64 {
			if p == 0 {
				return ms(r.Min)
			}
			return ms(r.Percentiles[p])
		}, ms(r.Max))
	}
	return s
}
