package bench

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/authnzerver/authnzerver/wire"
)

func startTestLocal(t testing.TB) *Local {
	t.Helper()
	l, err := StartLocal(LocalOptions{DataDir: t.TempDir(), CheapHash: true, Env: map[string]string{"AUTHNZERVER_SHARDS": "4"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// checkClean fails unless every answer of st had the expected status and
// every sampled answer checked out. Speed is never asserted.
func checkClean(t *testing.T, what string, st Stats) {
	t.Helper()
	if st.Requests == 0 || st.OK != st.Requests || st.Errors != 0 || st.Sampled == 0 || st.BadAns != 0 {
		t.Errorf("%s: %+v; want every request OK, no errors, some samples and none bad", what, st)
	}
}

// TestSessionCheckEndToEnd is a short session-check run against our server
// in process, closed and open loop.
func TestSessionCheckEndToEnd(t *testing.T) {
	l := startTestLocal(t)
	c := newCaller(l.Target, 4)
	defer c.close()
	pool, err := makeSessions(c, 20, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := PrepareBodies(l.Target.Codec, 64, func(i int) Call {
		return Call{Type: "session-exists", ClientIP: clientIP(i), Body: map[string]any{"session_token": pool[i%len(pool)]}}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	st, err := Drive(ctx, l.Target, b, Expect{}, RunOptions{Label: "closed", Conns: 4, Duration: time.Second, SampleEvery: 4})
	if err != nil {
		t.Fatal(err)
	}
	checkClean(t, "closed loop", st)

	st, err = Drive(ctx, l.Target, b, Expect{}, RunOptions{Label: "open", Conns: 4, Duration: 500 * time.Millisecond, Rate: 200, SampleEvery: 4})
	if err != nil {
		t.Fatal(err)
	}
	checkClean(t, "open loop", st)
	if st.Requests > 101 {
		t.Errorf("open loop at 200/s for 0.5 s sent %d requests; want at most 101", st.Requests)
	}

	// A wrong key: every answer is a 401, counted as an error.
	bad, err := NewTarget("bad", l.Target.URL, "BBECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if err != nil {
		t.Fatal(err)
	}
	bb, err := PrepareBodies(bad.Codec, 4, func(int) Call { return Call{Type: "session-exists", Body: map[string]any{"session_token": "x"}} })
	if err != nil {
		t.Fatal(err)
	}
	st, err = Drive(ctx, bad, bb, Expect{}, RunOptions{Conns: 1, MaxReqs: 10})
	if err != nil {
		t.Fatal(err)
	}
	if st.Requests != 10 || st.Errors != 10 {
		t.Errorf("wrong key: %+v; want 10 requests, 10 errors", st)
	}
}

func TestBaselines(t *testing.T) {
	h, hb, err := startHello()
	if err != nil {
		t.Fatal(err)
	}
	defer hb.close()
	c, cb, err := startCodecOnly(benchKey)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.close()
	s, sb, err := startCodecStick(benchKey)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.close()
	b, err := PrepareBodies(c.Codec, 16, func(i int) Call { return Call{Type: "session-exists", Body: map[string]any{"session_token": "x"}} })
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, tc := range []struct {
		t   *Target
		exp Expect
	}{{h, Expect{Plain: true}}, {c, Expect{}}, {s, Expect{}}} {
		st, err := Drive(context.Background(), tc.t, b, tc.exp, RunOptions{Conns: 2, MaxReqs: 200, SampleEvery: 2})
		if err != nil {
			t.Fatal(err)
		}
		checkClean(t, tc.t.Name, st)
	}
}

// TestSuiteSmoke runs every scenario for a moment against our server in
// process: every request type exists now, so none may skip, and every
// figure must come with no error and no bad sample.
func TestSuiteSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	var log strings.Builder
	rep, err := Run(context.Background(), Config{
		Conns: 4, Duration: 200 * time.Millisecond, Runs: 1, Pool: 20, LoginConns: 4, LoginSessions: 20,
		MemoryN: 2000, CheapHash: true, Shards: 4, TempDir: t.TempDir(), Log: &log, Sample: 4,
	})
	if err != nil {
		t.Fatalf("suite: %v\nlog:\n%s", err, log.String())
	}
	if len(rep.Scenarios) != len(DefaultScenarios)-1 {
		t.Fatalf("%d scenario reports; want %d", len(rep.Scenarios), len(DefaultScenarios)-1)
	}
	want := map[string][]string{
		"session-check":   {"session-exists"},
		"apikey-check":    {"apikey-verify-nosession", "apikey-verify"},
		"access-check":    {"user-check-access"},
		"ratelimit-check": {"user-check-limit", "session-exists limits off", "session-exists limits on"},
		"metrics-check":   {"session-exists metrics off", "session-exists metrics on"},
		"session-new":     {"session-new"},
		"login":           {"user-login"},
		"isolation":       {"session-exists alone", "session-exists during login storm", "user-login storm"},
		"mixed":           {"mix"},
	}
	for _, s := range rep.Scenarios {
		if s.Skipped != "" {
			t.Errorf("%s skipped: %s; want every scenario to run", s.Name, s.Skipped)
			continue
		}
		var got []string
		for _, m := range s.Measurements {
			got = append(got, m.Name)
			d := m.Median
			if d.Requests == 0 || d.OK == 0 || d.Errors != 0 || d.BadAns != 0 || d.Limited != 0 {
				t.Errorf("%s %s: %+v; want answers, no errors, no 429, no bad samples", s.Name, m.Name, d)
			}
		}
		for _, n := range want[s.Name] {
			if !slices.Contains(got, n) {
				t.Errorf("%s: figures %q; want %q among them", s.Name, got, n)
			}
		}
		if len(s.Notes) > 0 && s.Name != "mixed" {
			t.Errorf("%s: notes %q; want none (something was left out)", s.Name, s.Notes)
		}
	}
	for _, d := range []struct{ scen, name string }{{"ratelimit-check", "rps_limits_on_vs_off"}, {"isolation", "p99_ratio_storm_vs_alone"}} {
		if s := rep.scenario(d.scen); s == nil || s.Derived[d.name] <= 0 {
			t.Errorf("%s: no derived %s", d.scen, d.name)
		}
	}
	if s := rep.scenario("mixed"); s == nil || len(s.Notes) != 1 || strings.Contains(s.Notes[0], "left out") {
		t.Errorf("mixed notes: %v; want only the mix sent, nothing left out", s)
	}
	for i, b := range rep.Baselines {
		if b.Name != baselineNames[i] || b.Median.Requests == 0 || b.Median.Errors != 0 || b.Median.BadAns != 0 {
			t.Errorf("baseline %d: %s %+v; want %s with answers, no errors, no bad samples", i, b.Name, b.Median, baselineNames[i])
		}
	}
	if len(rep.Baselines) != len(baselineNames) {
		t.Errorf("%d baselines; want %q", len(rep.Baselines), baselineNames)
	}
	if rep.scenario("session-check") == nil || rep.scenario("session-new") == nil {
		t.Error("session-check and session-new must run against our server")
	}
	mr := rep.Memory
	if mr == nil || mr.Skipped != "" || mr.Sessions != 2000 || mr.Load.OK != 2000 || !mr.Verified || mr.RestartSeconds <= 0 {
		t.Errorf("memory: %+v; want 2000 sessions loaded and one found after a timed restart", mr)
	}
	var sb strings.Builder
	rep.WriteTable(&sb)
	if !strings.Contains(sb.String(), "session-exists") {
		t.Errorf("table lacks session-exists:\n%s", sb.String())
	}
	if err := rep.WriteJSON(t.TempDir() + "/r.json"); err != nil {
		t.Error(err)
	}
	var page strings.Builder
	if err := rep.RenderHTML(&page); err != nil {
		t.Error(err)
	} else if n := strings.Count(page.String(), "<svg"); n != 2+len(rep.Scenarios) {
		t.Errorf("HTML report of the smoke run has %d charts; want %d (throughput, ratios, one per scenario)", n, 2+len(rep.Scenarios))
	}
	if dir := os.Getenv("AUTHNZBENCH_SMOKE_HTML"); dir != "" {
		_ = rep.WriteHTML(dir) // for looking at a real report by eye
	}
}

// TestBusyRetry: with BusyRetry, a 503 is counted as busy and the same body
// is sent again; the request counts once, when it is answered.
func TestBusyRetry(t *testing.T) {
	ln, err := listenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if n.Add(1) <= 3 {
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			return
		}
		ctx.SetBodyString("ok")
	}}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Shutdown()
	tg, err := NewTarget("busy", "http://"+ln.Addr().String()+"/", "")
	if err != nil {
		t.Fatal(err)
	}
	codec, err := wire.NewCodec([]string{benchKey}, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := PrepareBodies(codec, 2, func(int) Call { return Call{Type: "x"} })
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	st, err := Drive(context.Background(), tg, b, Expect{Plain: true, BusyOK: true}, RunOptions{Conns: 1, MaxReqs: 2, SampleEvery: 1, BusyRetry: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if st.Requests != 2 || st.OK != 2 || st.Busy != 3 || st.Errors != 0 || st.BadAns != 0 {
		t.Errorf("got %+v; want 2 requests answered ok after 3 busy answers", st)
	}
}

// TestSuiteAgainst measures a second server in the same rounds: each
// scenario is reported for both, the second under "<scenario> @<name>",
// with the same figures and no errors; the scenarios that need a server of
// their own run on the first only.
func TestSuiteAgainst(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	other := startTestLocal(t)
	var log strings.Builder
	rep, err := Run(context.Background(), Config{
		Scenarios: []string{"session-check", "login", "metrics-check"},
		Conns:     4, Duration: 200 * time.Millisecond, Runs: 2, Pool: 20, LoginConns: 4, LoginSessions: 20,
		CheapHash: true, Shards: 4, TempDir: t.TempDir(), Log: &log, Sample: 4,
		Against: []Contender{{Name: "other", URL: other.Target.URL}},
	})
	if err != nil {
		t.Fatalf("suite: %v\nlog:\n%s", err, log.String())
	}
	var names []string
	for _, s := range rep.Scenarios {
		names = append(names, s.Name)
	}
	want := []string{"session-check", "session-check @other", "login", "login @other", "metrics-check", "metrics-check @other"}
	if !slices.Equal(names, want) {
		t.Fatalf("scenario reports %q; want %q", names, want)
	}
	for _, pair := range [][2]string{{"session-check", "session-exists"}, {"login", "user-login"}} {
		a, b := rep.scenario(pair[0]), rep.scenario(pair[0]+" @other")
		for _, s := range []*ScenarioReport{a, b} {
			if len(s.Measurements) != 1 || s.Measurements[0].Name != pair[1] {
				t.Errorf("%s: measurements %+v; want one %s", s.Name, s.Measurements, pair[1])
				continue
			}
			if d := s.Measurements[0].Median; d.Requests == 0 || d.Errors != 0 || d.BadAns != 0 {
				t.Errorf("%s: %+v; want answers, no errors, no bad samples", s.Name, d)
			}
		}
	}
	if s := rep.scenario("metrics-check @other"); s == nil || len(s.Measurements) != 0 || len(s.Notes) == 0 {
		t.Errorf("metrics-check on the compared server: %+v; want no figure and a note (it needs a server of its own)", s)
	}
}
