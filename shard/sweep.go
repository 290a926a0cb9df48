package shard

import "time"

// Sweep deletes expired records, at most about limit of each kind (see
// sweepers), and returns the deletions to persist.
func (s *Shard) Sweep(now time.Time, limit int) []Mutation {
	var muts []Mutation
	for _, sw := range sweepers {
		muts = append(muts, sw(s, now, limit)...)
	}
	return muts
}
