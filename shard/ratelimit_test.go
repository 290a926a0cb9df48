package shard

import (
	"hash/maphash"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// step is one request at offset at; want is whether it passes and, when it
// does not, the Retry-After it reports.
type step struct {
	at    time.Duration
	n     int // requests at this instant (default 1)
	pass  int // how many of them must pass
	retry time.Duration
}

func TestRateTake(t *testing.T) {
	tests := []struct {
		name  string
		rate  Rate
		steps []step
	}{
		{"burst then refuse", PerMinute(10, 5), []step{
			{at: 0, n: 12, pass: 5, retry: 6 * time.Second},
		}},
		{"refill one per interval", PerMinute(10, 5), []step{
			{at: 0, n: 5, pass: 5},
			{at: 5999 * time.Millisecond, n: 1, pass: 0, retry: time.Millisecond},
			{at: 6 * time.Second, n: 2, pass: 1, retry: 6 * time.Second},
			{at: 12 * time.Second, n: 1, pass: 1},
		}},
		{"refused requests do not count", PerMinute(60, 1), []step{
			{at: 0, n: 1, pass: 1},
			{at: 500 * time.Millisecond, n: 100, pass: 0, retry: 500 * time.Millisecond},
			{at: time.Second, n: 1, pass: 1},
		}},
		{"full again after idle, no more than the burst", PerMinute(60, 3), []step{
			{at: 0, n: 3, pass: 3},
			{at: time.Hour, n: 5, pass: 3, retry: time.Second},
		}},
		{"aggressive: exactly N quickly", PerMinute(5, 5), []step{
			{at: 0, n: 6, pass: 5, retry: 12 * time.Second},
		}},
		{"burst below 1 is 1", PerMinute(60, 0), []step{
			{at: 0, n: 2, pass: 1, retry: time.Second},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{})
			for _, st := range tc.steps {
				now := t0.Add(st.at)
				passed := 0
				var retry time.Duration
				for range max(st.n, 1) {
					ok, r := s.RateTake(42, tc.rate, now)
					if ok {
						passed++
						if r != 0 {
							t.Errorf("at %v: passed with retry %v; want 0", st.at, r)
						}
					} else {
						retry = r
					}
				}
				if passed != st.pass {
					t.Errorf("at %v: got %d passed; want %d", st.at, passed, st.pass)
				}
				if passed < max(st.n, 1) && retry != st.retry {
					t.Errorf("at %v: got retry %v; want %v", st.at, retry, st.retry)
				}
			}
		})
	}
}

// TestRateSteady checks that a client sending as fast as it may gets R a
// minute, whatever the window: in any minute at most burst + R pass, and over
// ten minutes the total is burst + 10R.
func TestRateSteady(t *testing.T) {
	const perMin, burst = 30, 4
	r := PerMinute(perMin, burst)
	s := New(Options{})
	var passes []time.Duration
	for at := time.Duration(0); at <= 10*time.Minute; at += 100 * time.Millisecond {
		if ok, _ := s.RateTake(7, r, t0.Add(at)); ok {
			passes = append(passes, at)
		}
	}
	if got, want := len(passes), burst+10*perMin; got != want {
		t.Errorf("got %d passed in 10 min; want %d", got, want)
	}
	// Any one-minute window, at any offset, sees at most burst + R.
	for i := range passes {
		n := 0
		for j := i; j < len(passes) && passes[j]-passes[i] < time.Minute; j++ {
			n++
		}
		if n > burst+perMin {
			t.Fatalf("window from %v: got %d passed; want at most %d", passes[i], n, burst+perMin)
		}
	}
	// After the burst, the window straddling two minutes holds R.
	n := 0
	for _, p := range passes {
		if p >= 90*time.Second && p < 150*time.Second {
			n++
		}
	}
	if n != perMin {
		t.Errorf("window 1:30-2:30: got %d passed; want %d", n, perMin)
	}
}

func TestRateKeysIndependent(t *testing.T) {
	s := New(Options{})
	r := PerMinute(1, 1)
	if ok, _ := s.RateTake(1, r, t0); !ok {
		t.Fatal("key 1 first: refused; want pass")
	}
	if ok, _ := s.RateTake(1, r, t0); ok {
		t.Fatal("key 1 second: passed; want refused")
	}
	if ok, _ := s.RateTake(2, r, t0); !ok {
		t.Fatal("key 2 first: refused; want pass")
	}
}

func TestRatePeekAndRefund(t *testing.T) {
	s := New(Options{})
	r := PerMinute(60, 2)
	if ok, _ := s.RatePeek(9, r, t0); !ok {
		t.Fatal("peek of an unknown key: refused; want pass")
	}
	s.RateTake(9, r, t0)
	s.RateTake(9, r, t0)
	if ok, retry := s.RatePeek(9, r, t0); ok || retry != time.Second {
		t.Fatalf("peek when empty: got %v, %v; want false, 1s", ok, retry)
	}
	s.RateRefund(9, r)
	if ok, _ := s.RateTake(9, r, t0); !ok {
		t.Fatal("take after refund: refused; want pass")
	}
	if ok, _ := s.RateTake(9, r, t0); ok {
		t.Fatal("take after the refunded slot was used: passed; want refused")
	}
}

