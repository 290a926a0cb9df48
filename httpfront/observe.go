package httpfront

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/passhash"
)

// Observer receives what the front did, for metrics. Package metrics
// implements it with Prometheus; httpfront only knows this interface, so it
// imports no metrics library (and nothing of the server or the store).
//
// Every method runs on the request path and must be safe for concurrent use
// and cheap: an atomic add or two, no allocation, no map lookup keyed by a
// string built per request. [Options].Observer nil turns metrics off, and
// then the front calls nothing at all.
type Observer interface {
	// RequestType returns the recorder of one request type. New calls it
	// once for each registered type (its canonical name; legacy aliases
	// share it) and keeps the result, so label resolution never happens
	// per request.
	RequestType(name string) RequestObserver
	// Response counts one answer to POST / by HTTP status, including the
	// refusals made before a request type is known (400, 401, 413) and the
	// rate-limit refusals (429).
	Response(status int)
	// Busy counts one request refused with 503, by cause.
	Busy(cause BusyCause)
}

// RequestObserver records the requests of one type.
type RequestObserver interface {
	// Done records one request that reached its handler: how it ended and
	// how long it took from the first byte of the body being looked at to
	// the sealed answer.
	Done(outcome Outcome, elapsed time.Duration)
}

// Outcome is how a request that reached its handler ended.
type Outcome uint8

const (
	// OutcomeSuccess: the action ran and answered success: true.
	OutcomeSuccess Outcome = iota
	// OutcomeFailure: the action answered success: false, or the body
	// failed schema validation (docs/protocol.md, "Invalid parameters").
	OutcomeFailure
	// OutcomeError: answered with an error status (503, 500) instead of an
	// envelope.
	OutcomeError
	// NumOutcomes is the number of outcomes, for arrays indexed by them.
	NumOutcomes
)

// String returns the outcome's metric label.
func (o Outcome) String() string {
	switch o {
	case OutcomeSuccess:
		return "success"
	case OutcomeFailure:
		return "failure"
	}
	return "error"
}

// BusyCause says why a request was refused with 503.
type BusyCause uint8

const (
	// BusyHasher: the hasher pool's queue was full (load shedding), or the
	// pool failed (a dead, stalled or stopped hash worker).
	BusyHasher BusyCause = iota
	// BusyTimeout: a shard did not answer in time.
	BusyTimeout
	// BusyStore: the store refuses writes, or the core has stopped.
	BusyStore
	// NumBusyCauses is the number of causes, for arrays indexed by them.
	NumBusyCauses
)

// String returns the cause's metric label.
func (b BusyCause) String() string {
	switch b {
	case BusyHasher:
		return "hasher"
	case BusyTimeout:
		return "timeout"
	}
	return "store"
}

// busyCause classifies the error behind a 503 answer.
func busyCause(err error) BusyCause {
	switch {
	case errors.Is(err, passhash.ErrHasherBusy), errors.Is(err, errBusy), errors.Is(err, actors.ErrBusy),
		errors.Is(err, passhash.ErrHasherFault), errors.Is(err, passhash.ErrHasherTimeout), errors.Is(err, passhash.ErrHasherStopped):
		return BusyHasher
	case errors.Is(err, actors.ErrTimeout):
		return BusyTimeout
	}
	return BusyStore
}

// observeExt is the front's observation state. Static after New.
type observeExt struct {
	obs    Observer                      // nil: metrics off
	byType map[*endpoint]RequestObserver // one per row of requestTable
}

// initObserve resolves the metrics recorder of every request type once
// (legacy aliases share their row's).
func (s *Server) initObserve() {
	s.ext.observe.obs = s.opts.Observer
	if s.opts.Observer == nil {
		return
	}
	s.ext.observe.byType = make(map[*endpoint]RequestObserver, len(requestTable))
	for i := range requestTable {
		ep := &requestTable[i]
		s.ext.observe.byType[ep] = s.opts.Observer.RequestType(ep.name)
	}
}

// finish records a request that reached its handler: its metrics, and its
// log line (debug for every request, info for failures). handleAPI defers
// it, so elapsed includes sealing the answer.
//
// Log lines never carry request bodies or answers: only the request type,
// the outcome, the fixed failure_reason text, the reqid (chosen by the
// frontend, not personal) and the client IP as its PII hash.
func (s *Server) finish(ep *endpoint, c *call, res *result, reqID []byte, start time.Time) {
	outcome := OutcomeSuccess
	switch {
	case res.status != 0:
		outcome = OutcomeError
	case !res.ok:
		outcome = OutcomeFailure
	}
	elapsed := time.Since(start)
	if o := s.ext.observe.obs; o != nil {
		if r := s.ext.observe.byType[ep]; r != nil {
			r.Done(outcome, elapsed)
		}
		if res.status == 503 {
			o.Busy(busyCause(res.cause))
		}
	}
	level := slog.LevelDebug
	if outcome != OutcomeSuccess && res.status != 503 {
		// 503s are counted by cause (Busy above), and their causes log
		// once where they arise: a line for each would make a flood of
		// refused requests a flood of log lines, and cost the refusal
		// most of its price.
		level = slog.LevelInfo
	}
	ctx := context.Background()
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs,
		slog.String("type", c.reqType),
		slog.String("outcome", outcome.String()),
		slog.Duration("elapsed", elapsed),
		slog.String("reqid", logReqID(reqID)),
		slog.String("client", s.pii(c.client())),
	)
	if res.status != 0 {
		attrs = append(attrs, slog.Int("status", res.status))
		if res.cause != nil {
			attrs = append(attrs, slog.String("err", res.cause.Error()))
		}
	}
	if res.reason != "" {
		attrs = append(attrs, slog.String("failure_reason", truncateString(res.reason, 200)))
	}
	s.log.LogAttrs(ctx, level, "request", attrs...)
}

// observeResponse counts every answer to POST / by status, and logs at info
// the refusals made before a handler ran (bad token, bad envelope, body too
// large, rate limit, unknown request type). handle calls it after
// handleAPI.
func (s *Server) observeResponse(ctx *fasthttp.RequestCtx) {
	status := ctx.Response.StatusCode()
	if o := s.ext.observe.obs; o != nil {
		o.Response(status)
	}
	switch status {
	case 400, 401, 405, 413, 429:
	default:
		return
	}
	bg := context.Background()
	if !s.log.Enabled(bg, slog.LevelInfo) {
		return
	}
	// The remote address is the frontend, not an end user, but it is still
	// an IP address: docs/security.md, "Logs", treats those as PII.
	s.log.LogAttrs(bg, slog.LevelInfo, "refused",
		slog.Int("status", status),
		slog.String("remote", s.pii(ctx.RemoteIP().String())))
}

// logReqID returns the reqid for a log line: a JSON string unquoted, any
// other JSON value as its text, at most 64 bytes either way.
func logReqID(raw []byte) string {
	var s string
	if rawKind(raw) == '"' && json.Unmarshal(raw, &s) == nil {
		return truncateString(s, 64)
	}
	return truncateString(string(raw), 64)
}
