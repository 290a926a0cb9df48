package bench

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"math"
	"os"
	"strings"
)

// The HTML report is one self-contained file: the page, its style and
// every chart (inline SVG drawn here) are in it, with no script and no
// reference to anything on the network, so it can be mailed, attached to
// an issue or opened offline years later and still show the same thing.

// WriteHTML writes the report as a self-contained HTML page to path.
func (r *Report) WriteHTML(path string) error {
	var buf bytes.Buffer
	if err := r.RenderHTML(&buf); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("bench: write HTML report: %w", err)
	}
	return nil
}

// RenderHTML writes the HTML report to w: the machine and settings, a
// req/s bar chart of every figure, a chart of the ratios to the baselines,
// one log-scale latency percentile chart per scenario, the table of
// medians, the targets and the memory result.
func (r *Report) RenderHTML(w io.Writer) error {
	type row struct {
		Scenario string
		M        *Measurement
	}
	type curveChart struct {
		Name  string
		Notes []string
		SVG   template.HTML
	}
	var rows []row
	for _, b := range r.Baselines {
		if len(b.Runs) > 0 {
			rows = append(rows, row{"baseline", b})
		}
	}
	var curves []curveChart
	var skipped []string
	for _, s := range r.Scenarios {
		if s.Skipped != "" {
			skipped = append(skipped, s.Name+": "+s.Skipped)
			continue
		}
		for _, m := range s.Measurements {
			rows = append(rows, row{s.Name, m})
		}
		if len(s.Measurements) > 0 {
			curves = append(curves, curveChart{Name: s.Name, Notes: s.Notes, SVG: r.percentileSVG(s)})
		}
	}
	var bars, ratios []bar
	for _, rw := range rows {
		label := rw.Scenario + " · " + r.figName(rw.M)
		if rw.Scenario == "baseline" {
			label = r.figName(rw.M)
		}
		bars = append(bars, bar{label: label, values: []float64{rw.M.Median.RPS}})
		if rw.Scenario != "baseline" {
			ratios = append(ratios, bar{label: label, values: []float64{rw.M.VsHello, rw.M.VsCodec, rw.M.VsStick}})
		}
	}
	data := map[string]any{
		"R":          r,
		"Rows":       rows,
		"Skipped":    skipped,
		"Throughput": barSVG("Throughput (requests per second, median over rounds)", bars, []string{"req/s"}, "%.0f", 0),
		"Ratios":     barSVG("Throughput as a ratio to the baselines of the same round", ratios, []string{"× hello", "× codec-only", "× codec-stick"}, "%.2f", 1),
		"Curves":     curves,
	}
	data["SoakLatency"], data["SoakMemory"] = r.Soak.soakCharts()
	if err := htmlReport.Execute(w, data); err != nil {
		return fmt.Errorf("bench: render HTML report: %w", err)
	}
	return nil
}

// figName is a figure's name, with its driver when the report has several.
func (r *Report) figName(m *Measurement) string {
	if r.multiDriver() {
		return m.Name + " (" + m.Driver + ")"
	}
	return m.Name
}

// Colours of the series (figures of a chart, in order).
var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// bar is one labelled group of bars (one bar per series).
type bar struct {
	label  string
	values []float64
}

// esc escapes text for SVG inside HTML (the SVG is inserted as trusted
// template.HTML, so every label drawn into it goes through here).
func esc(s string) string { return template.HTMLEscapeString(s) }

