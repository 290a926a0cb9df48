package bench

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/shard"
	"github.com/authnzerver/authnzerver/wire"
)

// The benchmarks below price one session lookup at each layer, so the
// cost of the actor hop and of the protocol can be read off by
// subtraction:
//
//	BenchmarkHop/shard-direct    LookupSession on a shard value (no actor)
//	BenchmarkHop/GetSession      the same lookup as a named operation (one hop)
//	BenchmarkHop/CheckSession    the session-exists path: session shard, then
//	                             forwarded to the user's shard (two hops, one reply)
//	BenchmarkCodec/*             wire.Codec Seal and Open of a session-exists
//	                             envelope and of a session-exists answer
//
// Figures: go test -run='^$' -bench='Hop|Codec' -benchmem -count=6
// ./bench/ | benchstat (2-core "Oxide Virtual Turin-like" VM, Go 1.26.8,
// load average 12-16 from other engineers' builds during the run, hence
// the wide ± ranges; read the ratios, not the absolute values):
//
//	                            │    sec/op     │    B/op     │ allocs/op │
//	Hop/shard-direct-2            96.82n ±  47%       0 ± 0%     0 ± 0%
//	Hop/actors-Do-2               3.558µ ± 201%     248 ± 0%   5.5 ± 9%
//	Hop/CheckSession-2            5.342µ ±  24%     684 ± 0%     4 ± 0%
//	Hop/CheckSession-parallel-2   7.368µ ±  30%     684 ± 0%     4 ± 0%
//	Codec/Seal-request-2          11.33µ ±  44%   2.344Ki      11
//	Codec/Open-request-2          6.082µ ±  51%   1.984Ki      10
//	Codec/Seal-answer-2           14.43µ ± 101%   4.984Ki      11
//	Codec/Open-answer-2           11.66µ ± 143%   3.500Ki      10
//
// So one actor hop costs some 30x the lookup itself, CheckSession's two
// hops (session shard, then user shard) about 1.5x one hop, and the
// protocol (open the request, seal the answer: ~18-25 µs) several times
// the whole state path: the codec, not the actors, bounds session-exists.

// hopSetup starts our server in process and creates n sessions of the
// superuser through the core, returning their digests.
func hopSetup(b *testing.B, n int) (*actors.Core, []shard.SessionDigest) {
	b.Helper()
	l := startTestLocal(b)
	core := l.Srv.Core
	ds := make([]shard.SessionDigest, n)
	exp := time.Now().Add(time.Hour)
	for i := range ds {
		ds[i] = shard.DigestSession(fmt.Sprintf("bench-session-%d", i))
		d := ds[i]
		res, err := actors.Ask[shard.Session](core, actors.CreateSession{Digest: d, UserID: 1, IPAddress: "10.0.0.1", UserAgent: userAgents[0], Expires: exp})
		if err != nil {
			b.Fatal(err)
		}
		if err := res.Durable(); err != nil {
			b.Fatal(err)
		}
	}
	return core, ds
}

func BenchmarkHop(b *testing.B) {
	const n = 1024
	b.Run("shard-direct", func(b *testing.B) {
		s := shard.New(shard.Options{})
		now := time.Now()
		ds := make([]shard.SessionDigest, n)
		for i := range ds {
			ds[i] = shard.DigestSession(fmt.Sprintf("bench-session-%d", i))
			s.CreateSession(ds[i], shard.NewSession{UserID: 1, IPAddress: "10.0.0.1", UserAgent: userAgents[0], Expires: now.Add(time.Hour)}, now)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if _, err := s.LookupSession(ds[i%n], now); err != nil {
				b.Fatal(err)
			}
		}
	})
	core, ds := hopSetup(b, n)
	b.Run("GetSession", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := actors.Ask[shard.Session](core, actors.GetSession{Digest: ds[i%n]}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CheckSession", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := actors.CheckSession(core, ds[i%n]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CheckSession-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := actors.CheckSession(core, ds[i%n]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	})
}

func BenchmarkCodec(b *testing.B) {
	codec := testCodec(b)
	tok, _ := wire.RandomToken(32)
	req, _ := envelope(Call{Type: "session-exists", Body: map[string]any{"session_token": tok}}, 12345)
	// A session-exists answer of typical size (18 session_info keys).
	ans, _ := json.Marshal(map[string]any{"success": true, "messages": []string{"Session look up successful."}, "reqid": 12345,
		"response": map[string]any{"success": true, "messages": []string{"Session look up successful."}, "session_info": map[string]any{
			"user_id": 4, "system_id": "0b5e2c1e-7a7e-4f0c-9a59-4f1f7e1d2a3b", "full_name": "A User", "email": "a.user@example.org",
			"extra_info": nil, "email_verified": true, "emailverify_sent_datetime": nil, "is_active": true,
			"last_login_try": nil, "last_login_success": nil, "created_on": "2026-01-01T00:00:00.000001", "user_role": "authenticated",
			"session_token": tok, "ip_address": "10.1.2.3", "user_agent": userAgents[0], "created": "2026-01-01T00:00:00.000001",
			"expires": "2026-01-02T00:00:00.000001", "extra_info_json": nil}}})
	for _, tc := range []struct {
		name  string
		plain []byte
	}{{"request", req}, {"answer", ans}} {
		sealed, err := codec.Seal(tc.plain)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("Seal-"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.plain)))
			for b.Loop() {
				if _, err := codec.Seal(tc.plain); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Open-"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.plain)))
			for b.Loop() {
				if _, err := codec.Open(sealed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
