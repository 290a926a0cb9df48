package shard

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// API keys (docs/protocol.md, "API keys"). Two independent tables exist:
// keys tied to a session and no-session keys that come with a refresh token.
// A key is known to the server only by the SHA-256 digest of its token (the
// `tkn` claim; docs/security.md, "Tokens and keys at rest"), and lives on the
// shard of [APIKeyRoute] of that digest.
//
// Lookups go through the first half of the digest and then compare the whole
// digest with crypto/subtle, so how long a lookup takes says nothing about
// how much of a stored digest a guess matched.

// APIKeyKind tells the two tables apart.
type APIKeyKind uint8

// The API key kinds.
const (
	// KeySession is a key tied to a session (apikey-new): valid only while
	// its session is live. The session lives on another shard, so the caller
	// checks it; this package keeps the session's digest and expiry.
	KeySession APIKeyKind = iota
	// KeyNoSession is a key with a refresh token (apikey-new-nosession).
	KeyNoSession
	numKeyKinds
)

func (k APIKeyKind) String() string {
	switch k {
	case KeySession:
		return "session"
	case KeyNoSession:
		return "nosession"
	}
	return fmt.Sprintf("APIKeyKind(%d)", uint8(k))
}

// APIKeyDigest is the SHA-256 digest of an API key's token (its `tkn`
// claim).
type APIKeyDigest [sha256.Size]byte

// DigestAPIKey returns the digest of an API key token.
func DigestAPIKey(tkn string) APIKeyDigest {
	var buf [64]byte // as in DigestSession: no allocation for a key's token
	return sha256.Sum256(append(buf[:0], tkn...))
}

// APIKeyRoute routes an API key by its token digest. It uses other bytes of
// the digest than the lookup index, though nothing depends on that.
func APIKeyRoute(d APIKeyDigest) Route { return Route(binary.BigEndian.Uint64(d[24:])) }

// keyIndex is the half of a digest that the tables are keyed by.
type keyIndex [16]byte

func indexOf(d *APIKeyDigest) keyIndex { return keyIndex(d[:16]) }

// Errors of API key operations.
var (
	// ErrAPIKeyInvalid means no stored key matches, or it is outside its
	// validity window.
	ErrAPIKeyInvalid = errors.New("shard: API key invalid")
	// ErrAPIKeyNoRefresh means no stored key matches with an open refresh
	// window.
	ErrAPIKeyNoRefresh = errors.New("shard: API key has no usable refresh token")
	// ErrAPIKeyExists means a new key's digest index collides with a stored
	// key (2^-128 per pair; the caller draws a new token).
	ErrAPIKeyExists = errors.New("shard: API key index in use")
)

// APIKey is a copy of one stored API key. Zero times mean "not set".
type APIKey struct {
	Digest    APIKeyDigest
	Kind      APIKeyKind
	UserID    UserID
	Role      string
	Issued    time.Time
	Expires   time.Time
	NotBefore time.Time

	// Session-tied keys only: the session's token digest and its expiry at
	// issue time. A session's expiry never moves, so a key whose session
	// expired is dead for good and may be swept.
	Session        SessionDigest
	SessionExpires time.Time

	// No-session keys only: the Argon2id PHC string of the refresh token and
	// its window.
	RefreshPHC     string
	RefreshIssued  time.Time
	RefreshExpires time.Time
	RefreshNBF     time.Time
}

// ValidAt reports whether the key may be used at now: issued < now,
// not_valid_before < now, expires > now, all strict (docs/protocol.md, "API
// keys").
func (k *APIKey) ValidAt(now time.Time) bool {
	return k.Issued.Before(now) && k.NotBefore.Before(now) && k.Expires.After(now)
}

