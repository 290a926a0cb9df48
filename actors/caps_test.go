package actors

import (
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/shard"
)

func TestOldestOwned(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	sess := func(name string, at int) shard.OwnedItem {
		return shard.OwnedItem{Created: t0.Add(time.Duration(at) * time.Second), Session: shard.DigestSession(name)}
	}
	tests := []struct {
		name  string
		items []shard.OwnedItem
		limit int
		keep  shard.OwnedItem
		want  []string // sessions deleted, oldest first
	}{
		{"under the cap", []shard.OwnedItem{sess("a", 1), sess("b", 2)}, 3, sess("b", 2), nil},
		{"at the cap", []shard.OwnedItem{sess("a", 1), sess("b", 2)}, 2, sess("b", 2), nil},
		{"one over: the oldest", []shard.OwnedItem{sess("c", 3), sess("a", 1), sess("b", 2)}, 2, sess("c", 3), []string{"a"}},
		{"many over", []shard.OwnedItem{sess("d", 4), sess("b", 2), sess("a", 1), sess("c", 3), sess("e", 5)}, 2, sess("e", 5), []string{"a", "b", "c"}},
		{"the new one is never deleted, even if it looks oldest", []shard.OwnedItem{sess("new", 0), sess("a", 1), sess("b", 2)}, 2, sess("new", 0), []string{"a"}},
		{"cap of one keeps only the new one", []shard.OwnedItem{sess("a", 1), sess("new", 2)}, 1, sess("new", 2), []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := oldestOwned(tt.items, tt.limit, tt.keep)
			if len(got) != len(tt.want) {
				t.Fatalf("deleted %d; want %d (%v)", len(got), len(tt.want), tt.want)
			}
			for i, name := range tt.want {
				if got[i].Session != shard.DigestSession(name) {
					t.Errorf("victim %d is not %q", i, name)
				}
			}
		})
	}
	// Equal times: the choice does not depend on the order of the answers.
	a, b, c := sess("a", 1), sess("b", 1), sess("c", 1)
	first := oldestOwned([]shard.OwnedItem{a, b, c}, 2, shard.OwnedItem{})
	second := oldestOwned([]shard.OwnedItem{c, b, a}, 2, shard.OwnedItem{})
	if len(first) != 1 || len(second) != 1 || first[0].Session != second[0].Session {
		t.Errorf("ties decided by answer order: %x vs %x", first[0].Session[:4], second[0].Session[:4])
	}
}
