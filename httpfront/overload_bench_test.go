package httpfront

import (
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/passhash"
)

// BenchmarkShedPasswordRequest measures what the front spends on a
// user-login it refuses because the hasher pool is full: the cost every
// request of a flood of password checks has, while the hash worker needs
// the CPU. The pool is held full by jobs sent to a worker process that
// never answers (sleep). Logging is at info, the default, into io.Discard.
// Each invocation waits ~10 s in Stop for the stuck workers, so run it as
// -benchtime 100000x.
func BenchmarkShedPasswordRequest(b *testing.B) {
	bs := newBenchServer(b, "none")
	system := actors.NewActorSystem(slog.New(slog.DiscardHandler))
	hasher := passhash.NewHasher(system, passhash.HasherOptions{
		Workers: 2, QueueLen: 8, Timeout: time.Hour, Process: []string{"sleep", "3600"},
		Params: passhash.HashParams{TimeCost: 1, MemoryKiB: 64, Threads: 1, KeyLen: 32, SaltLen: 16},
	})
	var held sync.WaitGroup
	b.Cleanup(func() {
		hasher.Stop() // kills the worker process: the held jobs fail and return
		held.Wait()
		system.Shutdown()
	})
	for range hasher.Capacity() {
		held.Add(1)
		go func() {
			defer held.Done()
			hasher.Run(passhash.HashOp{Password: "held"})
		}()
	}
	for deadline := time.Now().Add(time.Minute); hasher.InFlight() < hasher.Capacity(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the pool did not fill")
		}
	}
	s, err := New(Options{RateLimits: "none", Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))},
		Deps{Codec: bs.codec, Core: bs.s.deps.Core, Hasher: hasher})
	if err != nil {
		b.Fatal(err)
	}
	bodies := bs.bodies(b, 1024, "user-login", map[string]any{"session_token": "no-such-session-token-0123456789abcdef", "email": "nobody@example.org", "password": "wrong password"})
	h := s.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		i := 0
		for pb.Next() {
			ctx.Request.Reset()
			ctx.Response.Reset()
			ctx.Request.Header.SetMethod("POST")
			ctx.Request.SetRequestURI("/")
			ctx.Request.Header.SetHost("localhost")
			ctx.Request.SetBody(bodies[i%len(bodies)])
			i++
			h(&ctx)
			if c := ctx.Response.StatusCode(); c != 503 {
				b.Fatalf("status %d: %s; want 503", c, ctx.Response.Body())
			}
		}
	})
}
