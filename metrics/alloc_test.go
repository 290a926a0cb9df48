//go:build !race

package metrics

import (
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/httpfront"
)

// TestHotPathAllocs checks that recording a request allocates nothing.
func TestHotPathAllocs(t *testing.T) {
	m := New(Sources{})
	r := m.RequestType("session-exists")
	if n := testing.AllocsPerRun(1000, func() {
		r.Done(httpfront.OutcomeSuccess, 30*time.Microsecond)
		m.Response(200)
	}); n != 0 {
		t.Errorf("allocs per request: got %v; want 0", n)
	}
}
