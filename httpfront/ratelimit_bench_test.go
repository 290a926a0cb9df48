package httpfront

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/shard"
	"github.com/authnzerver/authnzerver/wire"
)

const benchKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// benchServer is a front with an in-memory core (no store) and a live
// session of the superuser.
type benchServer struct {
	s     *Server
	codec *wire.Codec
	token string
}

func newBenchServer(tb testing.TB, limits string) *benchServer {
	tb.Helper()
	codec, err := wire.NewCodec([]string{benchKey}, 0)
	if err != nil {
		tb.Fatal(err)
	}
	core, err := actors.Start(actors.NewActorSystem(slog.New(slog.NewTextHandler(io.Discard, nil))), nil, nil, actors.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(core.Stop)
	now := time.Now()
	if _, err := actors.Ask[shard.User](core, actors.CreateUser{User: shard.User{ID: shard.SuperuserID, Email: "admin@example.org", IsActive: true, Role: "superuser"}}); err != nil {
		tb.Fatal(err)
	}
	token := "bench-session-token-0123456789abcdefghijklmno"
	d := shard.DigestSession(token)
	if _, err := actors.Ask[shard.Session](core, actors.CreateSession{Digest: d, UserID: shard.SuperuserID, IPAddress: "10.0.0.1", UserAgent: "bench", Expires: now.Add(time.Hour)}); err != nil {
		tb.Fatal(err)
	}
	_ = now
	s, err := New(Options{RateLimits: limits, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, Deps{Codec: codec, Core: core})
	if err != nil {
		tb.Fatal(err)
	}
	return &benchServer{s: s, codec: codec, token: token}
}

// bodies seals n requests of one type from n client IPs: a load from many
// clients spreads over the buckets as a real one does.
func (bs *benchServer) bodies(tb testing.TB, n int, reqType string, body map[string]any) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		plain, _ := json.Marshal(map[string]any{"request": reqType, "body": body, "reqid": i, "client_ipaddr": ip})
		sealed, err := bs.codec.Seal(plain)
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = sealed
	}
	return out
}

// run sends the bodies round-robin through the handler from parallel
// goroutines and fails on any answer but 200. Like a server with many open
// connections, it keeps several requests in flight per CPU, so that the
// figure is throughput, not the latency of one request's actor hops.
func (bs *benchServer) run(b *testing.B, bodies [][]byte) {
	h := bs.s.Handler()
	var next atomic.Uint64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		for pb.Next() {
			ctx.Request.Reset()
			ctx.Response.Reset()
			ctx.Request.Header.SetMethod("POST")
			ctx.Request.SetRequestURI("/")
			ctx.Request.Header.SetHost("localhost")
			ctx.Request.SetBody(bodies[next.Add(1)%uint64(len(bodies))])
			h(&ctx)
			if c := ctx.Response.StatusCode(); c != 200 {
				b.Fatalf("status %d: %s", c, ctx.Response.Body())
			}
		}
	})
}

// Limits high enough that the benchmark never meets them: it measures the
// cost of the check, not of refusals.
const benchLimits = "ipaddr:1000000; user:1000000; session:1000000; apikey:1000000; burst:1000000"

// BenchmarkRateLimit compares session-exists with rate limiting off and on,
// and user-check-limit with it on, in one run (the target: on ≥ 90%
// of off). Compare ns/op: on/off throughput ratio = off ns/op ÷ on ns/op.
func BenchmarkRateLimit(b *testing.B) {
	for _, tc := range []struct {
		name, limits, reqType string
	}{
		{"session-exists/limits=off", "none", "session-exists"},
		{"session-exists/limits=on", benchLimits, "session-exists"},
		{"user-check-limit/limits=on", benchLimits, "user-check-limit"},
		{"user-check-access/limits=on", benchLimits, "user-check-access"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			bs := newBenchServer(b, tc.limits)
			bs.run(b, bs.bodies(b, 1024, tc.reqType, benchBody(bs, tc.reqType)))
		})
	}
}

// benchBody is the body of a benchmarked request of type reqType: each
// passes its checks (TestBenchServerAnswers).
func benchBody(bs *benchServer, reqType string) map[string]any {
	switch reqType {
	case "user-check-limit":
		return map[string]any{"user_id": 1, "user_role": "superuser", "limit_name": "max_requests", "value_to_check": 10}
	case "user-check-access":
		return map[string]any{"user_id": 1, "user_role": "superuser", "action": "view", "target_name": "dataset",
			"target_owner": 1, "target_visibility": "public", "target_sharedwith": ""}
	}
	return map[string]any{"session_token": bs.token}
}

// TestBenchServerAnswers keeps the benchmark's set-up honest: the session
// is found and the limit check passes, with limits on.
func TestBenchServerAnswers(t *testing.T) {
	bs := newBenchServer(t, benchLimits)
	for _, tc := range []struct {
		reqType string
		body    map[string]any
	}{
		{"session-exists", benchBody(bs, "session-exists")},
		{"user-check-limit", benchBody(bs, "user-check-limit")},
		{"user-check-access", benchBody(bs, "user-check-access")},
	} {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI("/")
		ctx.Request.Header.SetHost("localhost")
		ctx.Request.SetBody(bs.bodies(t, 1, tc.reqType, tc.body)[0])
		bs.s.Handler()(&ctx)
		plain, err := bs.codec.Open(ctx.Response.Body())
		if err != nil || ctx.Response.StatusCode() != 200 {
			t.Fatalf("%s: status %d, open: %v", tc.reqType, ctx.Response.StatusCode(), err)
		}
		var env struct{ Success bool }
		if json.Unmarshal(plain, &env) != nil || !env.Success {
			t.Errorf("%s: got %s; want success", tc.reqType, plain)
		}
	}
}

// TestRateLimiterAllocs checks that a limited request's check allocates at
// most the one small object protoactor-go makes per message.
func TestRateLimiterAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	bs := newBenchServer(t, benchLimits)
	l := bs.s.limits
	body := map[string]json.RawMessage{"session_token": json.RawMessage(`"x"`)}
	ip := []byte("10.0.0.1")
	if n := testing.AllocsPerRun(200, func() { l.allow("session-exists", ip, body, true) }); n > 1 {
		t.Errorf("got %v allocs per check; want at most 1", n)
	}
}