// barSVG draws a horizontal bar chart: one row per bar group, one bar per
// series, the value printed at the bar's end. ref > 0 draws a dashed
// reference line at that value (1 for ratios).
func barSVG(title string, bars []bar, series []string, format string, ref float64) template.HTML {
	const (
		labelW = 300
		plotW  = 460
		barH   = 14
		gap    = 8
		top    = 44
	)
	groupH := barH*len(series) + gap
	height := top + groupH*len(bars) + 30
	width := labelW + plotW + 90
	maxV := ref
	for _, b := range bars {
		for _, v := range b.values {
			maxV = max(maxV, v)
		}
	}
	if maxV <= 0 {
		maxV = 1
	}
	x := func(v float64) float64 { return labelW + plotW*v/maxV }
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`, width, height, width, height, esc(title))
	fmt.Fprintf(&sb, `<text x="4" y="16" class="title">%s</text>`, esc(title))
	for i, name := range series {
		fmt.Fprintf(&sb, `<rect x="%d" y="24" width="10" height="10" fill="%s"/><text x="%d" y="33">%s</text>`, labelW+i*120, palette[i%len(palette)], labelW+14+i*120, esc(name))
	}
	for i, b := range bars {
		y0 := top + i*groupH
		fmt.Fprintf(&sb, `<text x="%d" y="%d" text-anchor="end">%s</text>`, labelW-6, y0+barH*len(series)/2+4, esc(b.label))
		for j, v := range b.values {
			y := y0 + j*barH
			w := math.Max(0, x(v)-labelW)
			fmt.Fprintf(&sb, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s</title></rect>`, labelW, y, w, barH-2, palette[j%len(palette)], esc(b.label+" "+series[j]+": "+fmt.Sprintf(format, v)))
			fmt.Fprintf(&sb, `<text x="%.1f" y="%d" class="val">%s</text>`, labelW+w+4, y+barH-4, esc(fmt.Sprintf(format, v)))
		}
	}
	bottom := top + groupH*len(bars)
	fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" class="axis"/>`, labelW, top-4, labelW, bottom)
	if ref > 0 {
		fmt.Fprintf(&sb, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" class="ref"/><text x="%.1f" y="%d" class="val">%s</text>`,
			x(ref), top-4, x(ref), bottom, x(ref)-4, bottom+14, esc(fmt.Sprintf(format, ref)))
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String()) // every text above went through esc
}

// percentileSVG draws scenario s's latency percentile curves (one line per
// figure, the baselines in grey for scale) on log scales: x is 1/(1−p), so
// 90 %, 99 %, 99.9 % … are equally spaced and the tail is visible; y is the
// latency in ms.
func (r *Report) percentileSVG(s *ScenarioReport) template.HTML {
	type line struct {
		name   string
		colour string
		dash   bool
		pts    []Pct
	}
	var lines []line
	for i, m := range s.Measurements {
		lines = append(lines, line{r.figName(m), palette[i%len(palette)], false, m.Median.Curve})
	}
	for _, b := range r.Baselines {
		if len(b.Median.Curve) > 0 {
			lines = append(lines, line{"baseline " + r.figName(b), "#999999", true, b.Median.Curve})
		}
	}
	const (
		left, right, top, bottom = 64, 190, 28, 40
		plotW, plotH             = 560, 260
	)
	width, height := left+plotW+right, top+plotH+bottom
	// x: decades of 1/(1−p); y: decades of ms.
	maxX, minY, maxY := 1.0, math.Inf(1), math.Inf(-1)
	for _, l := range lines {
		for _, p := range l.pts {
			maxX = max(maxX, nines(p.P))
			if p.Ms > 0 {
				minY, maxY = min(minY, p.Ms), max(maxY, p.Ms)
			}
		}
	}
	if math.IsInf(minY, 1) {
		minY, maxY = 0.01, 1
	}
	maxX = math.Ceil(maxX)
	loY, hiY := math.Floor(math.Log10(minY)), math.Ceil(math.Log10(maxY))
	if hiY <= loY {
		hiY = loY + 1
	}
	px := func(p float64) float64 { return left + plotW*nines(p)/maxX }
	py := func(ms float64) float64 {
		ms = math.Max(ms, math.Pow(10, loY))
		return top + plotH*(1-(math.Log10(ms)-loY)/(hiY-loY))
	}
	title := s.Name + ": latency by percentile (ms, log scales)"
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`, width, height, width, height, esc(title))
	fmt.Fprintf(&sb, `<text x="4" y="16" class="title">%s</text>`, esc(title))
	for d := 0; d <= int(maxX); d++ {
		xx := left + plotW*float64(d)/maxX
		label := "0%"
		if d > 0 {
			label = strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.6f", 100-100/math.Pow(10, float64(d))), "0"), ".") + "%"
		}
		fmt.Fprintf(&sb, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" class="grid"/><text x="%.1f" y="%d" text-anchor="middle">%s</text>`,
			xx, top, xx, top+plotH, xx, top+plotH+16, esc(label))
	}
	for d := loY; d <= hiY; d++ {
		yy := py(math.Pow(10, d))
		fmt.Fprintf(&sb, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" class="grid"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`,
			left, yy, left+plotW, yy, left-6, yy+4, esc(strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", math.Pow(10, d)), "0"), ".")))
	}
	fmt.Fprintf(&sb, `<text x="%d" y="%d" text-anchor="middle">percentile</text>`, left+plotW/2, top+plotH+34)
	fmt.Fprintf(&sb, `<rect x="%d" y="%d" width="%d" height="%d" class="frame"/>`, left, top, plotW, plotH)
	for i, l := range lines {
		if len(l.pts) == 0 {
			continue
		}
		var pts []string
		for _, p := range l.pts {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p.P), py(p.Ms)))
		}
		dash := ""
		if l.dash {
			dash = ` stroke-dasharray="4 3"`
		}
		fmt.Fprintf(&sb, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s><title>%s</title></polyline>`, strings.Join(pts, " "), l.colour, dash, esc(l.name))
		ly := top + 10 + i*16
		fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/><text x="%d" y="%d">%s</text>`,
			left+plotW+10, ly, left+plotW+28, ly, l.colour, dash, left+plotW+32, ly+4, esc(l.name))
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String()) // every text above went through esc
}