// RefreshableAt reports whether the key's refresh token may be used at now
// (refresh_issued < now, refresh_nbf < now, refresh_expires > now).
func (k *APIKey) RefreshableAt(now time.Time) bool {
	return k.Kind == KeyNoSession && k.RefreshPHC != "" &&
		k.RefreshIssued.Before(now) && k.RefreshNBF.Before(now) && k.RefreshExpires.After(now)
}

// deadAt reports whether the key can never be used again: expired, and for
// a no-session key also past its refresh window, and for a session-tied key
// also when its session has expired.
func (k *APIKey) deadAt(now time.Time) bool {
	switch k.Kind {
	case KeySession:
		return !k.Expires.After(now) || (!k.SessionExpires.IsZero() && !k.SessionExpires.After(now))
	default:
		return !k.Expires.After(now) && !k.RefreshExpires.After(now)
	}
}

// NewAPIKey is what a caller supplies to issue a key. Lifetimes are relative
// to the shard's now, which becomes the key's issued time.
type NewAPIKey struct {
	Kind      APIKeyKind
	UserID    UserID
	Role      string
	Lifetime  time.Duration // expires = issued + Lifetime
	NotBefore time.Duration // not_valid_before = issued + NotBefore

	Session        SessionDigest // KeySession
	SessionExpires time.Time     // KeySession

	RefreshPHC       string        // KeyNoSession
	RefreshLifetime  time.Duration // KeyNoSession: refresh_expires = issued + this
	RefreshNotBefore time.Duration // KeyNoSession: refresh_nbf = issued + this
}

type apiKeyTable struct {
	keys [numKeyKinds]map[keyIndex]*APIKey
	// byUser indexes the keys of each kind of each user held by this shard,
	// for apikey-revokeall-nosession, a role change and the per-user cap.
	byUser [numKeyKinds]map[UserID]map[keyIndex]struct{}
	// owners counts, on each user's own shard, the keys of each kind of
	// that user (see ownerCounts).
	owners [numKeyKinds]ownerCounts
}

func newAPIKeyTable() apiKeyTable {
	var t apiKeyTable
	for i := range t.keys {
		t.keys[i] = make(map[keyIndex]*APIKey)
		t.byUser[i] = make(map[UserID]map[keyIndex]struct{})
		t.owners[i] = make(ownerCounts)
	}
	return t
}

// get returns the stored key of kind whose digest is d.
func (t *apiKeyTable) get(kind APIKeyKind, d *APIKeyDigest) (*APIKey, bool) {
	if kind >= numKeyKinds {
		return nil, false
	}
	k, ok := t.keys[kind][indexOf(d)]
	if !ok || subtle.ConstantTimeCompare(k.Digest[:], d[:]) != 1 {
		return nil, false
	}
	return k, true
}

func (t *apiKeyTable) put(k *APIKey) {
	i := indexOf(&k.Digest)
	if old, ok := t.keys[k.Kind][i]; ok {
		t.unindex(old)
	}
	t.keys[k.Kind][i] = k
	set := t.byUser[k.Kind][k.UserID]
	if set == nil {
		set = make(map[keyIndex]struct{})
		t.byUser[k.Kind][k.UserID] = set
	}
	set[i] = struct{}{}
}

func (t *apiKeyTable) unindex(k *APIKey) {
	if set := t.byUser[k.Kind][k.UserID]; set != nil {
		delete(set, indexOf(&k.Digest))
		if len(set) == 0 {
			delete(t.byUser[k.Kind], k.UserID)
		}
	}
}

func (t *apiKeyTable) remove(k *APIKey) {
	delete(t.keys[k.Kind], indexOf(&k.Digest))
	t.unindex(k)
}

