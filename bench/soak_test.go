package bench

import (
	"context"
	"encoding/xml"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSoakWindowWidth(t *testing.T) {
	for _, tc := range []struct{ run, want time.Duration }{
		{10 * time.Minute, time.Minute},
		{time.Hour, time.Minute},
		{5 * time.Minute, 30 * time.Second},
		{time.Second, 100 * time.Millisecond},
	} {
		if got := soakWindowWidth(tc.run); got != tc.want {
			t.Errorf("soakWindowWidth(%s) = %s; want %s", tc.run, got, tc.want)
		}
	}
}

// TestWindowed: a worker's requests land in the window of their due time,
// and flushing twice does not count them twice.
func TestWindowed(t *testing.T) {
	w := newWindowed(100*time.Millisecond, 3)
	ww := w.worker()
	ww.record(10*time.Millisecond, time.Millisecond, 200)
	ww.record(150*time.Millisecond, 2*time.Millisecond, 200)
	ww.record(160*time.Millisecond, 3*time.Millisecond, 503)
	ww.record(time.Second, 4*time.Millisecond, 0) // past the end: the last window
	ww.flush()
	ww.flush()
	var got []int64
	for _, h := range w.hists {
		got = append(got, h.TotalCount())
	}
	if want := []int64{1, 2, 1}; !slices.Equal(got, want) {
		t.Errorf("counts per window %v; want %v", got, want)
	}
	if w.codes[1][503] != 1 || w.codes[1][200] != 1 || w.codes[2][0] != 1 {
		t.Errorf("codes %v; want window 2 one 200 and one 503, window 3 one transport error", w.codes)
	}
	var nilW *windowed
	nilW.worker().flush() // no windows: no-op, no panic
}

// TestSoakSmoke runs the soak scenario for a moment (0.3 s probe, 1 s
// soak) against our server in process: ten windows of answers, no error,
// the memory figures and the drift filled in, and the three reports carry
// it. Speed is never asserted.
func TestSoakSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	var log strings.Builder
	rep, err := Run(context.Background(), Config{
		Scenarios: []string{"soak"}, Conns: 4, Duration: 300 * time.Millisecond, Soak: time.Second, Runs: 1, Pool: 20,
		CheapHash: true, Shards: 4, TempDir: t.TempDir(), Log: &log, Sample: 4,
	})
	if err != nil {
		t.Fatalf("suite: %v\nlog:\n%s", err, log.String())
	}
	if len(rep.Scenarios) != 0 {
		t.Errorf("%d round scenarios; want none (soak runs apart)", len(rep.Scenarios))
	}
	sr := rep.Soak
	if sr == nil || sr.Skipped != "" {
		t.Fatalf("soak: %+v; want a result", sr)
	}
	if sr.MaxRPS <= 0 || sr.Rate <= 0 || sr.Rate > sr.MaxRPS || sr.Load != 0.8 {
		t.Errorf("soak rate %.0f of max %.0f at load %.2f; want 0.8 of a positive maximum", sr.Rate, sr.MaxRPS, sr.Load)
	}
	if sr.Run.Requests == 0 || sr.Errors != 0 || sr.Run.Errors != 0 || sr.Run.BadAns != 0 || sr.Run.Sampled == 0 {
		t.Errorf("soak run %+v, errors %d; want answers, no errors, some samples, none bad", sr.Run, sr.Errors)
	}
	if sr.Statuses["200"] != sr.Run.Requests || sr.Classes["2xx"] != sr.Run.Requests {
		t.Errorf("statuses %v classes %v; want all %d requests 200", sr.Statuses, sr.Classes, sr.Run.Requests)
	}
	if sr.WindowSeconds != 0.1 || len(sr.Windows) < 9 || len(sr.Windows) > 10 {
		t.Errorf("%d windows of %gs; want about 10 of 0.1 s", len(sr.Windows), sr.WindowSeconds)
	}
	var sum int64
	for i, w := range sr.Windows {
		sum += w.Requests
		if w.Requests == 0 || w.P99 <= 0 || w.RSS <= 0 || w.HeapLive <= 0 || w.Classes["2xx"] != w.Requests {
			t.Errorf("window %d: %+v; want requests, a p99, RSS and heap, all 2xx", i, w)
		}
	}
	if sum != sr.Run.Requests {
		t.Errorf("windows hold %d requests; want the run's %d", sum, sr.Run.Requests)
	}
	if sr.P99Drift <= 0 || sr.P50Drift <= 0 || sr.RSSStart <= 0 || sr.RSSEnd <= 0 || sr.HeapStart <= 0 || sr.SessionsCreated <= 0 {
		t.Errorf("soak %+v; want drift ratios, RSS and heap at start and end, sessions created", sr)
	}
	var sb strings.Builder
	rep.WriteTable(&sb)
	for _, want := range []string{"soak: ", "drift", "RSS", "status classes"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, sb.String())
		}
	}
	if err := rep.WriteJSON(t.TempDir() + "/r.json"); err != nil {
		t.Error(err)
	}
	var page strings.Builder
	if err := rep.RenderHTML(&page); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<h2>Soak</h2>", "soak: latency per window", "soak: memory per window"} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	for i, svg := range regexp.MustCompile(`(?s)<svg.*?</svg>`).FindAllString(page.String(), -1) {
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
}
