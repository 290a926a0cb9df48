package bench

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"math"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// The soak scenario runs the mixed workload for a long time (Config.Soak,
// 10 minutes by default) in open loop at a fixed fraction (Config.SoakLoad,
// 0.8) of the maximum the same mix reached in a short closed-loop run just
// before. Below saturation a healthy server keeps a flat latency and a
// bounded memory; what a soak looks for is the slow drift that a 5-second
// figure cannot show: a queue that never drains, a cache or map that only
// grows, a leak of goroutines or connections, periodic stalls (compaction,
// sweeps, GC of a growing heap). It is therefore reported per time window
// (a minute, or a tenth of shorter runs): latency, errors and the server's
// resident size, with the drift between the first and the last window.

// SoakReport is the soak scenario's result.
type SoakReport struct {
	Skipped string `json:"skipped,omitempty"`
	// Seconds is the planned length of the open-loop run; WindowSeconds
	// the width of one window.
	Seconds       float64 `json:"seconds"`
	WindowSeconds float64 `json:"window_seconds"`
	Load          float64 `json:"load_fraction"` // of MaxRPS
	// Probe is the closed-loop run of the mix that found MaxRPS (Config
	// Duration long, Config.Conns connections).
	Probe  Stats   `json:"probe"`
	MaxRPS float64 `json:"max_rps"`
	Rate   float64 `json:"rate"` // open-loop req/s of the soak: Load × MaxRPS
	// Run is the whole open-loop run (latency from each request's due time).
	Run Stats `json:"run"`
	// Errors are requests not answered 200 (any other status, or a
	// transport error); Statuses counts them by HTTP status ("transport"
	// for no answer), Classes by class (2xx, 4xx, 5xx, transport).
	Errors   int64            `json:"errors"`
	Statuses map[string]int64 `json:"statuses"`
	Classes  map[string]int64 `json:"status_classes"`
	Windows  []SoakWindow     `json:"windows"`
	// P50Drift and P99Drift are the last window's percentile divided by
	// the first window's (1: no drift).
	P50Drift float64 `json:"p50_last_vs_first"`
	P99Drift float64 `json:"p99_last_vs_first"`
	// Memory of the server: resident size before and after the run (in
	// process: the whole bench process, after a GC both times; external:
	// -server-pid's VmRSS as it is). RSSGrowthMiB = end − start.
	RSSStart     int64   `json:"rss_start_bytes,omitempty"`
	RSSEnd       int64   `json:"rss_end_bytes,omitempty"`
	RSSGrowthMiB float64 `json:"rss_growth_mib"`
	RSSGrowthPct float64 `json:"rss_growth_percent"`
	// HeapStart and HeapEnd are the Go live heap (in process only).
	HeapStart int64 `json:"heap_live_start_bytes,omitempty"`
	HeapEnd   int64 `json:"heap_live_end_bytes,omitempty"`
	// SessionsCreated is the number of session-new requests of the run
	// (the mix's share of its requests): sessions that stay live for 24 h,
	// so part of the growth is state the server must keep.
	SessionsCreated int64    `json:"sessions_created"`
	Interrupted     bool     `json:"interrupted,omitempty"`
	Notes           []string `json:"notes,omitempty"`
}

// SoakWindow is one time window of the soak run.
type SoakWindow struct {
	Start    float64          `json:"start_s"` // from the start of the run
	Seconds  float64          `json:"seconds"`
	Requests int64            `json:"requests"` // due in this window
	RPS      float64          `json:"rps"`
	P50      float64          `json:"p50_ms"`
	P90      float64          `json:"p90_ms"`
	P99      float64          `json:"p99_ms"`
	Max      float64          `json:"max_ms"`
	Errors   int64            `json:"errors"`
	Classes  map[string]int64 `json:"status_classes"`
	RSS      int64            `json:"rss_bytes,omitempty"`       // at the window's end, no forced GC
	HeapLive int64            `json:"heap_live_bytes,omitempty"` // in process: Go live heap after the last GC
}