// CreateAPIKey stores a new key with digest d, issued at now.
func (s *Shard) CreateAPIKey(d APIKeyDigest, n NewAPIKey, now time.Time) (APIKey, []Mutation, error) {
	if n.Kind >= numKeyKinds {
		return APIKey{}, nil, fmt.Errorf("shard: create API key of kind %v", n.Kind)
	}
	// The loader refuses such records, so storing one would stop the next
	// start.
	if n.UserID <= 0 || n.Role == "" || (n.Kind == KeyNoSession && n.RefreshPHC == "") {
		return APIKey{}, nil, fmt.Errorf("shard: create API key: owner %d, role %q or refresh hash missing", n.UserID, n.Role)
	}
	if _, ok := s.apikeys.keys[n.Kind][indexOf(&d)]; ok {
		return APIKey{}, nil, ErrAPIKeyExists
	}
	issued := micro(now)
	k := &APIKey{
		Digest:    d,
		Kind:      n.Kind,
		UserID:    n.UserID,
		Role:      n.Role,
		Issued:    issued,
		Expires:   micro(issued.Add(n.Lifetime)),
		NotBefore: micro(issued.Add(n.NotBefore)),
	}
	switch n.Kind {
	case KeySession:
		k.Session = n.Session
		if !n.SessionExpires.IsZero() {
			k.SessionExpires = micro(n.SessionExpires)
		}
	case KeyNoSession:
		k.RefreshPHC = n.RefreshPHC
		k.RefreshIssued = issued
		k.RefreshExpires = micro(issued.Add(n.RefreshLifetime))
		k.RefreshNBF = micro(issued.Add(n.RefreshNotBefore))
	}
	s.apikeys.put(k)
	return *k, []Mutation{putAPIKey(k)}, nil
}

// VerifyAPIKey returns the stored key of kind with digest d if it belongs to
// user uid with role, and is valid at now; else ErrAPIKeyInvalid. It does not
// check a session-tied key's session: the caller does, on its shard.
func (s *Shard) VerifyAPIKey(kind APIKeyKind, d APIKeyDigest, uid UserID, role string, now time.Time) (APIKey, error) {
	k, ok := s.apikeys.get(kind, &d)
	if !ok || k.UserID != uid || k.Role != role || !k.ValidAt(now) {
		return APIKey{}, ErrAPIKeyInvalid
	}
	return *k, nil
}

// RefreshableAPIKey returns the stored no-session key with digest d if it
// belongs to user uid with role and its refresh window is open at now (the
// key itself may have expired); else ErrAPIKeyNoRefresh.
func (s *Shard) RefreshableAPIKey(d APIKeyDigest, uid UserID, role string, now time.Time) (APIKey, error) {
	k, ok := s.apikeys.get(KeyNoSession, &d)
	if !ok || k.UserID != uid || k.Role != role || !k.RefreshableAt(now) {
		return APIKey{}, ErrAPIKeyNoRefresh
	}
	return *k, nil
}

// RevokeAPIKey deletes the key of kind with digest d if it belongs to user
// uid with role, expired or not, and reports whether it did. When
// refreshPHC is not empty, the stored refresh hash must equal it too: a
// refresh revokes only the key whose token it verified, so of two
// concurrent refreshes with one token exactly one wins.
func (s *Shard) RevokeAPIKey(kind APIKeyKind, d APIKeyDigest, uid UserID, role, refreshPHC string) (bool, []Mutation) {
	k, ok := s.apikeys.get(kind, &d)
	if !ok || k.UserID != uid || k.Role != role {
		return false, nil
	}
	if refreshPHC != "" && k.RefreshPHC != refreshPHC {
		return false, nil
	}
	s.apikeys.remove(k)
	return true, []Mutation{{Key: apiKeyKey(k.Kind, &k.Digest)}}
}

// RevokeUserAPIKeys deletes every no-session key of user uid with role
// (any role when role is empty: the user is being deleted) held by this
// shard, and returns how many it deleted.
func (s *Shard) RevokeUserAPIKeys(uid UserID, role string) (int, []Mutation) {
	var muts []Mutation
	for i := range s.apikeys.byUser[KeyNoSession][uid] {
		k := s.apikeys.keys[KeyNoSession][i]
		if k == nil || (role != "" && k.Role != role) {
			continue
		}
		s.apikeys.remove(k)
		muts = append(muts, Mutation{Key: apiKeyKey(k.Kind, &k.Digest)})
	}
	return len(muts), muts
}

