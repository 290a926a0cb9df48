package bench

import (
	"math"
	"sort"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds from 1 µs to 60 s with three
// significant digits: enough resolution for loopback round trips (tens of
// µs) and room for the multi-second stalls an open-loop run can expose.
const (
	histMinMicros = 1
	histMaxMicros = 60_000_000
	histDigits    = 3
)

// newHist returns an empty latency histogram (microseconds).
func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMinMicros, histMaxMicros, histDigits)
}

// recordLatency adds d to h, clamped into the histogram's range so a
// pathological stall is counted (as the maximum) rather than dropped.
func recordLatency(h *hdrhistogram.Histogram, d time.Duration) {
	us := d.Microseconds()
	if us < histMinMicros {
		us = histMinMicros
	}
	if us > histMaxMicros {
		us = histMaxMicros
	}
	_ = h.RecordValue(us) // cannot fail: clamped into range above
}

// Stats are the figures of one measured run. Latencies are milliseconds.
type Stats struct {
	Requests int64   `json:"requests"`   // answers received (any status) plus transport errors
	OK       int64   `json:"ok"`         // answers with the expected HTTP status
	Busy     int64   `json:"busy"`       // 503 answers where the scenario expects them (hasher pool full); with RunOptions.BusyRetry, refused sends that were retried
	Limited  int64   `json:"limited"`    // 429 answers (rate limited)
	Errors   int64   `json:"errors"`     // unexpected status or transport error
	Sampled  int64   `json:"sampled"`    // answers fully decrypted and checked
	BadAns   int64   `json:"bad_sample"` // sampled answers that did not decrypt, or had success false, or a foreign reqid
	Seconds  float64 `json:"seconds"`    // measured window
	RPS      float64 `json:"rps"`        // Requests / Seconds
	Mean     float64 `json:"mean_ms"`
	P50      float64 `json:"p50_ms"`
	P90      float64 `json:"p90_ms"`
	P99      float64 `json:"p99_ms"`
	P999     float64 `json:"p999_ms"`
	Max      float64 `json:"max_ms"`
	// Curve is the latency percentile curve of the run (for the HTML
	// report's plots): percentiles from 0 up to the last one the count
	// resolves, on a log scale of 1/(1−p).
	Curve []Pct `json:"percentile_curve,omitempty"`
}

// Pct is one point of a latency percentile curve.
type Pct struct {
	P  float64 `json:"p"`  // percentile, 0–100
	Ms float64 `json:"ms"` // latency at or below which P % of requests completed
}

// curvePercentiles are the curve's points: four a decade of 1/(1−p), from
// 0 % to 99.9999 %. curve keeps those the sample count resolves.
var curvePercentiles = func() []float64 {
	out := []float64{0}
	for k := 1; k <= 24; k++ {
		out = append(out, 100*(1-math.Pow(10, -float64(k)/4)))
	}
	return out
}()

