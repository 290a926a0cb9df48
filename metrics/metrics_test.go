package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authnzerver/authnzerver/httpfront"
)

func TestObserverCounts(t *testing.T) {
	m := New(Sources{})
	r := m.RequestType("session-exists")
	r.Done(httpfront.OutcomeSuccess, time.Millisecond)
	r.Done(httpfront.OutcomeSuccess, 2*time.Millisecond)
	r.Done(httpfront.OutcomeFailure, time.Millisecond)
	m.Response(200)
	m.Response(429)
	m.Response(418)
	m.Busy(httpfront.BusyHasher)
	m.Busy(httpfront.NumBusyCauses) // out of range: ignored, no panic

	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"success", testutil.ToFloat64(m.requests.WithLabelValues("session-exists", "success")), 2},
		{"failure", testutil.ToFloat64(m.requests.WithLabelValues("session-exists", "failure")), 1},
		{"error", testutil.ToFloat64(m.requests.WithLabelValues("session-exists", "error")), 0},
		{"429", testutil.ToFloat64(m.responses[6]), 1},
		{"other", testutil.ToFloat64(m.responses[len(statuses)]), 1},
		{"ratelimited", testutil.ToFloat64(m.rateLimited), 1},
		{"busy hasher", testutil.ToFloat64(m.busy[httpfront.BusyHasher]), 1},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %v; want %v", tt.name, tt.got, tt.want)
		}
	}
	if n := testutil.CollectAndCount(m.latency); n != 1 {
		t.Errorf("latency series: got %d; want 1", n)
	}
}

func TestExpositionNames(t *testing.T) {
	m := New(Sources{})
	m.RequestType("session-new").Done(httpfront.OutcomeSuccess, time.Microsecond)
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), namespace+"_") {
			names = append(names, mf.GetName())
		}
	}
	for _, want := range []string{"authnzerver_requests_total", "authnzerver_request_duration_seconds",
		"authnzerver_http_responses_total", "authnzerver_ratelimit_refusals_total", "authnzerver_busy_refusals_total"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("metric %s missing from %v", want, names)
		}
	}
}

// TestFrontImportsNoMetricsLibrary keeps client_golang out of httpfront:
// the front talks to metrics only through httpfront.Observer.
func TestFrontImportsNoMetricsLibrary(t *testing.T) {
	var _ httpfront.Observer = (*Metrics)(nil)
}
