package shard

import "time"

// sweepers lets other tables of this package add themselves to Sweep without
// editing it.
var sweepers []func(s *Shard, now time.Time, limit int) []Mutation

// Sweep deletes expired records (old sessions, and whatever other tables
// register), at most about limit of each kind, and returns the deletions to
// persist.
func (s *Shard) Sweep(now time.Time, limit int) []Mutation {
	muts := s.SweepSessions(now, limit)
	for _, sw := range sweepers {
		muts = append(muts, sw(s, now, limit)...)
	}
	return muts
}
