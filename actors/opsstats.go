package actors

import (
	"github.com/authnzerver/authnzerver/shard"
)

// Counts sums the table sizes of every shard ([shard.Shard.Counts]). It
// visits each shard once through its mailbox ([CountRecords]), so it is
// meant for metrics scrapes and admin commands, not for the request path.
//
// NB: when shard.Counts gains a field, add it to the sum below.
func (c *Core) Counts() (shard.Counts, error) {
	rs, err := AskAll[shard.Counts](c, CountRecords{})
	var sum shard.Counts
	for _, r := range rs {
		sum.Sessions += r.Value.Sessions
		sum.Expired += r.Value.Expired
		sum.Users += r.Value.Users
		sum.Emails += r.Value.Emails
		sum.APIKeys += r.Value.APIKeys
	}
	return sum, err
}
