package bench

import (
	"math"
	"reflect"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v; want %v", tc.in, got, tc.want)
		}
	}
	in := []float64{3, 1, 2}
	median(in)
	if in[0] != 3 {
		t.Errorf("median sorted its input: %v", in)
	}
}

func TestMedianStats(t *testing.T) {
	runs := []Stats{
		{Requests: 100, RPS: 10, P99: 5, Errors: 0},
		{Requests: 300, RPS: 30, P99: 1, Errors: 2},
		{Requests: 200, RPS: 20, P99: 3, Errors: 1},
	}
	got := medianStats(runs)
	if got.Requests != 200 || got.RPS != 20 || got.P99 != 3 || got.Errors != 1 {
		t.Errorf("medianStats = %+v; want requests 200, rps 20, p99 3, errors 1", got)
	}
	if z := medianStats(nil); !reflect.DeepEqual(z, Stats{}) {
		t.Errorf("medianStats(nil) = %+v; want zero", z)
	}
}

func TestRatio(t *testing.T) {
	for _, tc := range []struct{ a, b, want float64 }{
		{1, 2, 0.5},
		{1, 0, 0},
		{math.NaN(), 1, 0},
	} {
		if got := ratio(tc.a, tc.b); got != tc.want {
			t.Errorf("ratio(%v, %v) = %v; want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestStatsFill checks the percentiles against a known distribution: 1..1000
// µs once each. HDR histograms with 3 significant digits are exact here.
func TestStatsFill(t *testing.T) {
	h := newHist()
	for i := 1; i <= 1000; i++ {
		recordLatency(h, time.Duration(i)*time.Microsecond)
	}
	s := Stats{Requests: 1000}
	s.fill(h, 2*time.Second)
	for _, tc := range []struct {
		name      string
		got, want float64
	}{
		{"rps", s.RPS, 500},
		{"p50", s.P50, 0.5},
		{"p90", s.P90, 0.9},
		{"p99", s.P99, 0.99},
		{"p99.9", s.P999, 0.999},
		{"max", s.Max, 1.0},
		{"mean", s.Mean, 0.5005},
	} {
		if math.Abs(tc.got-tc.want) > 1e-9 {
			t.Errorf("%s = %v; want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestRecordLatencyClamps(t *testing.T) {
	h := newHist()
	recordLatency(h, 0)
	recordLatency(h, time.Hour)
	if h.TotalCount() != 2 {
		t.Fatalf("count = %d; want 2 (out-of-range values are clamped, not dropped)", h.TotalCount())
	}
	if h.Min() != histMinMicros {
		t.Errorf("min = %d; want %d", h.Min(), histMinMicros)
	}
	if !h.ValuesAreEquivalent(h.Max(), histMaxMicros) {
		t.Errorf("max = %d; want about %d", h.Max(), histMaxMicros)
	}
}

func TestParseVmRSS(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"Name:\tx\nVmRSS:\t   1234 kB\nVmData: 1 kB\n", 1234 * 1024, false},
		{"Name:\tx\n", 0, true},
		{"VmRSS:\t12 MB\n", 0, true},
	} {
		got, err := parseVmRSS([]byte(tc.in))
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseVmRSS(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
	if n, err := rssBytes(0); err != nil || n <= 0 {
		t.Errorf("rssBytes(self) = %d, %v; want > 0", n, err)
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"127.0.0.1", true},
		{"127.3.2.1", true},
		{"::1", true},
		{"localhost", true},
		{"10.0.0.1", false},
		{"192.168.1.1", false},
		{"8.8.8.8", false},
		{"example.org", false},
		{"", false},
	} {
		if err := checkLoopback(tc.host); (err == nil) != tc.ok {
			t.Errorf("checkLoopback(%q) = %v; want ok %v", tc.host, err, tc.ok)
		}
	}
	if _, err := NewTarget("x", "http://10.1.2.3:8080/", ""); err == nil {
		t.Error("NewTarget accepted a non-loopback URL")
	}
}

func TestCurve(t *testing.T) {
	h := newHist()
	for i := 1; i <= 1000; i++ {
		recordLatency(h, time.Duration(i)*time.Millisecond)
	}
	c := curve(h)
	// 1000 samples resolve 1/(1−p) up to 1000: 0 %, then 4 points a decade
	// up to 99.9 %.
	if len(c) != 13 || c[0].P != 0 || math.Abs(c[len(c)-1].P-99.9) > 1e-9 {
		t.Fatalf("curve has %d points from %v to %v; want 13 from 0 to 99.9", len(c), c[0], c[len(c)-1])
	}
	for i := 1; i < len(c); i++ {
		if c[i].P <= c[i-1].P || c[i].Ms < c[i-1].Ms {
			t.Errorf("curve point %d %v after %v; want increasing", i, c[i], c[i-1])
		}
	}
	if got := c[0].Ms; math.Abs(got-1) > 0.01 { // p0: the fastest
		t.Errorf("curve p0 = %v ms; want 1", got)
	}
	if got := c[4].Ms; math.Abs(got-900) > 1 { // p90
		t.Errorf("curve p90 = %v ms; want 900", got)
	}
	if got := curve(newHist()); got != nil {
		t.Errorf("curve of an empty histogram = %v; want nil", got)
	}

	runs := []Stats{
		{Curve: []Pct{{0, 1}, {90, 5}, {99, 9}}},
		{Curve: []Pct{{0, 3}, {90, 7}}},
		{Curve: []Pct{{0, 2}, {90, 6}, {99, 8}}},
	}
	want := []Pct{{0, 2}, {90, 6}}
	if got := medianCurve(runs); !reflect.DeepEqual(got, want) {
		t.Errorf("medianCurve = %v; want %v (point-wise median of the common prefix)", got, want)
	}
}
