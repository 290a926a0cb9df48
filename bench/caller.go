package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/authnzerver/authnzerver/wire"
)

// Answer is a decrypted answer of a setup request.
type Answer struct {
	Status   int
	Success  bool
	Reason   string         // failure_reason, or the plain text of an unencrypted error
	Response map[string]any // the envelope's response object
}

// ErrSkip marks a scenario the target cannot run yet (a request type it
// does not know); the suite reports the message and goes on.
var ErrSkip = errors.New("skipped")

// skipf returns an error wrapping ErrSkip.
func skipf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrSkip}, args...)...)
}

// caller sends setup requests (sessions, users, keys created before the
// measured window). It seals each request on the spot: setup is not timed.
type caller struct {
	t  *Target
	hc *fasthttp.HostClient
}

func newCaller(t *Target, conns int) *caller { return &caller{t: t, hc: t.client(conns)} }

func (c *caller) close() { c.hc.CloseIdleConnections() }

// post seals plain, sends it to POST / and returns the answer's status and
// a copy of its body.
func (c *caller) post(plain []byte) (int, []byte, error) {
	sealed, err := c.t.Codec.Seal(plain)
	if err != nil {
		return 0, nil, err
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(c.t.URL)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetBodyRaw(sealed)
	if err := c.hc.DoTimeout(req, resp, 60*time.Second); err != nil {
		return 0, nil, err
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...), nil
}

// call sends one request and decrypts the answer.
func (c *caller) call(call Call) (Answer, error) {
	plain, err := envelope(call, 1)
	if err != nil {
		return Answer{}, err
	}
	status, body, err := c.post(plain)
	if err != nil {
		return Answer{}, fmt.Errorf("bench: %s: %w", call.Type, err)
	}
	a := Answer{Status: status}
	opened, err := c.t.Codec.Open(body)
	if err != nil {
		a.Reason = string(body)
		return a, nil
	}
	var env wire.Response
	if err := json.Unmarshal(opened, &env); err != nil {
		return a, fmt.Errorf("bench: %s: answer is not an envelope: %w", call.Type, err)
	}
	a.Success = env.Success && a.Status == fasthttp.StatusOK
	if env.FailureReason != nil {
		a.Reason = *env.FailureReason
	}
	if len(env.Response) > 0 {
		_ = json.Unmarshal(env.Response, &a.Response) // a non-object response leaves Response nil
	}
	return a, nil
}

// must sends a request that has to succeed. A 400 answer (the reference's
// and our answer to a request type the server does not know) becomes a
// skip, so scenarios written ahead of their server capability say so
// instead of failing.
func (c *caller) must(call Call) (Answer, error) {
	a, err := c.call(call)
	if err != nil {
		return a, err
	}
	if a.Status == fasthttp.StatusBadRequest {
		return a, skipf("the server does not support %q yet (HTTP 400: %s)", call.Type, a.Reason)
	}
	if !a.Success {
		return a, fmt.Errorf("bench: %s failed: HTTP %d, failure_reason %q", call.Type, a.Status, a.Reason)
	}
	return a, nil
}

// many runs n setup calls with conc at a time and returns their answers
// in order. The first error stops it.
func (c *caller) many(n, conc int, gen Gen) ([]Answer, error) {
	out := make([]Answer, n)
	var (
		mu    sync.Mutex
		first error
		next  int
		wg    sync.WaitGroup
	)
	for range max(1, min(conc, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil || i >= n
				mu.Unlock()
				if stop {
					return
				}
				a, err := c.must(gen(i))
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				out[i] = a
			}
		}()
	}
	wg.Wait()
	return out, first
}

// str reads a string field of a response object.
func (a Answer) str(key string) string {
	s, _ := a.Response[key].(string)
	return s
}

// limiterOn tells whether c's server applies rate limits: with limits on a
// request without client_ipaddr is refused with 400 (docs/protocol.md, "The
// pipeline of `POST /`"); with them off it is answered.
func limiterOn(c *caller) (bool, error) {
	code, _, err := c.post([]byte(`{"request":"session-exists","body":{"session_token":"x"},"reqid":1}`))
	if err != nil {
		return false, fmt.Errorf("bench: limiter probe: %w", err)
	}
	switch code {
	case fasthttp.StatusBadRequest:
		return true, nil
	case fasthttp.StatusOK:
		return false, nil
	default:
		return false, fmt.Errorf("bench: limiter probe answered HTTP %d", code)
	}
}
