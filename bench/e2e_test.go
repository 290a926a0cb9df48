package bench

import (
	"context"
	"strings"
	"testing"
	"time"
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
	b, err := PrepareBodies(c.Codec, 16, func(i int) Call { return Call{Type: "session-exists", Body: map[string]any{"session_token": "x"}} })
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, tc := range []struct {
		t   *Target
		exp Expect
	}{{h, Expect{Plain: true}}, {c, Expect{}}} {
		st, err := Drive(context.Background(), tc.t, b, tc.exp, RunOptions{Conns: 2, MaxReqs: 200, SampleEvery: 2})
		if err != nil {
			t.Fatal(err)
		}
		checkClean(t, tc.t.Name, st)
	}
}

// TestSuiteSmoke runs every scenario for a moment against our server in
// process: scenarios whose requests the server does not know yet must skip
// with a message, the others must measure with no error.
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
	for _, s := range rep.Scenarios {
		if s.Skipped != "" {
			if !strings.Contains(s.Skipped, "does not support") {
				t.Errorf("%s skipped with %q; want a 'does not support' message", s.Name, s.Skipped)
			}
			continue
		}
		if len(s.Measurements) == 0 {
			t.Errorf("%s: no measurement", s.Name)
		}
		for _, m := range s.Measurements {
			d := m.Median
			if d.Requests == 0 || d.Errors != 0 || d.BadAns != 0 {
				t.Errorf("%s %s: %+v; want requests, no errors, no bad samples", s.Name, m.Name, d)
			}
		}
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
	t.Logf("log:\n%s\ntable:\n%s", log.String(), sb.String())
	if !strings.Contains(sb.String(), "session-exists") {
		t.Errorf("table lacks session-exists:\n%s", sb.String())
	}
	if err := rep.WriteJSON(t.TempDir() + "/r.json"); err != nil {
		t.Error(err)
	}
}
