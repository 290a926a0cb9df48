package actors

import (
	"sync/atomic"
	"time"

	"github.com/authnzerver/authnzerver/shard"
)

// Counts sums the table sizes of every shard ([shard.Shard.Counts]). It
// visits each shard once through its mailbox (a [DoAll]), so it is meant for
// metrics scrapes and admin commands, not for the request path.
//
// NB: when shard.Counts gains a field, add it to the sum below.
func (c *Core) Counts() (shard.Counts, error) {
	rs, err := DoAll(c, func(s *shard.Shard, _ time.Time) (shard.Counts, []shard.Mutation, error) {
		return s.Counts(), nil, nil
	})
	var sum shard.Counts
	for _, r := range rs {
		sum.Sessions += r.Value.Sessions
		sum.Users += r.Value.Users
		sum.Emails += r.Value.Emails
		sum.APIKeys += r.Value.APIKeys
	}
	return sum, err
}

// HasherStats are the hasher pool's cumulative counters, for metrics.
type HasherStats struct {
	// Ops is the number of hash and verify operations run.
	Ops uint64
	// Nanos is the total time workers spent computing them.
	Nanos uint64
	// Refused is the number of Run calls refused because the pool was full.
	Refused uint64
}

// hasherStats holds the counters behind [Hasher.Stats]. Shared: atomics,
// written by the workers and by Run.
type hasherStats struct {
	ops, nanos, refused atomic.Uint64
}

func (s *hasherStats) record(ops int, d time.Duration) {
	s.ops.Add(uint64(ops))
	s.nanos.Add(uint64(d))
}

// Stats returns the pool's counters. It is a snapshot, safe from any
// goroutine.
func (h *Hasher) Stats() HasherStats {
	return HasherStats{Ops: h.stats.ops.Load(), Nanos: h.stats.nanos.Load(), Refused: h.stats.refused.Load()}
}
