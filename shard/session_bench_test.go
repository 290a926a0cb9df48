package shard

import (
	"fmt"
	"testing"
	"time"
)

func newShardWithSessions(b *testing.B, n int) (*Shard, []SessionDigest) {
	b.Helper()
	s := New(Options{})
	now := time.Unix(1_700_000_000, 0)
	ds := make([]SessionDigest, n)
	for i := range ds {
		ds[i] = DigestSession(fmt.Sprint("token-", i))
		s.CreateSession(ds[i], NewSession{UserID: AnonymousID, IPAddress: "192.0.2.1", UserAgent: "Mozilla/5.0 (bench)", Expires: now.Add(time.Hour)}, now)
	}
	return s, ds
}

// The session check's state step, without actors (compare with the actor
// hop in bench/hop_bench_test.go).
func BenchmarkLookupSession(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			s, ds := newShardWithSessions(b, n)
			now := time.Unix(1_700_000_000, 0)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := s.LookupSession(ds[i%len(ds)], now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCreateSession(b *testing.B) {
	s := New(Options{})
	now := time.Unix(1_700_000_000, 0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d := DigestSession(fmt.Sprint("token-", i))
		s.CreateSession(d, NewSession{UserID: 4, IPAddress: "192.0.2.1", UserAgent: "Mozilla/5.0 (bench)", Expires: now.Add(time.Hour)}, now)
	}
}

// A sweep that finds nothing to delete: the cost one sweep tick puts on a
// shard actor's turn (session checks of that shard wait behind it).
func BenchmarkSweepNothingExpired(b *testing.B) {
	for _, n := range []int{10_000, 125_000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			s, _ := newShardWithSessions(b, n)
			now := time.Unix(1_700_000_000, 0)
			b.ReportAllocs()
			for b.Loop() {
				if muts := s.Sweep(now, 10000); len(muts) != 0 {
					b.Fatalf("swept %d", len(muts))
				}
			}
		})
	}
}
