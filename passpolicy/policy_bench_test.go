package passpolicy

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkCheck prices one password-policy decision. len=256 is the longest
// password the protocol lets through (user-validatepass excepted). On the
// shared 2-core dev VM (go test -bench=. -benchmem -count=3, medians; noisy):
//
//	BenchmarkCheck/len=4-2      25 µs/op   7008 B/op  60 allocs/op
//	BenchmarkCheck/len=14-2     30 µs/op   7752 B/op  66 allocs/op
//	BenchmarkCheck/len=35-2     32 µs/op   9128 B/op  69 allocs/op
//	BenchmarkCheck/len=256-2    86 µs/op  20968 B/op  70 allocs/op
//
// That is three orders of magnitude below one Argon2 hash, which every
// request that runs the policy also pays, so Check needs no cache.
func BenchmarkCheck(b *testing.B) {
	p := DefaultPolicy()
	builtinCommon() // build the list outside the timed loop
	pw256 := strings.Repeat("Tr0ub4dor&3-horse-Battery-st4ple!", 8)[:256]
	for _, bc := range []struct {
		name, password string
	}{
		{"len=4", "aaaa"},
		{"len=14", "atyse6m3bsblq9"},
		{"len=35", "Tr0ub4dor&3-horse-Battery-st4ple-9x"},
		{"len=256", pw256},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Check(bc.password, "jane.public@example.net", "Jane Q. Public", "auth.example.org")
			}
		})
	}
}

// BenchmarkRatio prices the similarity check alone; autojunk=on is a b
// long enough for the heuristic.
func BenchmarkRatio(b *testing.B) {
	for _, n := range []int{16, 256} {
		a := strings.Repeat("atyse6m3bsblq9", n/14+1)[:n]
		for _, bc := range []struct{ name, b string }{
			{"email", "jane.public@example.net"},
			{"autojunk=on", strings.Repeat("jane.public@example.net ", 10)},
		} {
			b.Run(fmt.Sprintf("len=%d/%s", n, bc.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					Ratio(a, bc.b)
				}
			})
		}
	}
}

func BenchmarkValidateEmail(b *testing.B) {
	set := BuiltinDisposable()
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidateEmail("Jane.Doe+tag@Example.ORG", set); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckFullName(b *testing.B) {
	name := NormalizeFullName("Dr. Jane Q. Public-Smith")
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckFullName(name); err != nil {
			b.Fatal(err)
		}
	}
}
