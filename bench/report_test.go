package bench

import (
	"strings"
	"testing"
)

// TestTargetRounds: a target is checked on the medians and on each round
// of its own, and the report says in how many rounds it was met.
func TestTargetRounds(t *testing.T) {
	st := func(rps, p99 float64) Stats {
		return Stats{Requests: int64(rps), OK: int64(rps), Seconds: 1, RPS: rps, P50: p99 / 4, P99: p99}
	}
	r := newReport(Config{Conns: 32, Runs: 3}, []string{DriverWrk})
	sc := &ScenarioReport{Name: "session-check"}
	ak := &ScenarioReport{Name: "apikey-check"}
	// hello 100k each round; session-exists 0.62, 0.55 and 0.65 of it;
	// apikey 0.95, 1.0 and 0.80 of session-exists in the same round.
	for _, round := range []struct{ se, ak, p99 float64 }{{62000, 58900, 3}, {55000, 55000, 5}, {65000, 52000, 1}} {
		b := roundBases{hello: st(100000, 2), codec: st(70000, 3), stick: st(35000, 4)}
		r.addBaselines(DriverWrk, b)
		sc.add("session-exists", DriverWrk, st(round.se, round.p99), b)
		ak.add("apikey-verify-nosession", DriverWrk, st(round.ak, 3), b)
	}
	r.Scenarios = []*ScenarioReport{sc, ak}
	for _, s := range r.Scenarios {
		s.finish()
	}
	r.finish()

	want := map[string]struct {
		value      float64
		met        bool
		roundsMet  int
		roundsSeen int
	}{
		"session-check req/s vs hello":                   {0.62, true, 2, 3},
		"session-check p99 vs hello's p99":               {1.5, true, 2, 3},
		"apikey-verify-nosession req/s vs session-check": {55000.0 / 62000, false, 2, 3},
	}
	for _, tc := range r.Targets {
		w, ok := want[tc.Name]
		if !ok {
			continue
		}
		delete(want, tc.Name)
		if diff := tc.Value - w.value; diff > 1e-9 || diff < -1e-9 || tc.Met != w.met || tc.RoundsMet != w.roundsMet || tc.Rounds != w.roundsSeen {
			t.Errorf("%s: %+v; want value %.4f, met %v, %d of %d rounds", tc.Name, tc, w.value, w.met, w.roundsMet, w.roundsSeen)
		}
	}
	for name := range want {
		t.Errorf("no target %q", name)
	}
	var sb strings.Builder
	r.WriteTable(&sb)
	if !strings.Contains(sb.String(), "MET, 2 of 3 rounds") {
		t.Errorf("table does not count the rounds:\n%s", sb.String())
	}
}
