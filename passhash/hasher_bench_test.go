package passhash

import (
	"crypto/rand"
	"testing"
)

// BenchmarkHashPassword gives the real cost of one hash. Measured on the
// project's 2-core machine (AMD "Turin-like" VM, Go 1.26). The machine is
// shared with other builds; at a load average near 3.5 a default hash or
// verification took about 95 ms, at a load average near 10 160–250 ms:
//
//	go test -run='^$' -bench='Password/params=default' -benchtime=10x -benchmem -count=3 ./actors/
//	BenchmarkHashPassword/params=default-2     10    97043272 ns/op   67115571 B/op   79 allocs/op
//	BenchmarkHashPassword/params=default-2     10    96919544 ns/op   67115660 B/op   79 allocs/op
//	BenchmarkVerifyPassword/params=default-2   10    94273151 ns/op   67115499 B/op   77 allocs/op
//	BenchmarkVerifyPassword/params=default-2   10    94846914 ns/op   67115488 B/op   77 allocs/op
//
//	go test -run='^$' -bench='Password/params=pre21|HasherRun' -benchmem -count=2 ./actors/ (best of 2)
//	BenchmarkHashPassword/params=pre21.2-2     10   109261749 ns/op  104868027 B/op   98 allocs/op
//	BenchmarkVerifyPassword/params=pre21.2-2   10   178162422 ns/op  104867968 B/op   97 allocs/op
//	BenchmarkHasherRun/path=direct-2         9322      135199 ns/op      67672 B/op   20 allocs/op
//	BenchmarkHasherRun/path=pool-2           9841      119613 ns/op      68295 B/op   27 allocs/op
//
// So the pool (2 workers; each hash's 4 lanes already use both cores) sustains
// about 10 default hashes a second, a login (dummy + real verification) costs
// two of them, and each hash holds 64 MiB. The pool's hop adds about 7
// allocations; its time is lost in the noise of even the tiny test hash.
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
