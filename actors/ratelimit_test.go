package actors

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/shard"
)

// startRateCore starts a core with a clock the test moves.
func startRateCore(t *testing.T, shards int) (*Core, *atomic.Int64) {
	t.Helper()
	var offset atomic.Int64
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c, err := Start(NewActorSystem(nil), nil, nil, Options{Shards: shards, Now: func() time.Time {
		return base.Add(time.Duration(offset.Load()))
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c, &offset
}

// keysOn returns two keys on the same shard (same) or on different shards.
func keysOn(c *Core, same bool) (uint64, uint64) {
	a := uint64(1)
	_, ia := c.pidOf(shard.RateRoute(a))
	for b := uint64(2); ; b++ {
		_, ib := c.pidOf(shard.RateRoute(b))
		if (ia == ib) == same {
			return a, b
		}
	}
}

func TestCheckRateTwoBuckets(t *testing.T) {
	for _, same := range []bool{true, false} {
		c, clock := startRateCore(t, 4)
		ip, email := keysOn(c, same)
		ipRate, emailRate := shard.PerMinute(60, 3), shard.PerMinute(6, 2)
		chk := RateCheck{Keys: [2]uint64{ip, email}, Rates: [2]shard.Rate{ipRate, emailRate}, N: 2}
		// The email bucket (2) refuses the third; its refusal must refund the
		// IP bucket, so an IP-only check still has one request left.
		var got []bool
		var lastRetry time.Duration
		for range 3 {
			ok, retry, err := CheckRate(c, &chk)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ok)
			lastRetry = retry
		}
		if !got[0] || !got[1] || got[2] {
			t.Errorf("same shard %v: got %v; want [true true false]", same, got)
		}
		if lastRetry != 10*time.Second {
			t.Errorf("same shard %v: got retry %v; want 10s", same, lastRetry)
		}
		// A refund to another shard is sent before the reply, so it is in
		// that shard's mailbox ahead of the next check.
		ipOnly := RateCheck{Keys: [2]uint64{ip}, Rates: [2]shard.Rate{ipRate}, N: 1}
		if ok, _, _ := CheckRate(c, &ipOnly); !ok {
			t.Errorf("same shard %v: IP bucket after refund: refused; want pass", same)
		}
		if ok, retry, _ := CheckRate(c, &ipOnly); ok || retry != time.Second {
			t.Errorf("same shard %v: IP bucket empty: got %v, %v; want false, 1s", same, ok, retry)
		}
		// Both refuse: Retry-After is the longer wait.
		if ok, retry, _ := CheckRate(c, &chk); ok || retry != 10*time.Second {
			t.Errorf("same shard %v: both empty: got %v, %v; want false, 10s", same, ok, retry)
		}
		clock.Add(int64(10 * time.Second))
		if ok, _, _ := CheckRate(c, &chk); !ok {
			t.Errorf("same shard %v: after 10s: refused; want pass", same)
		}
	}
}

func TestCheckRateConcurrent(t *testing.T) {
	c, _ := startRateCore(t, 4)
	chk := RateCheck{Keys: [2]uint64{77}, Rates: [2]shard.Rate{shard.PerMinute(1, 25)}, N: 1}
	var passed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if ok, _, err := CheckRate(c, &chk); err == nil && ok {
					passed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got := passed.Load(); got != 25 {
		t.Errorf("got %d passed of 400 concurrent; want 25", got)
	}
}

func BenchmarkCheckRate(b *testing.B) {
	c, err := Start(NewActorSystem(nil), nil, nil, Options{Shards: 8})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Stop()
	chk := RateCheck{Keys: [2]uint64{77}, Rates: [2]shard.Rate{shard.PerMinute(1<<30, 1<<20)}, N: 1}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			CheckRate(c, &chk)
		}
	})
}
