package metrics

import (
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/httpfront"
)

// BenchmarkObserveRequest is the whole per-request cost metrics add to a
// request (the front's Done and Response calls), for comparison with a
// session check through the front (BenchmarkSessionExistsMetrics in
// server/).
func BenchmarkObserveRequest(b *testing.B) {
	m := New(Sources{})
	r := m.RequestType("session-exists")
	b.ReportAllocs()
	for b.Loop() {
		r.Done(httpfront.OutcomeSuccess, 30*time.Microsecond)
		m.Response(200)
	}
}

func BenchmarkObserveRequestParallel(b *testing.B) {
	m := New(Sources{})
	r := m.RequestType("session-exists")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Done(httpfront.OutcomeSuccess, 30*time.Microsecond)
			m.Response(200)
		}
	})
}