// soakWindowWidth is a minute, or a tenth of runs shorter than ten
// minutes (so a short trial still shows ten points).
func soakWindowWidth(d time.Duration) time.Duration {
	return max(min(time.Minute, d/10), time.Millisecond)
}

// windowed collects a run's latencies and statuses per time window. Each
// worker keeps the window it is in and merges it into the shared one when
// it moves on (a worker's due times only grow), so the hot loop takes no
// lock. Histograms have two significant digits (20 KB each, allocated up
// front so the collection does not show up as growth of the process).
type windowed struct {
	width time.Duration
	mu    sync.Mutex
	hists []*hdrhistogram.Histogram
	codes []map[int]int64 // status code → count; 0 is a transport error
}

func newWinHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMinMicros, histMaxMicros, 2) }

func newWindowed(width time.Duration, n int) *windowed {
	w := &windowed{width: width, hists: make([]*hdrhistogram.Histogram, n), codes: make([]map[int]int64, n)}
	for i := range n {
		w.hists[i] = newWinHist()
		w.codes[i] = map[int]int64{}
	}
	return w
}

// index is the window of a request due at offset at (clamped: the last
// request of a run may be due a hair past the last window).
func (w *windowed) index(at time.Duration) int {
	return min(max(int(at/w.width), 0), len(w.hists)-1)
}

// windowWorker is one load-generator worker's part of a windowed.
type windowWorker struct {
	w     *windowed
	cur   int
	hist  *hdrhistogram.Histogram
	codes map[int]int64
}

func (w *windowed) worker() *windowWorker {
	if w == nil {
		return nil
	}
	return &windowWorker{w: w, cur: -1, hist: newWinHist(), codes: map[int]int64{}}
}

// record adds one request due at offset at, answered after lat with HTTP
// status code (0: transport error).
func (ww *windowWorker) record(at, lat time.Duration, code int) {
	if i := ww.w.index(at); i != ww.cur {
		ww.flush()
		ww.cur = i
	}
	recordLatency(ww.hist, lat)
	ww.codes[code]++
}

// flush merges the worker's current window into the shared one.
func (ww *windowWorker) flush() {
	if ww == nil || ww.cur < 0 {
		return
	}
	ww.w.mu.Lock()
	ww.w.hists[ww.cur].Merge(ww.hist)
	for c, n := range ww.codes {
		ww.w.codes[ww.cur][c] += n
	}
	ww.w.mu.Unlock()
	ww.hist.Reset()
	clear(ww.codes)
}

// statusName is the statuses key of code; statusClass its class.
func statusName(code int) string {
	if code == 0 {
		return "transport"
	}
	return strconv.Itoa(code)
}

func statusClass(code int) string {
	if code == 0 {
		return "transport"
	}
	return fmt.Sprintf("%dxx", code/100)
}

// liveHeap is the Go heap live after the last GC (no GC is forced).
func liveHeap() int64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		return int64(s[0].Value.Uint64())
	}
	return 0
}

// memSample is the server's memory at one moment.
type memSample struct{ rss, heap int64 }