// curve reads the percentile curve of h: the points of curvePercentiles up
// to 1/(1−p) ≤ count (beyond, the histogram only repeats its maximum), then
// the maximum at 100 − 100/count.
func curve(h *hdrhistogram.Histogram) []Pct {
	n := h.TotalCount()
	if n == 0 {
		return nil
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return curveFrom(n, func(p float64) float64 {
		if p == 0 {
			return ms(h.Min()) // ValueAtQuantile(0) answers 0, not the fastest request
		}
		return ms(h.ValueAtQuantile(p))
	}, ms(h.Max()))
}

// curveFrom builds the curve of n latencies from at (ms at percentile p,
// for each point of curvePercentiles; at(0) is the minimum) and the maximum
// maxMs: the Go generator reads them from its histogram, the wrk driver
// from the figures its script prints.
func curveFrom(n int64, at func(p float64) float64, maxMs float64) []Pct {
	if n == 0 {
		return nil
	}
	var out []Pct
	for _, p := range curvePercentiles {
		if 100/(100-p) > float64(n) {
			break
		}
		out = append(out, Pct{P: p, Ms: at(p)})
	}
	if n > 1 {
		last := 100 - 100/float64(n)
		if out[len(out)-1].P < last {
			out = append(out, Pct{P: last, Ms: maxMs})
		}
	}
	return out
}

// medianCurve is the point-wise median of curves (they share their
// percentiles up to the shortest one's length).
func medianCurve(runs []Stats) []Pct {
	if len(runs) == 0 {
		return nil
	}
	// The common prefix: runs of different counts end on different
	// last points.
	n := len(runs[0].Curve)
	for _, r := range runs {
		n = min(n, len(r.Curve))
		for i := range n {
			if r.Curve[i].P != runs[0].Curve[i].P {
				n = i
				break
			}
		}
	}
	out := make([]Pct, n)
	xs := make([]float64, len(runs))
	for i := range n {
		for j, r := range runs {
			xs[j] = r.Curve[i].Ms
		}
		out[i] = Pct{P: runs[0].Curve[i].P, Ms: median(xs)}
	}
	return out
}

// fill sets the rate and the latency figures from h over the window d.
func (s *Stats) fill(h *hdrhistogram.Histogram, d time.Duration) {
	s.Seconds = d.Seconds()
	if s.Seconds > 0 {
		s.RPS = float64(s.Requests) / s.Seconds
	}
	if h.TotalCount() == 0 {
		return
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	s.Mean = h.Mean() / 1000
	s.P50 = ms(h.ValueAtQuantile(50))
	s.P90 = ms(h.ValueAtQuantile(90))
	s.P99 = ms(h.ValueAtQuantile(99))
	s.P999 = ms(h.ValueAtQuantile(99.9))
	s.Max = ms(h.Max())
	s.Curve = curve(h)
}

// median returns the middle value of xs (the mean of the two middle values
// for an even count), 0 for none. xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// medianStats is the field-wise median of runs: each figure is the median
// of that figure over the runs (so the p99 of the result need not come from
// the same run as its req/s). Counters are medians too.
func medianStats(runs []Stats) Stats {
	if len(runs) == 0 {
		return Stats{}
	}
	pick := func(f func(Stats) float64) float64 {
		xs := make([]float64, len(runs))
		for i, r := range runs {
			xs[i] = f(r)
		}
		return median(xs)
	}
	cnt := func(f func(Stats) int64) int64 {
		return int64(math.Round(pick(func(s Stats) float64 { return float64(f(s)) })))
	}
	return Stats{
		Requests: cnt(func(s Stats) int64 { return s.Requests }),
		OK:       cnt(func(s Stats) int64 { return s.OK }),
		Busy:     cnt(func(s Stats) int64 { return s.Busy }),
		Limited:  cnt(func(s Stats) int64 { return s.Limited }),
		Errors:   cnt(func(s Stats) int64 { return s.Errors }),
		Sampled:  cnt(func(s Stats) int64 { return s.Sampled }),
		BadAns:   cnt(func(s Stats) int64 { return s.BadAns }),
		Seconds:  pick(func(s Stats) float64 { return s.Seconds }),
		RPS:      pick(func(s Stats) float64 { return s.RPS }),
		Mean:     pick(func(s Stats) float64 { return s.Mean }),
		P50:      pick(func(s Stats) float64 { return s.P50 }),
		P90:      pick(func(s Stats) float64 { return s.P90 }),
		P99:      pick(func(s Stats) float64 { return s.P99 }),
		P999:     pick(func(s Stats) float64 { return s.P999 }),
		Max:      pick(func(s Stats) float64 { return s.Max }),
		Curve:    medianCurve(runs),
	}
}

// ratio is a/b, or 0 when b is 0 (a missing baseline is reported as 0, not
// as an infinity that would break the JSON encoder).
func ratio(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return 0
	}
	return a / b
}
