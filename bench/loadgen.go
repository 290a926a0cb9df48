package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"

	"github.com/authnzerver/authnzerver/wire"
)

// Target is a server the load generator talks to: an authnzerver-compatible
// server (URL and Fernet key) or a baseline.
type Target struct {
	Name  string
	URL   string // http://127.0.0.1:port/
	Key   string // "" for the hello baseline, which is not encrypted
	Codec *wire.Codec
	addr  string
}

// NewTarget checks that url points at this machine (loopback only: load
// is never sent anywhere else) and prepares the codec for key.
func NewTarget(name, rawURL, key string) (*Target, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("bench: target %s: %w", name, err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("bench: target %s: only http:// URLs are supported, not %q", name, u.Scheme)
	}
	if err := checkLoopback(u.Hostname()); err != nil {
		return nil, fmt.Errorf("bench: target %s: %w", name, err)
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	t := &Target{Name: name, URL: "http://" + net.JoinHostPort(u.Hostname(), port) + "/", Key: key, addr: net.JoinHostPort(u.Hostname(), port)}
	if key != "" {
		if t.Codec, err = wire.NewCodec([]string{key}, 0); err != nil {
			return nil, fmt.Errorf("bench: target %s: %w", name, err)
		}
	}
	return t, nil
}

// checkLoopback refuses every host that is not a loopback address: the
// suite generates heavy load and this machine may send it nowhere else.
// Names are not resolved, except "localhost".
func checkLoopback(host string) error {
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing non-loopback address %q: the benchmark only targets 127.0.0.0/8, ::1 or localhost", host)
	}
	return nil
}

// Expect says which answers of a workload are correct.
type Expect struct {
	// Plain: the answer is the bare "ok" of the hello baseline, not an
	// encrypted envelope.
	Plain bool
	// BusyOK: 503 answers are expected (the hasher pool is saturated on
	// purpose) and counted in Stats.Busy instead of Stats.Errors.
	BusyOK bool
	// FailureOK: sampled answers may have success false (a workload whose
	// requests are meant to be refused); they must still decrypt and carry
	// the right reqid.
	FailureOK bool
}

// RunOptions bound one measured run.
type RunOptions struct {
	Label    string
	Conns    int           // keep-alive connections (closed loop: also the concurrency)
	Duration time.Duration // measured window; the run stops at whichever bound comes first
	MaxReqs  int64         // 0: no count bound
	Rate     float64       // requests per second; 0 means closed loop
	// SampleEvery: one answer in SampleEvery is fully decrypted and
	// checked (0: 64). Every answer's HTTP status is always checked.
	SampleEvery int
	Progress    io.Writer // live progress line once a second; nil: none
	// BusyRetry (with Expect.BusyOK): a 503 answer is counted in Busy and
	// the same body is sent again after this pause, as a frontend told
	// "busy, retry later" would, instead of moving on to the next body.
	// Single-use bodies (logins consume their session) are then not burnt
	// by fast 503s. The request counts once, when it is answered otherwise;
	// its latency runs from its first send, so the time spent refused is
	// charged. 0: a 503 ends the request like any answer.
	BusyRetry time.Duration
	// windows (soak) also records every request's latency and status in
	// the time window its due time falls in; nil: not recorded.
	windows *windowed
}

// client returns a fasthttp client with conns keep-alive connections.
func (t *Target) client(conns int) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:                t.addr,
		MaxConns:            conns,
		ReadTimeout:         30 * time.Second,
		WriteTimeout:        30 * time.Second,
		MaxIdleConnDuration: time.Minute,
		MaxConnWaitTimeout:  30 * time.Second,
		// The answers are read and dropped (or copied when sampled).
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
	}
}

// counters are shared by the workers of a run (atomics: the progress
// printer reads them while the workers add).
type counters struct {
	reqs, ok, busy, limited, errs, sampled, bad atomic.Int64
}