// soak runs the soak scenario on the server under test (see the comment at
// the top of this file). An interrupted run (ctx cancelled) returns its
// report so far with the context's error.
func (s *Suite) soak(ctx context.Context) (*SoakReport, error) {
	cfg := s.cfg
	sr := &SoakReport{Seconds: cfg.Soak.Seconds(), Load: cfg.SoakLoad, Statuses: map[string]int64{}, Classes: map[string]int64{}}
	m, err := s.prepareMix()
	if err != nil {
		return nil, err
	}
	sr.Notes = append(sr.Notes, m.notes...)

	probe, err := Drive(ctx, s.main, m.bodies, Expect{}, RunOptions{
		Label: "soak: closed-loop maximum", Conns: cfg.Conns, Duration: cfg.Duration, SampleEvery: cfg.Sample, Progress: cfg.Progress,
	})
	if err != nil {
		return nil, err
	}
	sr.Probe, sr.MaxRPS = probe, probe.RPS
	if probe.OK == 0 || probe.RPS <= 0 {
		return nil, fmt.Errorf("bench: soak: the closed-loop run of the mix had no successful answer (%d errors)", probe.Errors)
	}
	sr.Rate = cfg.SoakLoad * probe.RPS

	width := soakWindowWidth(cfg.Soak)
	n := int(math.Ceil(float64(cfg.Soak) / float64(width)))
	sr.WindowSeconds = width.Seconds()

	// Memory: this process in process; -server-pid's externally.
	pid, inProc, withMem := 0, cfg.URL == "", true
	if !inProc {
		if pid = cfg.ServerPID; pid <= 0 {
			withMem = false
			sr.Notes = append(sr.Notes, "external server without -server-pid: memory not sampled")
		}
	}
	sample := func() memSample {
		if !withMem {
			return memSample{}
		}
		ms := memSample{}
		ms.rss, _ = rssBytes(pid) // a failed read shows as 0, not as a failed soak
		if inProc {
			ms.heap = liveHeap()
		}
		return ms
	}
	if inProc {
		sr.Notes = append(sr.Notes, "in-process server: RSS is the whole bench process (server and load generator); start and end after a GC, per-window figures as they are")
		settle()
	}
	start := sample()
	sr.RSSStart, sr.HeapStart = start.rss, start.heap

	win := newWindowed(width, n)
	samples := make([]memSample, n)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(width)
		defer tk.Stop()
		for i := range n {
			select {
			case <-done:
				return
			case <-tk.C:
				samples[i] = sample()
			}
		}
	}()
	run, err := Drive(ctx, s.main, m.bodies, Expect{}, RunOptions{
		Label: fmt.Sprintf("soak %s at %.0f req/s", cfg.Soak, sr.Rate), Conns: cfg.Conns, Duration: cfg.Soak, Rate: sr.Rate,
		SampleEvery: cfg.Sample, Progress: cfg.Progress, windows: win,
	})
	close(done)
	wg.Wait()
	if err != nil && ctx.Err() == nil {
		return nil, err
	}
	sr.Interrupted = err != nil
	sr.Run = run
	final := sample()

	for i := range n {
		h := win.hists[i]
		if h.TotalCount() == 0 {
			if sr.Interrupted {
				break // the run stopped before this window
			}
			continue
		}
		w := SoakWindow{Start: (time.Duration(i) * width).Seconds(), Seconds: min(width, cfg.Soak-time.Duration(i)*width).Seconds(),
			Requests: h.TotalCount(), Classes: map[string]int64{}}
		ms := func(us int64) float64 { return float64(us) / 1000 }
		w.RPS = float64(w.Requests) / w.Seconds
		w.P50, w.P90, w.P99, w.Max = ms(h.ValueAtQuantile(50)), ms(h.ValueAtQuantile(90)), ms(h.ValueAtQuantile(99)), ms(h.Max())
		for code, c := range win.codes[i] {
			sr.Statuses[statusName(code)] += c
			sr.Classes[statusClass(code)] += c
			w.Classes[statusClass(code)] += c
			if code != 200 {
				w.Errors += c
			}
		}
		sr.Errors += w.Errors
		mem := samples[i]
		if mem == (memSample{}) {
			mem = final // the last window ends with the run, its tick may not have come
		}
		w.RSS, w.HeapLive = mem.rss, mem.heap
		sr.Windows = append(sr.Windows, w)
	}
	if len(sr.Windows) > 0 {
		first, last := sr.Windows[0], sr.Windows[len(sr.Windows)-1]
		sr.P50Drift, sr.P99Drift = ratio(last.P50, first.P50), ratio(last.P99, first.P99)
	}

	if inProc {
		settle()
	}
	end := sample()
	sr.RSSEnd, sr.HeapEnd = end.rss, end.heap
	if withMem && sr.RSSStart > 0 && sr.RSSEnd > 0 {
		sr.RSSGrowthMiB = float64(sr.RSSEnd-sr.RSSStart) / (1 << 20)
		sr.RSSGrowthPct = 100 * float64(sr.RSSEnd-sr.RSSStart) / float64(sr.RSSStart)
	}
	if share := m.share("session-new"); share > 0 {
		sr.SessionsCreated = int64(math.Round(float64(run.Requests) * share))
		if sr.SessionsCreated > 0 && withMem {
			sr.Notes = append(sr.Notes, fmt.Sprintf("the mix's session-new (%.1f%%) made about %d live sessions (24 h expiry): %.0f bytes of RSS growth per session made",
				100*share, sr.SessionsCreated, float64(sr.RSSEnd-sr.RSSStart)/float64(sr.SessionsCreated)))
		}
	}
	if sr.Interrupted {
		sr.Notes = append(sr.Notes, "interrupted: figures cover the run up to the interruption")
	}
	return sr, err
}