// RevokeUserAPIKeysNotRole deletes every key of user uid held by this
// shard, of either kind, whose role is not role: after a role change, a key
// issued for the old role must not verify (nor be refreshed into a key of
// the new role). It returns how many it deleted.
func (s *Shard) RevokeUserAPIKeysNotRole(uid UserID, role string) (int, []Mutation) {
	var muts []Mutation
	for kind := range s.apikeys.byUser {
		for i := range s.apikeys.byUser[kind][uid] {
			k := s.apikeys.keys[kind][i]
			if k == nil || k.Role == role {
				continue
			}
			s.apikeys.remove(k)
			muts = append(muts, Mutation{Key: apiKeyKey(k.Kind, &k.Digest)})
		}
	}
	return len(muts), muts
}

// UserAPIKeys returns the keys of kind of user uid held by this shard that
// may still be used (see deadAt), in no order.
func (s *Shard) UserAPIKeys(uid UserID, kind APIKeyKind, now time.Time) []OwnedItem {
	if kind >= numKeyKinds {
		return nil
	}
	var out []OwnedItem
	for i := range s.apikeys.byUser[kind][uid] {
		k := s.apikeys.keys[kind][i]
		if k == nil || k.deadAt(now) {
			continue
		}
		out = append(out, OwnedItem{Created: k.Issued, Key: k.Digest, KeyKind: k.Kind, IsAPIKey: true})
	}
	return out
}

// DeleteAPIKey deletes the key of kind with digest d whatever its owner
// (used to drop a session-tied key found without its session).
func (s *Shard) DeleteAPIKey(kind APIKeyKind, d APIKeyDigest) []Mutation {
	k, ok := s.apikeys.get(kind, &d)
	if !ok {
		return nil
	}
	s.apikeys.remove(k)
	return []Mutation{{Key: apiKeyKey(k.Kind, &k.Digest)}}
}

// SweepAPIKeys deletes keys that can never be used again (see deadAt),
// looking at no more than limit keys of each kind (0: no limit; see
// SweepSessions for why the scan is bounded). Session-tied keys whose session was
// deleted before expiring are not seen here (the session lives on another
// shard); verification refuses them and deletes them when it meets them, and
// this sweep deletes the rest when the session's expiry passes.
func (s *Shard) SweepAPIKeys(now time.Time, limit int) []Mutation {
	var muts []Mutation
	for kind := range s.apikeys.keys {
		scanned := 0
		for _, k := range s.apikeys.keys[kind] {
			if k.deadAt(now) {
				s.apikeys.remove(k)
				muts = append(muts, Mutation{Key: apiKeyKey(k.Kind, &k.Digest)})
			}
			if scanned++; limit > 0 && scanned >= limit {
				break
			}
		}
	}
	return muts
}

// APIKeyCounts reports how many keys of each kind the shard holds.
func (s *Shard) APIKeyCounts() (session, noSession int) {
	return len(s.apikeys.keys[KeySession]), len(s.apikeys.keys[KeyNoSession])
}

// Stored layout: prefix + the 32-byte digest; the value is apiKeyRecord as
// JSON. NB: changing either changes the on-disk format (see SchemaVersion).
const (
	prefixAPIKeySession   = "ka/"
	prefixAPIKeyNoSession = "kn/"
)

var apiKeyPrefixes = [numKeyKinds]string{KeySession: prefixAPIKeySession, KeyNoSession: prefixAPIKeyNoSession}