// nines is log10(1/(1−p/100)): 0 at 0 %, 1 at 90 %, 2 at 99 %, …
func nines(p float64) float64 {
	if p >= 100 {
		return 7
	}
	return math.Log10(100 / (100 - p))
}

var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"f":   func(format string, v float64) string { return fmt.Sprintf(format, v) },
	"mib": func(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>authnzbench {{.R.Started.Format "2006-01-02 15:04:05Z"}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; max-width: 1100px; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 2px 8px; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f4f4f4; }
.chart { display: block; margin: 1.5em 0; font-size: 11px; }
.chart text { fill: #222; }
.chart .title { font-size: 13px; font-weight: bold; }
.chart .val { fill: #444; }
.chart .axis { stroke: #444; }
.chart .grid { stroke: #e4e4e4; }
.chart .frame { fill: none; stroke: #888; }
.chart .ref { stroke: #d62728; stroke-dasharray: 5 4; }
.met { color: #2a7d2a; font-weight: bold; } .notmet { color: #b22222; font-weight: bold; }
.note { color: #555; }
</style>
</head>
<body>
<h1>authnzbench report</h1>
<p>Started {{.R.Started.Format "2006-01-02 15:04:05 MST"}}.
Machine: {{.R.Machine.CPU}}, {{.R.Machine.Cores}} cores (GOMAXPROCS {{.R.Machine.GOMAXPROCS}}), {{printf "%.1f" .R.Machine.MemTotalGB}} GB,
{{.R.Machine.GoVersion}}, {{.R.Machine.OS}}, kernel {{.R.Machine.Kernel}}, load average at start {{.R.Machine.LoadAvg}}.</p>
<p>Target {{.R.Settings.Target}}, {{.R.Settings.Mode}}{{if .R.Settings.Rate}} at {{printf "%.0f" .R.Settings.Rate}} req/s{{end}},
{{.R.Settings.Conns}} connections, {{.R.Settings.Runs}} rounds of {{.R.Settings.Seconds}} s; figures are medians over the rounds.
Load generator{{if gt (len .R.Settings.Drivers) 1}}s{{end}}: {{range $i, $d := .R.Settings.Drivers}}{{if $i}} and {{end}}{{$d}}{{end}}{{with .R.Settings.Wrk}} ({{.}}, one thread){{end}}; ratios are to the baselines the same driver measured in the same round.
One answer in {{.R.Settings.Sample}} fully checked; session pool {{.R.Settings.Pool}}{{if .R.Settings.CheapHash}}; cheap Argon2 parameters (login figures are not representative){{end}}.</p>

<h2>Throughput</h2>
{{.Throughput}}
<h2>Ratios to the baselines</h2>
<p class="note">Each figure's req/s divided by the baseline's req/s measured in the same round (median over rounds). <code>hello</code> prices HTTP on loopback; <code>codec-only</code> adds our own codec with a minimal answer and no state; <code>codec-stick</code> does the protocol's work with fernet-go and encoding/json and answers a session-exists of the real size, with no state: the issue's session-exists targets are stated against it.</p>
{{.Ratios}}

<h2>Latency percentiles</h2>
<p class="note">Median over rounds of each percentile; the grey dashed lines are the baselines, for scale.</p>
{{range .Curves}}<h3>{{.Name}}</h3>
{{range .Notes}}<p class="note">{{.}}</p>
{{end}}{{.SVG}}
{{end}}
<h2>Figures</h2>
<table>
<tr><th>scenario</th><th>figure</th><th>driver</th><th>req/s</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th><th>× hello</th><th>× codec-only</th><th>× codec-stick</th><th>busy</th><th>429</th><th>errors</th><th>bad / sampled</th></tr>
{{range .Rows}}{{$d := .M.Median}}<tr><td>{{.Scenario}}</td><td>{{.M.Name}}</td><td>{{.M.Driver}}</td><td class="n">{{f "%.0f" $d.RPS}}</td><td class="n">{{f "%.3f" $d.P50}}</td><td class="n">{{f "%.3f" $d.P90}}</td><td class="n">{{f "%.3f" $d.P99}}</td><td class="n">{{f "%.3f" $d.P999}}</td><td class="n">{{f "%.1f" $d.Max}}</td><td class="n">{{f "%.2f" .M.VsHello}}</td><td class="n">{{f "%.2f" .M.VsCodec}}</td><td class="n">{{f "%.2f" .M.VsStick}}</td><td class="n">{{$d.Busy}}</td><td class="n">{{$d.Limited}}</td><td class="n">{{$d.Errors}}</td><td class="n">{{$d.BadAns}} / {{$d.Sampled}}</td></tr>
{{end}}</table>
{{if .R.Side}}<h2>Drivers side by side</h2>
<p class="note">The same figures measured by the suite's Go generator and by wrk in the same rounds (medians). go/wrk below 1 is the Go generator's own CPU cost, which also flatters its ratios to hello.</p>
<table>
<tr><th>scenario</th><th>figure</th><th>go req/s</th><th>wrk req/s</th><th>go / wrk</th><th>go p50 ms</th><th>wrk p50 ms</th><th>go p99 ms</th><th>wrk p99 ms</th><th>go × hello</th><th>wrk × hello</th><th>go × codec-only</th><th>wrk × codec-only</th><th>go × codec-stick</th><th>wrk × codec-stick</th></tr>
{{range .R.Side}}<tr><td>{{.Scenario}}</td><td>{{.Name}}</td><td class="n">{{f "%.0f" .GoRPS}}</td><td class="n">{{f "%.0f" .WrkRPS}}</td><td class="n">{{f "%.2f" .GoVsWrk}}</td><td class="n">{{f "%.3f" .GoP50}}</td><td class="n">{{f "%.3f" .WrkP50}}</td><td class="n">{{f "%.3f" .GoP99}}</td><td class="n">{{f "%.3f" .WrkP99}}</td><td class="n">{{f "%.2f" .GoHello}}</td><td class="n">{{f "%.2f" .WrkHello}}</td><td class="n">{{f "%.2f" .GoCodec}}</td><td class="n">{{f "%.2f" .WrkCodec}}</td><td class="n">{{f "%.2f" .GoStick}}</td><td class="n">{{f "%.2f" .WrkStick}}</td></tr>
{{end}}</table>
{{end}}
{{range .R.Scenarios}}{{$s := .}}{{range $k, $v := .Derived}}<p>{{$s.Name}}: <code>{{$k}}</code> = {{f "%.3f" $v}}</p>
{{end}}{{end}}{{if .Skipped}}<h3>Skipped</h3>
<ul>{{range .Skipped}}<li>{{.}}</li>{{end}}</ul>
{{end}}
{{with .R.Memory}}<h2>Memory</h2>
{{if .Skipped}}<p>{{.Skipped}}</p>{{else}}<table>
<tr><th>sessions</th><td class="n">{{.Sessions}}</td></tr>
<tr><th>resident bytes per session</th><td class="n">{{f "%.0f" .BytesPerSession}}</td></tr>
<tr><th>heap bytes per session</th><td class="n">{{f "%.0f" .HeapPerSession}}</td></tr>
<tr><th>RSS before → after (MiB)</th><td class="n">{{mib .RSSBefore}} → {{mib .RSSAfter}}</td></tr>
<tr><th>load rate (req/s)</th><td class="n">{{f "%.0f" .Load.RPS}}</td></tr>
<tr><th>stop (s)</th><td class="n">{{f "%.2f" .StopSeconds}}</td></tr>
<tr><th>restart, loading every record (s)</th><td class="n">{{f "%.2f" .RestartSeconds}}</td></tr>
<tr><th>known session survived the restart</th><td>{{.Verified}}</td></tr>
</table>
{{range .Notes}}<p class="note">{{.}}</p>
{{end}}{{end}}{{end}}
{{with .R.Soak}}<h2>Soak</h2>
{{if .Skipped}}<p>{{.Skipped}}</p>{{else}}<p>{{.Seconds}} s in open loop at {{f "%.0f" .Rate}} req/s: {{f "%.2f" .Load}} × the mix's closed-loop maximum of {{f "%.0f" .MaxRPS}} req/s
(measured for {{.Probe.Seconds | f "%.1f"}} s just before); latency from each request's due time; windows of {{.WindowSeconds}} s.</p>
<table>
<tr><th>requests (req/s)</th><td class="n">{{.Run.Requests}} ({{f "%.0f" .Run.RPS}})</td></tr>
<tr><th>errors (not 200)</th><td class="n">{{.Errors}}</td></tr>
<tr><th>statuses</th><td>{{range $k, $v := .Statuses}}{{$k}}: {{$v}} {{end}}</td></tr>
<tr><th>status classes</th><td>{{range $k, $v := .Classes}}{{$k}}: {{$v}} {{end}}</td></tr>
<tr><th>bad / sampled answers</th><td class="n">{{.Run.BadAns}} / {{.Run.Sampled}}</td></tr>
<tr><th>p50 / p99 / p99.9 / max over the run (ms)</th><td class="n">{{f "%.3f" .Run.P50}} / {{f "%.3f" .Run.P99}} / {{f "%.3f" .Run.P999}} / {{f "%.1f" .Run.Max}}</td></tr>
<tr><th>p50 drift, last window ÷ first</th><td class="n">{{f "%.2f" .P50Drift}}</td></tr>
<tr><th>p99 drift, last window ÷ first</th><td class="n">{{f "%.2f" .P99Drift}}</td></tr>
{{if .RSSStart}}<tr><th>RSS start → end (MiB)</th><td class="n">{{mib .RSSStart}} → {{mib .RSSEnd}}</td></tr>
<tr><th>RSS growth</th><td class="n">{{f "%+.1f" .RSSGrowthMiB}} MiB ({{f "%+.1f" .RSSGrowthPct}} %)</td></tr>
{{end}}{{if .HeapStart}}<tr><th>Go live heap start → end (MiB)</th><td class="n">{{mib .HeapStart}} → {{mib .HeapEnd}}</td></tr>
{{end}}<tr><th>sessions made by the mix's session-new</th><td class="n">{{.SessionsCreated}}</td></tr>
</table>
{{range .Notes}}<p class="note">{{.}}</p>
{{end}}{{$.SoakLatency}}
{{$.SoakMemory}}
<table>
<tr><th>window</th><th>from s</th><th>req/s</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>max ms</th><th>errors</th><th>status classes</th><th>RSS MiB</th><th>heap MiB</th></tr>
{{range $i, $w := .Windows}}<tr><td class="n">{{$i}}</td><td class="n">{{f "%.1f" $w.Start}}</td><td class="n">{{f "%.0f" $w.RPS}}</td><td class="n">{{f "%.3f" $w.P50}}</td><td class="n">{{f "%.3f" $w.P90}}</td><td class="n">{{f "%.3f" $w.P99}}</td><td class="n">{{f "%.1f" $w.Max}}</td><td class="n">{{$w.Errors}}</td><td>{{range $k, $v := $w.Classes}}{{$k}}: {{$v}} {{end}}</td><td class="n">{{mib $w.RSS}}</td><td class="n">{{mib $w.HeapLive}}</td></tr>
{{end}}</table>
{{end}}{{end}}
{{if .R.Targets}}<h2>Targets (measured, never asserted)</h2>
<table>
<tr><th>target</th><th>measured</th><th>goal</th><th>met?</th><th>note</th></tr>
{{range .R.Targets}}<tr><td>{{.Name}}</td><td class="n">{{f "%.3f" .Value}}</td><td>{{.Goal}}</td><td>{{if .Met}}<span class="met">met</span>{{else}}<span class="notmet">not met</span>{{end}}{{if gt .Rounds 1}}, {{.RoundsMet}} of {{.Rounds}} rounds{{end}}</td><td>{{.Note}}</td></tr>
{{end}}</table>
{{end}}</body>
</html>
`))