// writeTable writes the soak result to the terminal report: a summary, then
// one line per window.
func (sr *SoakReport) writeTable(w io.Writer) {
	if sr.Skipped != "" {
		fmt.Fprintf(w, "\nsoak: %s\n", sr.Skipped)
		return
	}
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	fmt.Fprintf(w, "\nsoak: %gs open loop at %.0f req/s = %.2f × the mix's closed-loop maximum %.0f req/s (%.1fs probe, p99 %.3f ms)\n",
		sr.Seconds, sr.Rate, sr.Load, sr.MaxRPS, sr.Probe.Seconds, sr.Probe.P99)
	r := sr.Run
	fmt.Fprintf(w, "soak: %d requests (%.0f req/s), %d errors, bad samples %d/%d; statuses %s; classes %s\n",
		r.Requests, r.RPS, sr.Errors, r.BadAns, r.Sampled, countsString(sr.Statuses), countsString(sr.Classes))
	fmt.Fprintf(w, "soak: latency over the run p50 %.3f p99 %.3f p99.9 %.3f max %.1f ms; drift (last window / first) p50 ×%.2f, p99 ×%.2f\n",
		r.P50, r.P99, r.P999, r.Max, sr.P50Drift, sr.P99Drift)
	if sr.RSSStart > 0 {
		fmt.Fprintf(w, "soak: RSS %.1f → %.1f MiB (%+.1f MiB, %+.1f%%)", mib(sr.RSSStart), mib(sr.RSSEnd), sr.RSSGrowthMiB, sr.RSSGrowthPct)
		if sr.HeapStart > 0 {
			fmt.Fprintf(w, ", Go live heap %.1f → %.1f MiB", mib(sr.HeapStart), mib(sr.HeapEnd))
		}
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "window\tfrom s\tdue req/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\terrors\tstatus classes\tRSS MiB\theap MiB\t")
	for i, x := range sr.Windows {
		fmt.Fprintf(tw, "%d\t%.1f\t%.0f\t%.3f\t%.3f\t%.3f\t%.1f\t%d\t%s\t%.1f\t%.1f\t\n",
			i, x.Start, x.RPS, x.P50, x.P90, x.P99, x.Max, x.Errors, countsString(x.Classes), mib(x.RSS), mib(x.HeapLive))
	}
	tw.Flush()
	for _, n := range sr.Notes {
		fmt.Fprintf(w, "soak: note: %s\n", n)
	}
}

// countsString renders counts as "k n, k n" in key order.
func countsString(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	out := ""
	for i, k := range sortedKeys(m) {
		if i > 0 {
			out += ","
		}
		out += fmt.Sprintf("%s:%d", k, m[k])
	}
	return out
}

// series is one line of a lineSVG chart.
type series struct {
	name   string
	values []float64
}

