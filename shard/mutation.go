package shard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
)

// Mutation is one record to write to (or delete from) the store. The store
// treats Key and Value as opaque bytes; this package owns their layout.
type Mutation struct {
	Key   []byte
	Value []byte // nil deletes Key
}

// Key prefixes, one per kind of record. NB: changing any of them changes the
// on-disk format; bump SchemaVersion and write a migration.
const (
	prefixUser    = "u/"
	prefixEmail   = "e/"
	prefixSession = "s/"
	prefixMeta    = "m/"
)

// SchemaVersion is the version of the record layout written by this package.
const SchemaVersion = 1

// MetaNextUserID is the key of the next-user-id counter record.
var MetaNextUserID = []byte(prefixMeta + "next_user_id")

// MetaSchema is the key of the schema version record.
var MetaSchema = []byte(prefixMeta + "schema")

// ErrBadRecord reports a stored record that does not decode.
var ErrBadRecord = errors.New("shard: bad record")

// Route is the routing hash of a key: the owning shard of a record is
// Route % number of shards.
type Route uint64

// SessionRoute routes a session by its token digest.
func SessionRoute(d SessionDigest) Route { return Route(binary.BigEndian.Uint64(d[:8])) }

// UserRoute routes a user record by user id.
func UserRoute(id UserID) Route { return Route(splitmix64(uint64(id))) }

// EmailRoute routes an email index entry by its normalised email.
func EmailRoute(normEmail string) Route {
	h := fnv.New64a()
	h.Write([]byte(normEmail))
	return Route(h.Sum64())
}

// StringRoute routes any other string key (rate-limit buckets, key ids).
func StringRoute(s string) Route { return EmailRoute(s) }

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// RouteOfKey tells which shard a stored record belongs to. Meta records have
// no shard (ok is false); the loader handles them.
func RouteOfKey(key []byte) (r Route, ok bool, err error) {
	k, err := kindOfKey(key)
	if err != nil || k.route == nil {
		return 0, false, err
	}
	r, err = k.route(key)
	return r, err == nil, err
}

func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

func userKey(id UserID) []byte {
	k := make([]byte, len(prefixUser)+8)
	copy(k, prefixUser)
	binary.BigEndian.PutUint64(k[len(prefixUser):], uint64(id))
	return k
}

func decodeUserKey(key []byte) (UserID, error) {
	if len(key) != len(prefixUser)+8 {
		return 0, fmt.Errorf("%w: user key of %d bytes", ErrBadRecord, len(key))
	}
	return UserID(binary.BigEndian.Uint64(key[len(prefixUser):])), nil
}

func sessionKey(d SessionDigest) []byte {
	k := make([]byte, len(prefixSession)+len(d))
	copy(k, prefixSession)
	copy(k[len(prefixSession):], d[:])
	return k
}

func emailKey(normEmail string) []byte { return []byte(prefixEmail + normEmail) }

// Load applies one stored record to the shard at start-up. The caller routes
// records with [RouteOfKey]. A record that does not decode is an error: the
// caller decides whether to stop or skip.
func (s *Shard) Load(key, value []byte) error {
	k, err := kindOfKey(key)
	if err != nil {
		return err
	}
	if k.load == nil {
		return fmt.Errorf("%w: %s record %q is not a shard's", ErrBadRecord, k.name, truncate(key, 8))
	}
	return k.load(s, key, value)
}

// EncodeNextUserID returns the mutation that records the next user id.
func EncodeNextUserID(next UserID) Mutation {
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, uint64(next))
	return Mutation{Key: MetaNextUserID, Value: v}
}

// DecodeNextUserID reads the value stored under [MetaNextUserID].
func DecodeNextUserID(v []byte) (UserID, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: next user id of %d bytes", ErrBadRecord, len(v))
	}
	return UserID(binary.BigEndian.Uint64(v)), nil
}
