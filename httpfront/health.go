package httpfront

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/authnzerver/authnzerver/actors"
)

// handleHealth answers GET /health (docs/protocol.md, "`GET /health`") with
// the reference's JSON shape. It is healthy when every shard answers and the
// store accepts writes (the reference reports healthy even when its DB check
// fails); otherwise it answers 500 and the store's entry says it is failing.
// It is not rate limited when rate limiting is off (the reference crashes
// then).
func (s *Server) handleHealth(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	workers := map[string]string{}
	ok := true
	if _, err := actors.AskAll[any](s.deps.Core, actors.Ping{}); err != nil {
		workers["shards"] = "not answering"
		ok = false
	} else {
		workers["shards"] = "ok"
	}
	if s.deps.Healthy != nil {
		if err := s.deps.Healthy(); err != nil {
			// A fixed text: the error itself names paths, and /health is
			// for anyone who can reach the port. The log has the details.
			workers["store"] = "failing: writes refused"
			var r interface{ Reason() string } // a full disk says so
			if errors.As(err, &r) {
				workers["store"] = "failing: " + r.Reason() + ", writes refused"
			}
			ok = false
		} else {
			workers["store"] = "ok"
		}
	}
	out, _ := json.Marshal(struct {
		Expected int               `json:"Expected-Workers"`
		Workers  map[string]string `json:"Workers"`
		Time     float64           `json:"Check-Time"`
		OK       bool              `json:"Health-Ok"`
	}{len(workers), workers, time.Since(start).Seconds(), ok})
	if ok {
		ctx.SetStatusCode(200)
	} else {
		ctx.SetStatusCode(500)
	}
	ctx.SetContentType("application/json; charset=UTF-8")
	ctx.SetBody(out)
}

// handleEcho answers POST /echo in debug mode (docs/protocol.md,
// "Endpoints"): loopback clients only, the decrypted payload sent back
// sealed.
func (s *Server) handleEcho(ctx *fasthttp.RequestCtx) {
	if !ctx.RemoteIP().IsLoopback() {
		s.plain(ctx, 400)
		return
	}
	plain, err := s.deps.Codec.Open(ctx.PostBody())
	if err != nil {
		s.plain(ctx, 401)
		return
	}
	var m map[string]any
	if json.Unmarshal(plain, &m) != nil || m["request"] != "echo" {
		s.plain(ctx, 400)
		return
	}
	roles := []map[string]string{}
	for _, r := range s.perms().Roles() {
		roles = append(roles, map[string]string{"name": r, "desc": "Role with " + r + " privileges"})
	}
	m["dbtest"] = roles
	out, _ := json.Marshal(m)
	sealed, err := s.deps.Codec.Seal(out)
	if err != nil {
		s.plain(ctx, 500)
		return
	}
	ctx.SetContentType("text/plain; charset=UTF-8")
	ctx.SetBody(sealed)
}