// soakCharts draws the soak's per-window charts for the HTML report:
// latency (p50, p99, max) and memory (RSS, and the Go live heap in
// process). x is the end of each window in minutes (seconds for runs under
// ten minutes).
func (sr *SoakReport) soakCharts() (latency, memory template.HTML) {
	if sr == nil || sr.Skipped != "" || len(sr.Windows) == 0 {
		return "", ""
	}
	unit, div := "s", 1.0
	if sr.Seconds >= 600 {
		unit, div = "min", 60
	}
	var xs, p50, p99, mx, rss, heap []float64
	for _, w := range sr.Windows {
		xs = append(xs, (w.Start+w.Seconds)/div)
		p50, p99, mx = append(p50, w.P50), append(p99, w.P99), append(mx, w.Max)
		rss, heap = append(rss, float64(w.RSS)/(1<<20)), append(heap, float64(w.HeapLive)/(1<<20))
	}
	latency = lineSVG("soak: latency per window (ms)", "end of window ("+unit+")", xs,
		[]series{{"p50", p50}, {"p99", p99}, {"max", mx}}, "%.3g")
	mem := []series{{"RSS", rss}}
	if sr.HeapStart > 0 {
		mem = append(mem, series{"Go live heap", heap})
	}
	memory = lineSVG("soak: memory per window (MiB)", "end of window ("+unit+")", xs, mem, "%.1f")
	return latency, memory
}

// lineSVG draws a small line chart of series over xs on linear axes, y from
// 0, with a dot (and its value as a tooltip) per point.
func lineSVG(title, xLabel string, xs []float64, ss []series, format string) template.HTML {
	const (
		left, right, top, bottom = 64, 130, 28, 40
		plotW, plotH             = 560, 200
	)
	width, height := left+plotW+right, top+plotH+bottom
	maxX, maxY := 0.0, 0.0
	for _, x := range xs {
		maxX = max(maxX, x)
	}
	for _, s := range ss {
		for _, v := range s.values {
			maxY = max(maxY, v)
		}
	}
	if maxX <= 0 {
		maxX = 1
	}
	if maxY <= 0 {
		maxY = 1
	}
	maxY *= 1.1
	px := func(x float64) float64 { return left + plotW*x/maxX }
	py := func(y float64) float64 { return top + plotH*(1-y/maxY) }
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`, width, height, width, height, esc(title))
	fmt.Fprintf(&sb, `<text x="4" y="16" class="title">%s</text>`, esc(title))
	for i := 0; i <= 4; i++ {
		y := maxY * float64(i) / 4
		fmt.Fprintf(&sb, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" class="grid"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`,
			left, py(y), left+plotW, py(y), left-6, py(y)+4, esc(fmt.Sprintf(format, y)))
		x := maxX * float64(i) / 4
		fmt.Fprintf(&sb, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, px(x), top+plotH+16, esc(fmt.Sprintf("%.3g", x)))
	}
	fmt.Fprintf(&sb, `<text x="%d" y="%d" text-anchor="middle">%s</text>`, left+plotW/2, top+plotH+34, esc(xLabel))
	fmt.Fprintf(&sb, `<rect x="%d" y="%d" width="%d" height="%d" class="frame"/>`, left, top, plotW, plotH)
	for i, s := range ss {
		colour := palette[i%len(palette)]
		var pts []string
		for j, v := range s.values {
			if j >= len(xs) {
				break
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(xs[j]), py(v)))
			fmt.Fprintf(&sb, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"><title>%s</title></circle>`, px(xs[j]), py(v), colour,
				esc(fmt.Sprintf("%s at %.3g: "+format, s.name, xs[j], v)))
		}
		fmt.Fprintf(&sb, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"><title>%s</title></polyline>`, strings.Join(pts, " "), colour, esc(s.name))
		ly := top + 10 + i*16
		fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/><text x="%d" y="%d">%s</text>`,
			left+plotW+10, ly, left+plotW+28, ly, colour, left+plotW+32, ly+4, esc(s.name))
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String()) // every text above went through esc
}
