package actors

import (
	"crypto/rand"
	"testing"
)

// BenchmarkHashPassword gives the real cost of one hash. Measured on the
// project's 2-core machine (AMD "Turin-like" VM, Go 1.26), while other builds
// kept the load average near 10, so these are upper-ish figures; the best runs
// were about 160 ms for the default parameters:
//
//	go test -run='^$' -bench='Password/params=default' -benchtime=10x -benchmem -count=4 ./actors/
//	BenchmarkHashPassword/params=default-2     10   216594787 ns/op   67117236 B/op   83 allocs/op
//	BenchmarkHashPassword/params=default-2     10   163407704 ns/op   67115726 B/op   79 allocs/op
//	BenchmarkHashPassword/params=default-2     10   158744189 ns/op   67116742 B/op   81 allocs/op
//	BenchmarkHashPassword/params=default-2     10   242173208 ns/op   67116014 B/op   80 allocs/op
//	BenchmarkVerifyPassword/params=default-2   10   317118860 ns/op   67115532 B/op   77 allocs/op
//	BenchmarkVerifyPassword/params=default-2   10   270358367 ns/op   67115488 B/op   77 allocs/op
//
//	go test -run='^$' -bench=. -benchmem -count=3 ./actors/ (best of 3)
//	BenchmarkHashPassword/params=pre21.2-2      4   273801479 ns/op  104867968 B/op   98 allocs/op
//	BenchmarkHashPassword/params=test-2      8310      148500 ns/op      67672 B/op   20 allocs/op
//	BenchmarkHasherRun/path=direct-2         9726      139079 ns/op      67672 B/op   20 allocs/op
//	BenchmarkHasherRun/path=pool-2          10000      101660 ns/op      68295 B/op   27 allocs/op
//
// So with 2 workers the pool sustains roughly 5–10 default hashes a second,
// a login (dummy + real verification) costs two of them, and each hash holds
// 64 MiB. The pool's hop adds about 7 allocations; its time is lost in the
// noise of even the tiny test hash.
func BenchmarkHashPassword(b *testing.B) {
	for _, bc := range []struct {
		name   string
		params HashParams
	}{
		{"default", DefaultHashParams()},
		{"pre21.2", HashParams{TimeCost: 2, MemoryKiB: 102400, Threads: 8, KeyLen: 16, SaltLen: 16}},
		{"test", phcTestParams},
	} {
		b.Run("params="+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := hashPassword(bc.params, "correct horse battery staple", rand.Reader); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyPassword(b *testing.B) {
	for _, bc := range []struct{ name, phc string }{
		{"default", phcTest212},
		{"pre21.2", phcTestPre212},
	} {
		b.Run("params="+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if ok, _, err := verifyPassword(bc.phc, phcTestPassword); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}

// BenchmarkHasherRun prices the pool's hop: one tiny hash called directly, and
// the same hash through Run (admission, routing, one actor message, reply).
func BenchmarkHasherRun(b *testing.B) {
	b.Run("path=direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := hashPassword(phcTestParams, "pw", rand.Reader); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("path=pool", func(b *testing.B) {
		h := newTestHasher(b, HasherOptions{Workers: 1})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.Run(HashOp{Password: "pw"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