type apiKeyRecord struct {
	UserID         UserID    `json:"uid"`
	Role           string    `json:"role"`
	Issued         time.Time `json:"issued"`
	Expires        time.Time `json:"expires"`
	NotBefore      time.Time `json:"nbf"`
	Session        []byte    `json:"session,omitempty"`
	SessionExpires time.Time `json:"session_expires,omitzero"`
	RefreshPHC     string    `json:"refresh,omitempty"`
	RefreshIssued  time.Time `json:"refresh_issued,omitzero"`
	RefreshExpires time.Time `json:"refresh_expires,omitzero"`
	RefreshNBF     time.Time `json:"refresh_nbf,omitzero"`
}

func apiKeyKey(kind APIKeyKind, d *APIKeyDigest) []byte {
	p := apiKeyPrefixes[kind]
	k := make([]byte, len(p)+len(d))
	copy(k, p)
	copy(k[len(p):], d[:])
	return k
}

func putAPIKey(k *APIKey) Mutation {
	rec := apiKeyRecord{
		UserID: k.UserID, Role: k.Role, Issued: k.Issued, Expires: k.Expires, NotBefore: k.NotBefore,
		SessionExpires: k.SessionExpires,
		RefreshPHC:     k.RefreshPHC, RefreshIssued: k.RefreshIssued, RefreshExpires: k.RefreshExpires, RefreshNBF: k.RefreshNBF,
	}
	if k.Kind == KeySession {
		rec.Session = k.Session[:]
	}
	return Mutation{Key: apiKeyKey(k.Kind, &k.Digest), Value: encodeRecord(rec)}
}

// decodeAPIKeyKey splits a stored key into kind and digest.
func decodeAPIKeyKey(key []byte) (APIKeyKind, APIKeyDigest, error) {
	for kind, p := range apiKeyPrefixes {
		if hasPrefix(key, p) {
			var d APIKeyDigest
			if len(key) != len(p)+len(d) {
				return 0, d, fmt.Errorf("%w: API key key of %d bytes", ErrBadRecord, len(key))
			}
			copy(d[:], key[len(p):])
			return APIKeyKind(kind), d, nil
		}
	}
	return 0, APIKeyDigest{}, fmt.Errorf("%w: not an API key key", ErrBadRecord)
}

// decodeAPIKey reads one stored API key record.
func decodeAPIKey(key, value []byte) (*APIKey, error) {
	kind, d, err := decodeAPIKeyKey(key)
	if err != nil {
		return nil, err
	}
	var rec apiKeyRecord
	if err := json.Unmarshal(value, &rec); err != nil {
		return nil, fmt.Errorf("%w: API key: %v", ErrBadRecord, err)
	}
	if rec.UserID <= 0 || rec.Role == "" {
		return nil, fmt.Errorf("%w: API key owner", ErrBadRecord)
	}
	k := &APIKey{
		Digest: d, Kind: kind, UserID: rec.UserID, Role: rec.Role,
		Issued: rec.Issued, Expires: rec.Expires, NotBefore: rec.NotBefore,
	}
	switch kind {
	case KeySession:
		if len(rec.Session) != len(k.Session) {
			return nil, fmt.Errorf("%w: API key session of %d bytes", ErrBadRecord, len(rec.Session))
		}
		copy(k.Session[:], rec.Session)
		k.SessionExpires = rec.SessionExpires
	case KeyNoSession:
		if rec.RefreshPHC == "" {
			return nil, fmt.Errorf("%w: API key without refresh hash", ErrBadRecord)
		}
		k.RefreshPHC, k.RefreshIssued, k.RefreshExpires, k.RefreshNBF = rec.RefreshPHC, rec.RefreshIssued, rec.RefreshExpires, rec.RefreshNBF
	}
	return k, nil
}

func routeAPIKey(key []byte) (Route, error) {
	_, d, err := decodeAPIKeyKey(key)
	return APIKeyRoute(d), err
}

func (s *Shard) loadAPIKey(key, value []byte) error {
	k, err := decodeAPIKey(key, value)
	if err != nil {
		return err
	}
	s.apikeys.put(k)
	return nil
}
