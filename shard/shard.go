package shard

import "time"

// Options configures a shard. A zero field means the default.
type Options struct {
	// SessionRetention is how long an expired session is kept before a sweep
	// deletes it (the reference's "sessionexpiry", AUTHNZERVER_SESSIONEXPIRY).
	// Zero means 30 days.
	SessionRetention time.Duration
}

func (o Options) withDefaults() Options {
	if o.SessionRetention == 0 {
		o.SessionRetention = 30 * 24 * time.Hour
	}
	return o
}

// Shard is the state of one shard. See the package doc for the ownership
// rules.
type Shard struct {
	opts Options

	sessions  sessionTable
	users     map[UserID]*User
	emails    map[string]UserID    // normalised email -> owner (or reserver)
	unlockAt  map[UserID]time.Time // users with a pending automatic unlock
	failures  failureTable         // failed password checks by email (lockout.go)
	rate      rateTable            // rate-limit buckets, memory only (ratelimit.go)
	apikeys   apiKeyTable          // API keys whose digest routes here (apikey.go)
	social    socialTable          // social login states and identities (social.go)
	userViews                      // views of other shards' users, watchers of ours (userview.go)
}

// New returns an empty shard.
func New(opts Options) *Shard {
	return &Shard{
		opts:     opts.withDefaults(),
		sessions: newSessionTable(),
		users:    make(map[UserID]*User),
		emails:   make(map[string]UserID),
		unlockAt: make(map[UserID]time.Time),
		failures: newFailureTable(),
		apikeys:  newAPIKeyTable(),
		social:   newSocialTable(),
	}
}

// Counts is a snapshot of a shard's table sizes, for metrics and tests.
type Counts struct {
	Sessions int // live, and expired ones still kept (Expired of them)
	Expired  int
	Users    int
	Emails   int
	APIKeys  int // session-bound and session-less
	Views    int // views of other shards' users (userview.go)
	Watches  int // (user of this shard, watching shard) pairs
}

// Counts reports the sizes of the shard's tables.
func (s *Shard) Counts() Counts {
	ks, kn := s.APIKeyCounts()
	views, watches := s.ViewCounts()
	return Counts{Sessions: s.sessions.count(), Expired: len(s.sessions.dead), Users: len(s.users), Emails: len(s.emails), APIKeys: ks + kn,
		Views: views, Watches: watches}
}

// micro truncates t to the microsecond, the precision of the wire format
// (docs/protocol.md, "Times"), so that a value read back after a restart is
// the value answered before it.
func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