// Drive sends bodies to t until opts.Duration or opts.MaxReqs, and returns
// the figures. Closed loop (Rate 0): Conns workers send back to back and
// latency is the round trip. Open loop: request n is due at start+n/Rate,
// and its latency is measured from that intended time, not from when a
// free connection let it go, so a stalled server is charged for the
// requests it delayed (no coordinated omission).
func Drive(ctx context.Context, t *Target, bodies *Bodies, exp Expect, opts RunOptions) (Stats, error) {
	if opts.Conns <= 0 {
		opts.Conns = 1
	}
	if opts.SampleEvery <= 0 {
		opts.SampleEvery = 64
	}
	if opts.Duration <= 0 && opts.MaxReqs <= 0 {
		return Stats{}, fmt.Errorf("bench: run %s: no time or count bound", opts.Label)
	}
	if opts.Duration <= 0 {
		opts.Duration = 10 * time.Minute // the count bound stops it; this is a backstop
	}
	if !exp.Plain && t.Codec == nil {
		return Stats{}, fmt.Errorf("bench: run %s: target %s has no key", opts.Label, t.Name)
	}
	hc := t.client(opts.Conns)
	defer hc.CloseIdleConnections()

	var c counters
	var ticket atomic.Int64 // next request number (open loop: its due time; both: its body)
	hists := make([]*hdrhistogram.Histogram, opts.Conns)
	start := time.Now()
	deadline := start.Add(opts.Duration)
	var interval time.Duration
	if opts.Rate > 0 {
		interval = time.Duration(float64(time.Second) / opts.Rate)
	}
	stopProgress := startProgress(opts.Progress, opts.Label, start, &c)

	var wg sync.WaitGroup
	for w := range opts.Conns {
		h := newHist()
		hists[w] = h
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(t.URL)
			req.Header.SetMethod(fasthttp.MethodPost)
			req.Header.SetContentType("text/plain; charset=UTF-8")
			win := opts.windows.worker()
			defer win.flush()
			for ctx.Err() == nil {
				n := ticket.Add(1) - 1
				if opts.MaxReqs > 0 && n >= opts.MaxReqs {
					return
				}
				var due time.Time
				if interval > 0 {
					due = start.Add(time.Duration(n) * interval)
					if due.After(deadline) {
						return
					}
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
				} else if time.Now().After(deadline) {
					return
				}
				idx := int(n % int64(bodies.Len()))
				req.SetBodyRaw(bodies.Get(idx))
				sent := time.Now()
				if due.IsZero() {
					due = sent
				}
				err := hc.Do(req, resp)
				for err == nil && opts.BusyRetry > 0 && exp.BusyOK && resp.StatusCode() == fasthttp.StatusServiceUnavailable {
					c.busy.Add(1)
					if ctx.Err() != nil || time.Now().Add(opts.BusyRetry).After(deadline) {
						break
					}
					time.Sleep(opts.BusyRetry)
					err = hc.Do(req, resp)
				}
				if err == nil && opts.BusyRetry > 0 && exp.BusyOK && resp.StatusCode() == fasthttp.StatusServiceUnavailable {
					continue // the run ended while it was refused: counted in Busy only
				}
				lat := time.Since(due)
				recordLatency(h, lat)
				if win != nil {
					code := 0 // transport error
					if err == nil {
						code = resp.StatusCode()
					}
					win.record(due.Sub(start), lat, code)
				}
				c.reqs.Add(1)
				if err != nil {
					c.errs.Add(1)
					continue
				}
				switch code := resp.StatusCode(); {
				case code == fasthttp.StatusOK:
					c.ok.Add(1)
				case code == fasthttp.StatusServiceUnavailable && exp.BusyOK:
					c.busy.Add(1)
					continue
				case code == fasthttp.StatusTooManyRequests:
					c.limited.Add(1)
					continue
				default:
					c.errs.Add(1)
					continue
				}
				if n%int64(opts.SampleEvery) == 0 {
					c.sampled.Add(1)
					if checkAnswer(t, exp, resp.Body(), idx) != nil {
						c.bad.Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()

	all := newHist()
	for _, h := range hists {
		all.Merge(h)
	}
	s := Stats{
		Requests: c.reqs.Load(), OK: c.ok.Load(), Busy: c.busy.Load(), Limited: c.limited.Load(),
		Errors: c.errs.Load(), Sampled: c.sampled.Load(), BadAns: c.bad.Load(),
	}
	s.fill(all, elapsed)
	return s, ctx.Err()
}

// checkAnswer fully checks one answer: it decrypts, is an envelope with
// success true (unless exp.FailureOK) and carries the reqid of the body that
// was sent.
func checkAnswer(t *Target, exp Expect, body []byte, reqID int) error {
	if exp.Plain {
		if !bytes.Equal(body, []byte("ok")) {
			return fmt.Errorf("bench: hello answered %q", body)
		}
		return nil
	}
	plain, err := t.Codec.Open(body)
	if err != nil {
		return fmt.Errorf("bench: answer does not decrypt: %w", err)
	}
	var env wire.Response
	if err := json.Unmarshal(plain, &env); err != nil {
		return fmt.Errorf("bench: answer is not an envelope: %w", err)
	}
	if string(env.ReqID) != strconv.Itoa(reqID) {
		return fmt.Errorf("bench: answer reqid %s; want %d", env.ReqID, reqID)
	}
	if !env.Success && !exp.FailureOK {
		reason := ""
		if env.FailureReason != nil {
			reason = *env.FailureReason
		}
		return fmt.Errorf("bench: answer success false (%s)", reason)
	}
	return nil
}

// startProgress prints one line a second to w until the returned func is
// called. The line is rewritten in place (carriage return).
func startProgress(w io.Writer, label string, start time.Time, c *counters) func() {
	if w == nil {
		return func() {}
	}
	// On a terminal the line is rewritten in place; in a log it is one
	// line a second.
	cr, eol, clear := "\r\033[K", "", "\r\033[K"
	if f, ok := w.(*os.File); !ok || !isTerminal(f) {
		cr, eol, clear = "", "\n", ""
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		var last int64
		for {
			select {
			case <-stop:
				fmt.Fprint(w, clear)
				return
			case <-tk.C:
				n := c.reqs.Load()
				fmt.Fprintf(w, "%s%-36s %3.0fs %9d req %7d req/s  err %d busy %d 429 %d bad %d%s",
					cr, label, time.Since(start).Seconds(), n, n-last, c.errs.Load(), c.busy.Load(), c.limited.Load(), c.bad.Load(), eol)
				last = n
			}
		}
	}()
	return func() { close(stop); <-done }
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