func TestRateEviction(t *testing.T) {
	s := New(Options{})
	s.SetRateBucketCap(100)
	r := PerMinute(1, 1)
	for k := uint64(0); k < 1000; k++ {
		s.RateTake(k, r, t0)
		if n := s.RateBuckets(); n > 100 {
			t.Fatalf("after %d keys: got %d buckets; want at most 100", k+1, n)
		}
	}
	// The most recent 100 keys are still limited; the oldest were evicted.
	if ok, _ := s.RateTake(999, r, t0); ok {
		t.Error("recent key 999: passed; want refused")
	}
	if ok, _ := s.RateTake(0, r, t0); !ok {
		t.Error("evicted key 0: refused; want a fresh bucket")
	}
	// The least recently used bucket goes first; a refused request does
	// not refresh a bucket's place.
	s = New(Options{})
	s.SetRateBucketCap(3)
	for _, k := range []uint64{10, 11, 12} {
		s.RateTake(k, r, t0)
	}
	s.RateTake(10, r, t0) // refused
	s.RateTake(13, r, t0) // evicts 10
	if got := s.RateBuckets(); got != 3 {
		t.Fatalf("got %d buckets; want 3", got)
	}
	if ok, _ := s.RateTake(12, r, t0); ok {
		t.Error("key 12: passed; want refused (still held)")
	}
	if ok, _ := s.RateTake(10, r, t0); !ok {
		t.Error("key 10: refused; want a fresh bucket (evicted)")
	}
	// A cap of one: every new key evicts the last.
	s.SetRateBucketCap(1)
	for k := uint64(100); k < 110; k++ {
		if ok, _ := s.RateTake(k, r, t0); !ok {
			t.Fatalf("cap 1, key %d: refused; want pass", k)
		}
	}
	if got := s.RateBuckets(); got != 1 {
		t.Fatalf("cap 1: got %d buckets; want 1", got)
	}
}

func TestRateSweepDropsFullBuckets(t *testing.T) {
	s := New(Options{})
	slow, fast := PerMinute(1, 1), PerMinute(6000, 1)
	s.RateTake(1, slow, t0)
	for k := uint64(2); k < 50; k++ {
		s.RateTake(k, fast, t0)
	}
	s.Sweep(t0.Add(time.Second), 1000)
	if got := s.RateBuckets(); got != 1 {
		t.Fatalf("after sweep: got %d buckets; want 1 (the slow one)", got)
	}
	if ok, _ := s.RateTake(1, slow, t0.Add(time.Second)); ok {
		t.Error("slow bucket after sweep: passed; want refused")
	}
	s.Sweep(t0.Add(2*time.Minute), 1000)
	if got := s.RateBuckets(); got != 0 {
		t.Fatalf("after full refill: got %d buckets; want 0", got)
	}
	// The table works again after being emptied.
	if ok, _ := s.RateTake(1, slow, t0.Add(2*time.Minute)); !ok {
		t.Error("after empty: refused; want pass")
	}
}

func TestRateKeySpaces(t *testing.T) {
	seed := maphash.MakeSeed()
	a := RateKey(seed, 'i', "user-lookup-email", "a@b")
	b := RateKey(seed, 'e', "user-lookup-email", "a@b")
	c := RateKey(seed, 'i', "user-lookup-emai", "la@b")
	if a == b || a == c {
		t.Errorf("keys collide: %x %x %x", a, b, c)
	}
	if got := RateKey(seed, 'i', "user-lookup-email", "a@b"); got != a {
		t.Errorf("got %x; want %x (stable)", got, a)
	}
}

func TestRateTakeAllocs(t *testing.T) {
	s := New(Options{})
	r := PerMinute(1<<20, 1<<20)
	s.RateTake(5, r, t0)
	if n := testing.AllocsPerRun(1000, func() { s.RateTake(5, r, t0) }); n != 0 {
		t.Errorf("got %v allocs per take; want 0", n)
	}
}

func BenchmarkRateTake(b *testing.B) {
	s := New(Options{})
	r := PerMinute(1<<20, 1<<20)
	seed := maphash.MakeSeed()
	keys := make([]uint64, 4096)
	for i := range keys {
		keys[i] = RateKey(seed, 'i', "session-exists", time.Duration(i).String())
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.RateTake(keys[i&4095], r, t0)
	}
}

func BenchmarkRateKey(b *testing.B) {
	seed := maphash.MakeSeed()
	b.ReportAllocs()
	for b.Loop() {
		RateKey(seed, 'i', "session-exists", "203.0.113.17")
	}
}
