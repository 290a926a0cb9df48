package bench

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestParseWrk reads real wrk 4.1.0 outputs (bench/testdata/wrk-*.txt,
// captured on loopback): with and without the suite script's exact block,
// with status errors, socket errors, no answers at all, and latencies in
// seconds over a run of minutes.
func TestParseWrk(t *testing.T) {
	const us, ms, sec = time.Microsecond, time.Millisecond, time.Second
	for _, tc := range []struct {
		file                           string
		requests                       int64
		duration                       time.Duration
		rps                            float64
		mean, max                      time.Duration
		p50, p90, p99, p999            time.Duration
		non2xx                         int64
		connect, read, write, timeouts int64
		exact                          bool
		// Stats figures
		statsRPS    float64
		statsErrors int64
		curve       bool
	}{
		{file: "wrk-hello-script.txt", requests: 52408, duration: 1009533 * us, rps: 51913.11,
			mean: 555480 * time.Nanosecond, max: 11103 * us, p50: 385 * us, p90: 860 * us, p99: 4296 * us, p999: 9247 * us,
			exact: true, statsRPS: 52408 / 1.009533, curve: true},
		{file: "wrk-status-errors-script.txt", requests: 1096, duration: 1008471 * us, rps: 1086.79,
			mean: 5479120 * time.Nanosecond, max: 25731 * us, p50: 4616 * us, p90: 9764 * us, p99: 18370 * us, p999: 25540 * us,
			non2xx: 1096, exact: true, statsRPS: 1096 / 1.008471, statsErrors: 1096, curve: true},
		{file: "wrk-socket-errors.txt", requests: 119877, duration: 3040 * ms, rps: 39403.35,
			mean: 144090 * time.Nanosecond, max: 9860 * us, p50: 54 * us, p90: 95 * us, p99: 3240 * us,
			read: 9, write: 43512, statsRPS: 119877 / 3.04, statsErrors: 9 + 43512},
		{file: "wrk-no-answers.txt", requests: 0, duration: 2030 * ms, rps: 0},
		{file: "wrk-slow-seconds.txt", requests: 36, duration: time.Minute, rps: 0.60,
			mean: 1140 * ms, max: 1160 * ms, p50: 1150 * ms, p90: 1150 * ms, p99: 1160 * ms,
			read: 5, write: 949079, statsRPS: 36.0 / 60, statsErrors: 5 + 949079},
	} {
		t.Run(tc.file, func(t *testing.T) {
			out, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			r, err := ParseWrk(string(out))
			if err != nil {
				t.Fatal(err)
			}
			if r.Requests != tc.requests || r.Duration != tc.duration || r.RPS != tc.rps || r.Exact != tc.exact {
				t.Errorf("requests %d in %v, %v req/s, exact %v; want %d in %v, %v req/s, exact %v",
					r.Requests, r.Duration, r.RPS, r.Exact, tc.requests, tc.duration, tc.rps, tc.exact)
			}
			if r.Mean != tc.mean || r.Max != tc.max {
				t.Errorf("mean %v max %v; want %v %v", r.Mean, r.Max, tc.mean, tc.max)
			}
			for p, want := range map[float64]time.Duration{50: tc.p50, 90: tc.p90, 99: tc.p99, 99.9: tc.p999} {
				if got := r.Percentiles[p]; got != want {
					t.Errorf("p%v = %v; want %v", p, got, want)
				}
			}
			if r.Non2xx3xx != tc.non2xx || r.Connect != tc.connect || r.Read != tc.read || r.Write != tc.write || r.Timeouts != tc.timeouts {
				t.Errorf("errors: status %d connect %d read %d write %d timeout %d; want %d %d %d %d %d",
					r.Non2xx3xx, r.Connect, r.Read, r.Write, r.Timeouts, tc.non2xx, tc.connect, tc.read, tc.write, tc.timeouts)
			}
			st := r.Stats()
			if diff := st.RPS - tc.statsRPS; diff > 1e-6 || diff < -1e-6 {
				t.Errorf("Stats.RPS = %v; want %v", st.RPS, tc.statsRPS)
			}
			if st.Errors != tc.statsErrors || st.OK != tc.requests-tc.non2xx {
				t.Errorf("Stats errors %d ok %d; want %d %d", st.Errors, st.OK, tc.statsErrors, tc.requests-tc.non2xx)
			}
			if st.P50 != float64(tc.p50)/1e6 || st.P99 != float64(tc.p99)/1e6 {
				t.Errorf("Stats p50 %v p99 %v ms; want %v %v", st.P50, st.P99, float64(tc.p50)/1e6, float64(tc.p99)/1e6)
			}
			if (len(st.Curve) > 0) != tc.curve {
				t.Errorf("curve %v; want one: %v", st.Curve, tc.curve)
			}
			if tc.curve {
				c := st.Curve
				if c[0].P != 0 || c[len(c)-1].Ms != st.Max {
					t.Errorf("curve %v; want it from 0%% (the minimum) to the maximum %v", c, st.Max)
				}
				for i := 1; i < len(c); i++ {
					if c[i].P <= c[i-1].P || c[i].Ms < c[i-1].Ms {
						t.Errorf("curve not increasing at %d: %v", i, c)
					}
				}
			}
		})
	}
}

func TestParseWrkRefusesOddOutput(t *testing.T) {
	for name, out := range map[string]string{
		"empty":           "",
		"usage":           "Usage: wrk <options> <url>\n  Options:\n",
		"no rps":          "  10 requests in 1.00s, 1.00KB read\n",
		"unknown unit":    "  10 requests in 1.00d, 1.00KB read\nRequests/sec: 10.00\n",
		"bad exact block": "  10 requests in 1.00s, 1.00KB read\nRequests/sec: 10.00\nauthnzbench requests=ten\n",
		"bad exact pct":   "  10 requests in 1.00s, 1.00KB read\nRequests/sec: 10.00\nauthnzbench pct 50 x\n",
	} {
		if _, err := ParseWrk(out); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestWrkSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 1, 200 * time.Millisecond: 1, 1400 * time.Millisecond: 1, 2500 * time.Millisecond: 3, 5 * time.Second: 5} {
		if got := wrkSeconds(d); got != want {
			t.Errorf("wrkSeconds(%v) = %d; want %d", d, got, want)
		}
	}
}

// TestNoWrk: a missing wrk is a clear error naming how to install it; the
// suite installs nothing itself.
func TestNoWrk(t *testing.T) {
	_, err := FindWrk(filepath.Join(t.TempDir(), "no-such-wrk"))
	if !errors.Is(err, ErrNoWrk) || !strings.Contains(err.Error(), "apt-get install wrk") {
		t.Errorf("FindWrk of a missing binary: %v; want ErrNoWrk with the install command", err)
	}
	_, err = Run(context.Background(), Config{Driver: "wrk", Wrk: filepath.Join(t.TempDir(), "no-such-wrk"), TempDir: t.TempDir()})
	if !errors.Is(err, ErrNoWrk) {
		t.Errorf("suite with -driver wrk and no wrk: %v; want ErrNoWrk", err)
	}
	if _, err := Run(context.Background(), Config{Driver: "ab"}); err == nil || !strings.Contains(err.Error(), "unknown driver") {
		t.Errorf("unknown driver: %v", err)
	}
}

func needWrk(t *testing.T) *Wrk {
	t.Helper()
	w, err := FindWrk("")
	if err != nil {
		t.Skipf("wrk is not installed, so the wrk driver cannot be exercised (`make bench-deps` installs it): %v", err)
	}
	w.TempDir = t.TempDir()
	return w
}

// TestWrkDriveEndToEnd drives our server, in process, and the three baselines
// with wrk: a check pass (samples decrypted and checked) and a measured
// run, every answer 200; then a wrong key, whose 401s must be counted.
// Speed is never asserted.
func TestWrkDriveEndToEnd(t *testing.T) {
	w := needWrk(t)
	l := startTestLocal(t)
	c := newCaller(l.Target, 4)
	defer c.close()
	pool, err := makeSessions(c, 20, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := PrepareBodies(l.Target.Codec, 64, sessionExistsCall(pool))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	h, hb, err := startHello()
	if err != nil {
		t.Fatal(err)
	}
	defer hb.close()
	cd, cb, err := startCodecOnly(benchKey)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.close()
	cs, csb, err := startCodecStick(benchKey)
	if err != nil {
		t.Fatal(err)
	}
	defer csb.close()
	ctx := context.Background()
	for _, tc := range []struct {
		t   *Target
		exp Expect
	}{{l.Target, Expect{}}, {h, Expect{Plain: true}}, {cd, Expect{}}, {cs, Expect{}}} {
		chk, err := w.Drive(ctx, tc.t, b, tc.exp, WrkOptions{Label: tc.t.Name + " check", Duration: time.Second, Check: true, SampleEvery: 8})
		if err != nil {
			t.Fatal(err)
		}
		if chk.Requests == 0 || chk.Errors != 0 || chk.Sampled == 0 || chk.BadAns != 0 {
			t.Errorf("%s check pass: %+v; want answers, no errors, samples and none bad", tc.t.Name, chk)
		}
		st, err := w.Drive(ctx, tc.t, b, tc.exp, WrkOptions{Label: tc.t.Name, Conns: 4, Duration: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if st.Requests == 0 || st.OK != st.Requests || st.Errors != 0 || st.Sampled != 0 || st.P50 <= 0 || len(st.Curve) == 0 {
			t.Errorf("%s: %+v; want answers all OK, latencies and a curve, nothing sampled (no check)", tc.t.Name, st)
		}
	}

	// Bodies sealed with another key: the server answers 401, which wrk
	// counts, and the check pass keeps no sample.
	bad, err := NewTarget("bad", l.Target.URL, "BBECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if err != nil {
		t.Fatal(err)
	}
	bb, err := PrepareBodies(bad.Codec, 4, func(int) Call { return Call{Type: "session-exists", Body: map[string]any{"session_token": "x"}} })
	if err != nil {
		t.Fatal(err)
	}
	defer bb.Close()
	st, err := w.Drive(ctx, bad, bb, Expect{}, WrkOptions{Label: "wrong key", Duration: time.Second, Check: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Requests == 0 || st.Errors != st.Requests || st.OK != 0 || st.Sampled != 0 {
		t.Errorf("wrong key: %+v; want every answer an error and no sample", st)
	}

	if _, err := w.Drive(ctx, l.Target, b, Expect{}, WrkOptions{Duration: 5 * time.Minute}); err == nil || !strings.Contains(err.Error(), "older than") {
		t.Errorf("a run longer than the freshness window: %v; want a refusal", err)
	}
}

// TestSuiteWrk runs the suite with the wrk driver on the request types the
// later targets are stated for (session-exists with rate limits off and
// on, apikey-verify-nosession, user-check-access, user-check-limit) and
// every baseline, for one short round: every figure has answers, no error,
// a checked sample; login, which wrk cannot drive, is skipped with a reason.
func TestSuiteWrk(t *testing.T) {
	needWrk(t)
	if testing.Short() {
		t.Skip("short")
	}
	var log strings.Builder
	rep, err := Run(context.Background(), Config{
		Driver: DriverWrk, Scenarios: []string{"session-check", "apikey-check", "access-check", "ratelimit-check", "login"},
		Conns: 8, Duration: time.Second, Runs: 1, Pool: 20, LoginConns: 2, LoginSessions: 4,
		CheapHash: true, Shards: 4, TempDir: t.TempDir(), Log: &log, Sample: 4,
	})
	if err != nil {
		t.Fatalf("suite: %v\nlog:\n%s", err, log.String())
	}
	if len(rep.Baselines) != len(baselineNames) {
		t.Errorf("%d baselines; want %q by wrk", len(rep.Baselines), baselineNames)
	}
	want := map[string]bool{}
	for _, n := range []string{"hello", "codec-only", "codec-stick", "session-exists", "apikey-verify-nosession", "user-check-access", "user-check-limit", "session-exists limits off", "session-exists limits on"} {
		want[n] = false
	}
	check := func(m *Measurement) {
		d := m.Median
		if m.Driver != DriverWrk || d.Requests == 0 || d.Errors != 0 || d.Sampled == 0 || d.BadAns != 0 || d.P99 <= 0 {
			t.Errorf("%s (%s): %+v; want wrk figures with answers, no errors, a clean sample", m.Name, m.Driver, d)
		}
		want[m.Name] = true
	}
	for _, b := range rep.Baselines {
		check(b)
	}
	for _, s := range rep.Scenarios {
		if s.Name == "login" {
			if !strings.Contains(s.Skipped, "Go generator") {
				t.Errorf("login with wrk alone: skipped %q; want a reason naming the Go generator", s.Skipped)
			}
			continue
		}
		for _, m := range s.Measurements {
			check(m)
		}
	}
	for n, seen := range want {
		if !seen {
			t.Errorf("no wrk figure for %s", n)
		}
	}
	var sb strings.Builder
	rep.WriteTable(&sb)
	if !strings.Contains(sb.String(), "driver wrk") || !strings.Contains(sb.String(), "  wrk  ") {
		t.Errorf("table does not name the driver:\n%s", sb.String())
	}
}

// TestSideBySide: with both drivers every figure both measured is paired,
// ratios are to each driver's own baselines, the derived figures of the
// secondary driver carry its name, and the hello comparison is a target.
func TestSideBySide(t *testing.T) {
	st := func(rps, p99 float64) Stats {
		return Stats{Requests: int64(rps), OK: int64(rps), Seconds: 1, RPS: rps, P50: p99 / 4, P99: p99}
	}
	r := newReport(Config{Conns: 32, Runs: 1}, []string{DriverGo, DriverWrk})
	gb := roundBases{hello: st(50000, 2), codec: st(25000, 3), stick: st(20000, 3)}
	wb := roundBases{hello: st(80000, 1), codec: st(40000, 2), stick: st(30000, 2)}
	r.addBaselines(DriverGo, gb)
	r.addBaselines(DriverWrk, wb)
	rl := &ScenarioReport{Name: "ratelimit-check"}
	rl.add("session-exists limits off", DriverGo, st(20000, 5), gb)
	rl.add("session-exists limits off", DriverWrk, st(24000, 4), wb)
	rl.add("session-exists limits on", DriverGo, st(18000, 5), gb)
	rl.add("session-exists limits on", DriverWrk, st(12000, 4), wb)
	iso := &ScenarioReport{Name: "isolation"}
	iso.add("session-exists alone", DriverGo, st(20000, 5), gb)
	r.Scenarios = []*ScenarioReport{rl, iso}
	derive := func(med map[string]Stats) map[string]float64 {
		return map[string]float64{"rps_limits_on_vs_off": ratio(med["session-exists limits on"].RPS, med["session-exists limits off"].RPS)}
	}
	for _, s := range r.Scenarios {
		s.finish()
	}
	rl.derive(derive, r.primaryDriver())
	iso.derive(func(map[string]Stats) map[string]float64 { return map[string]float64{"x": 1} }, r.primaryDriver())
	r.finish()

	if got := rl.Derived["rps_limits_on_vs_off"]; got != 0.5 {
		t.Errorf("primary (wrk) rps_limits_on_vs_off = %v; want 0.5", got)
	}
	if got := rl.Derived["rps_limits_on_vs_off_go"]; got != 0.9 {
		t.Errorf("rps_limits_on_vs_off_go = %v; want 0.9", got)
	}
	if _, ok := iso.Derived["x"]; !ok || len(iso.Derived) != 1 {
		t.Errorf("a Go-only scenario's derived figures: %v; want them under their own names", iso.Derived)
	}
	if len(r.Side) != 5 {
		t.Fatalf("side by side: %+v; want hello, codec-only, codec-stick and the two ratelimit figures", r.Side)
	}
	h := r.sidePair("baseline", "hello")
	if h == nil || h.GoRPS != 50000 || h.WrkRPS != 80000 || h.GoVsWrk != 0.625 {
		t.Errorf("hello pair %+v", h)
	}
	off := r.sidePair("ratelimit-check", "session-exists limits off")
	if off == nil || off.GoHello != 0.4 || off.WrkHello != 0.3 || off.WrkCodec != 0.6 || off.GoStick != 1 || off.WrkStick != 0.8 {
		t.Errorf("limits off pair %+v; want ratios to each driver's own baselines (0.4, 0.3, codec-only 0.6, codec-stick 1 and 0.8)", off)
	}
	var hello *TargetCheck
	for i := range r.Targets {
		if strings.Contains(r.Targets[i].Name, "Go generator vs wrk") {
			hello = &r.Targets[i]
		}
	}
	if hello == nil || hello.Met || hello.Value != 0.625 {
		t.Errorf("hello target %+v; want 0.625, not met", hello)
	}
	var sb strings.Builder
	r.WriteTable(&sb)
	if !strings.Contains(sb.String(), "drivers side by side") || !strings.Contains(sb.String(), "wrk ×codec-stick") {
		t.Errorf("table lacks the side-by-side section:\n%s", sb.String())
	}
	var page strings.Builder
	if err := r.RenderHTML(&page); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), "Drivers side by side") || !strings.Contains(page.String(), "hello (wrk)") {
		t.Errorf("HTML report lacks the side-by-side table or driver labels")
	}
}
