package bench

import (
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// syntheticReport is a small report as a suite run would produce: three
// baselines, two scenarios (one with two figures), a skipped one, memory
// and targets. Names carry markup to check the escaping.
func syntheticReport() *Report {
	st := func(rps, p50 float64) Stats {
		s := Stats{Requests: int64(rps), OK: int64(rps), Seconds: 1, RPS: rps, P50: p50, P90: 2 * p50, P99: 5 * p50, P999: 9 * p50, Max: 20 * p50, Sampled: 10}
		for _, p := range curvePercentiles[:13] {
			s.Curve = append(s.Curve, Pct{P: p, Ms: p50 * (1 + nines(p)*nines(p))})
		}
		return s
	}
	cfg := Config{Conns: 32, Duration: time.Second, Runs: 1, Sample: 64, Pool: 1000, MemoryN: 2000}
	r := newReport(cfg, []string{DriverGo})
	b := roundBases{hello: st(40000, 0.05), codec: st(25000, 0.08), stick: st(20000, 0.1)}
	r.addBaselines(DriverGo, b)
	sc := &ScenarioReport{Name: "session-check"}
	sc.add("session-exists", DriverGo, st(15000, 0.2), b)
	rl := &ScenarioReport{Name: "ratelimit-check", Notes: []string{"a note <b>not bold</b>"}}
	rl.add("session-exists limits off", DriverGo, st(14000, 0.2), b)
	rl.add("session-exists limits on <script>", DriverGo, st(13000, 0.25), b)
	r.Scenarios = []*ScenarioReport{sc, rl, {Name: "login", Skipped: "skipped: the server does not support \"user-login\" yet"}}
	for _, s := range r.Scenarios {
		s.finish()
	}
	rl.Derived = map[string]float64{"rps_limits_on_vs_off": 13.0 / 14}
	r.Memory = &MemoryReport{Sessions: 2000, RSSBefore: 50 << 20, RSSAfter: 51 << 20, BytesPerSession: 524, RestartSeconds: 0.05, Verified: true}
	r.finish()
	return r
}

// TestHTMLReport: the HTML report of a small synthetic result is one
// self-contained page (no script, no stylesheet or image from anywhere,
// no network address), with one well-formed SVG per chart: throughput,
// ratios, and a percentile chart per scenario that ran.
func TestHTMLReport(t *testing.T) {
	r := syntheticReport()
	path := filepath.Join(t.TempDir(), "r.html")
	if err := r.WriteHTML(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if !strings.HasPrefix(page, "<!DOCTYPE html>") || !strings.Contains(page, "</html>") {
		t.Errorf("not a whole HTML page:\n%.200s", page)
	}
	for _, bad := range []string{"http://", "https://", "//cdn", "<script", "<link", "<img", "<iframe", "src=", "href=", "@import", "url("} {
		if strings.Contains(strings.ToLower(page), bad) {
			t.Errorf("page contains %q; want a self-contained page with no external reference or script", bad)
		}
	}
	svgs := regexp.MustCompile(`(?s)<svg.*?</svg>`).FindAllString(page, -1)
	if got, want := len(svgs), 2+2; got != want { // throughput, ratios, 2 scenarios that ran
		t.Fatalf("%d svg charts; want %d", got, want)
	}
	for i, svg := range svgs {
		d := xml.NewDecoder(strings.NewReader(svg))
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Errorf("svg %d is not well-formed: %v\n%.300s", i, err, svg)
				break
			}
		}
	}
	for _, want := range []string{
		"session-check: latency by percentile", "ratelimit-check: latency by percentile",
		"Throughput (requests per second", "ratio to the baselines", "<polyline",
		"session-exists limits on &lt;script&gt;", "a note &lt;b&gt;not bold&lt;/b&gt;",
		"user-login", "rps_limits_on_vs_off", "Memory", "Targets",
		"× codec-stick", "<td>codec-stick</td>", "session-check req/s vs codec-stick",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Count(svgs[0], "<rect") < 6 { // legend + 6 bars
		t.Errorf("throughput chart has too few bars:\n%s", svgs[0])
	}
	// session-exists at 15000 against a stick at 20000: 0.75 in the table
	// and in the ratio chart (its third series).
	if !strings.Contains(page, `<td class="n">0.75</td>`) || !strings.Contains(svgs[1], "0.75") {
		t.Errorf("the ratio to codec-stick (0.75) is not in the table and the ratio chart")
	}

	// An empty report (every scenario skipped) still renders.
	var sb strings.Builder
	if err := newReport(Config{}, []string{DriverGo}).RenderHTML(&sb); err != nil {
		t.Errorf("empty report: %v", err)
	}
}
