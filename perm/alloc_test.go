//go:build !race

package perm

import "testing"

func TestCheckAccessAllocs(t *testing.T) {
	m := Default()
	for _, bq := range benchQueries {
		q := bq.q
		if got := testing.AllocsPerRun(100, func() { _, _ = m.CheckAccess(q) }); got != 0 {
			t.Errorf("%s: CheckAccess allocs = %v; want 0", bq.name, got)
		}
	}
}
