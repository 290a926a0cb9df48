package shard

import (
	"encoding/json"
	"fmt"
	"time"
)

// Every kind of stored record, in one place: its key prefix, the shard it
// belongs to, how it is loaded at start, and (sweepers) how expired ones
// are deleted. The layout of each kind's key and value is in the file of
// its table. A new kind is a row here, or the store refuses to load it.

// recordKind is one kind of stored record.
type recordKind struct {
	name   string
	prefix string
	// route is the routing hash of a record of this kind; nil for records
	// that belong to no shard (meta), which the loader reads itself.
	route func(key []byte) (Route, error)
	load  func(s *Shard, key, value []byte) error
}

var recordKinds = [...]recordKind{
	{"user", prefixUser, routeUser, (*Shard).loadUser},
	{"email index entry", prefixEmail, routeEmail, (*Shard).loadEmail},
	{"session", prefixSession, routeSession, (*Shard).loadSession},
	{"session-tied API key", prefixAPIKeySession, routeAPIKey, (*Shard).loadAPIKey},
	{"no-session API key", prefixAPIKeyNoSession, routeAPIKey, (*Shard).loadAPIKey},
	{"password failure count", prefixFailures, routeFailures, (*Shard).loadFailures},
	// Per-address counts of earlier versions: loaded and added up into the
	// account's count, rewritten as prefixFailures records at the next
	// change.
	{"password failure count (per address)", prefixLegacyFailures, routeFailures, (*Shard).loadFailures},
	{"social login state", prefixSocialState, routeSocialState, (*Shard).loadSocialState},
	{"social identity", prefixIdentity, routeIdentity, (*Shard).loadIdentity},
	{"meta", prefixMeta, nil, nil},
}

// sweepers are the tables with records that expire, in the order Sweep
// runs them; each looks at no more than about limit records. Users and
// email index entries never expire; the meta records are the store's.
var sweepers = [...]func(s *Shard, now time.Time, limit int) []Mutation{
	(*Shard).SweepSessions,     // expired sessions past retention (session.go)
	(*Shard).SweepAPIKeys,      // expired API keys (apikey.go)
	(*Shard).SweepUnlocks,      // automatic unlocks due, stale failure counts (lockout.go)
	sweepRateBuckets,           // full rate-limit buckets; memory only (ratelimit.go)
	(*Shard).SweepSocialStates, // expired social login states (social.go)
}

// kindOfKey returns the kind of a stored record by its key's prefix.
func kindOfKey(key []byte) (*recordKind, error) {
	for i := range recordKinds {
		if hasPrefix(key, recordKinds[i].prefix) {
			return &recordKinds[i], nil
		}
	}
	return nil, fmt.Errorf("%w: unknown key prefix %q", ErrBadRecord, truncate(key, 8))
}

func routeUser(key []byte) (Route, error) {
	id, err := decodeUserKey(key)
	return UserRoute(id), err
}

func routeEmail(key []byte) (Route, error) { return EmailRoute(string(key[len(prefixEmail):])), nil }

func routeSession(key []byte) (Route, error) {
	if len(key) != len(prefixSession)+len(SessionDigest{}) {
		return 0, fmt.Errorf("%w: session key of %d bytes", ErrBadRecord, len(key))
	}
	var d SessionDigest
	copy(d[:], key[len(prefixSession):])
	return SessionRoute(d), nil
}

func (s *Shard) loadEmail(key, value []byte) error {
	var id UserID
	if err := json.Unmarshal(value, &id); err != nil || id <= 0 {
		return fmt.Errorf("%w: email index value %q", ErrBadRecord, truncate(value, 32))
	}
	s.emails[string(key[len(prefixEmail):])] = id
	return nil
}
