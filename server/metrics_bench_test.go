package server_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/authnzerver/authnzerver/config"
	"github.com/authnzerver/authnzerver/server"
	"github.com/authnzerver/authnzerver/server/servertest"
)

// startInProcess starts a server without listening, logging at info (the
// production default, so the per-request debug line is not formatted) to
// nowhere.
func startInProcess(b *testing.B, metricsAddr string) *server.Server {
	b.Helper()
	env := map[string]string{
		"AUTHNZERVER_AUTHDB":         b.TempDir(),
		"AUTHNZERVER_SECRET":         "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		"AUTHNZERVER_PIISALT":        "bench-salt",
		"AUTHNZERVER_ADMIN_EMAIL":    servertest.AdminEmail,
		"AUTHNZERVER_ADMIN_PASSWORD": servertest.AdminPassword,
		"AUTHNZERVER_METRICSADDR":    metricsAddr,
		"AUTHNZERVER_RATELIMITS":     "none",
		"AUTHNZERVER_FQDN":           "authnzerver.test",
	}
	cfg, err := config.Load(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	hp := servertest.CheapHash
	srv, err := server.Start(cfg, server.Options{
		Logger:     slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Getenv:     func(k string) string { return env[k] },
		HashParams: &hp,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	return srv
}

// call runs one sealed request through the front's handler in process.
func benchCall(b *testing.B, h fasthttp.RequestHandler, ctx *fasthttp.RequestCtx, sealed []byte) {
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI("/")
	ctx.Request.Header.SetHost("127.0.0.1")
	ctx.Request.SetBody(sealed)
	h(ctx)
	if ctx.Response.StatusCode() != 200 {
		b.Fatalf("status %d", ctx.Response.StatusCode())
	}
}

func benchSeal(b *testing.B, srv *server.Server, reqType string, body map[string]any) []byte {
	b.Helper()
	plain, err := json.Marshal(map[string]any{"request": reqType, "body": body, "reqid": "bench", "client_ipaddr": "127.0.0.1"})
	if err != nil {
		b.Fatal(err)
	}
	sealed, err := srv.Codec.Seal(plain)
	if err != nil {
		b.Fatal(err)
	}
	return sealed
}

// benchSessionExists makes a session through h and returns a sealed
// session-exists request for it.
func benchSessionExists(b *testing.B, srv *server.Server, h fasthttp.RequestHandler, ctx *fasthttp.RequestCtx) []byte {
	b.Helper()
	benchCall(b, h, ctx, benchSeal(b, srv, "session-new", map[string]any{
		"ip_address": "10.1.2.3", "user_agent": "bench", "user_id": 1,
		"expires": "2099-01-01T00:00:00", "extra_info_json": nil, "client_ipaddr": "127.0.0.1",
	}))
	plain, err := srv.Codec.Open(ctx.Response.Body())
	if err != nil {
		b.Fatal(err)
	}
	var env struct {
		Response struct {
			Token string `json:"session_token"`
		} `json:"response"`
	}
	if err := json.Unmarshal(plain, &env); err != nil || env.Response.Token == "" {
		b.Fatalf("session-new: %v %s", err, plain)
	}
	return benchSeal(b, srv, "session-exists", map[string]any{"session_token": env.Response.Token, "client_ipaddr": "127.0.0.1"})
}

// BenchmarkSessionExistsMetrics prices the metrics on the hot path: the same
// session-exists request through the whole front (open, validate, shard
// hop, seal), with metrics off and on.
//
// On the shared 2-core machine (go test -run '^$' -bench SessionExistsMetrics
// -count 10 ./server, benchstat); docs/operations.md, "Metrics", has the
// figures.
func BenchmarkSessionExistsMetrics(b *testing.B) {
	for _, tc := range []struct{ name, addr string }{{"metrics=off", ""}, {"metrics=on", "127.0.0.1:0"}} {
		b.Run(tc.name, func(b *testing.B) {
			srv := startInProcess(b, tc.addr)
			h := srv.Front.Handler()
			var ctx fasthttp.RequestCtx
			ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, nil)
			exists := benchSessionExists(b, srv, h, &ctx)
			b.ReportAllocs()
			for b.Loop() {
				benchCall(b, h, &ctx, exists)
			}
		})
	}
}

// BenchmarkSessionExistsMetricsRatio runs the two servers of
// BenchmarkSessionExistsMetrics in alternating rounds of 1000 requests and
// reports the ratio of their fastest rounds ("on/off"), which is robust to
// the load spikes of a shared machine where separate runs are not.
func BenchmarkSessionExistsMetricsRatio(b *testing.B) {
	type side struct {
		h      fasthttp.RequestHandler
		ctx    fasthttp.RequestCtx
		exists []byte
		best   time.Duration
	}
	var sides [2]*side
	for i, addr := range []string{"", "127.0.0.1:0"} {
		srv := startInProcess(b, addr)
		s := &side{h: srv.Front.Handler(), best: time.Hour}
		s.ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, nil)
		s.exists = benchSessionExists(b, srv, s.h, &s.ctx)
		sides[i] = s
	}
	const round = 1000
	for i := 0; b.Loop(); i++ {
		for j := range sides {
			s := sides[(i+j)%2] // alternate which side runs first
			start := time.Now()
			for range round {
				benchCall(b, s.h, &s.ctx, s.exists)
			}
			s.best = min(s.best, time.Since(start))
		}
	}
	b.ReportMetric(float64(sides[0].best.Nanoseconds())/round, "off-ns/req")
	b.ReportMetric(float64(sides[1].best.Nanoseconds())/round, "on-ns/req")
	b.ReportMetric(float64(sides[1].best)/float64(sides[0].best), "on/off")
}
