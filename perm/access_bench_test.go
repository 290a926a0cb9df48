package perm

import "testing"

var benchQueries = []struct {
	name string
	q    AccessQuery
}{
	{"owned", AccessQuery{UserID: 10, Role: "authenticated", Action: "edit", Target: "dataset", Owner: 10, Visibility: "private"}},
	{"public", AccessQuery{UserID: 10, Role: "anonymous", Action: "view", Target: "object", Owner: 20, Visibility: "public"}},
	{"shared", AccessQuery{UserID: 10, Role: "authenticated", Action: "view", Target: "dataset", Owner: 20, Visibility: "shared", SharedWith: "3,4,5,6,7,8,9,10"}},
	{"staff", AccessQuery{UserID: 10, Role: "staff", Action: "list", Target: "user", Owner: 20, Visibility: "private"}},
	{"denied", AccessQuery{UserID: 10, Role: "locked", Action: "view", Target: "object", Owner: 20, Visibility: "public"}},
}

func BenchmarkCheckAccess(b *testing.B) {
	m := Default()
	for _, bq := range benchQueries {
		b.Run("q="+bq.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.CheckAccess(bq.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCheckLimit(b *testing.B) {
	m := Default()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.CheckLimit("authenticated", "max_requests_per_minute", 1234.0); err != nil {
			b.Fatal(err)
		}
	}
}
