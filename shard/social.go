package shard

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// The records of social logins (docs/social.md): the state of a login in
// progress, and the identities at providers linked to users.
//
// A state record is keyed by the digest of the state token the browser
// carries, routed like a session (first 8 bytes of the digest): "ss/" +
// 32-byte digest → JSON of SocialState. It is taken (read and deleted)
// once, and swept when it expires.
//
// An identity record is keyed by the provider's name and the subject the
// provider gave: "si/" + provider + NUL + subject → JSON of Identity, routed
// by FNV-64a of provider + NUL + subject. Its shard decides which user an
// identity belongs to, so two racing logins of one identity link it once.
const (
	prefixSocialState = "ss/"
	prefixIdentity    = "si/"
)

// SocialState is a social login in progress: what user-social-start made,
// checked and spent by user-social-finish.
type SocialState struct {
	Provider string `json:"provider"`
	// Session is the digest of the browser's session the state is bound to.
	Session     SessionDigest `json:"session"`
	RedirectURI string        `json:"redirect_uri"`
	// Verifier is the PKCE code verifier; Nonce the OpenID Connect nonce
	// ("" for other kinds).
	Verifier string    `json:"verifier"`
	Nonce    string    `json:"nonce,omitempty"`
	Expires  time.Time `json:"expires"`
}

// Identity is a user's identity at a provider.
type Identity struct {
	Provider string `json:"provider"`
	Subject  string `json:"subject"`
	UserID   UserID `json:"user_id"`
	// Email is the address the provider gave when the identity was linked
	// ("" when none); informative only.
	Email     string    `json:"email,omitempty"`
	CreatedOn time.Time `json:"created_on"`
}

// socialTable holds a shard's social records.
type socialTable struct {
	states     map[SessionDigest]SocialState
	identities map[string]Identity            // provider NUL subject
	owners     map[UserID]map[string]struct{} // user → identity keys
}

func newSocialTable() socialTable {
	return socialTable{
		states:     make(map[SessionDigest]SocialState),
		identities: make(map[string]Identity),
		owners:     make(map[UserID]map[string]struct{}),
	}
}

// IdentityKey is the shard-wide key of an identity (and its routing
// string): provider NUL subject.
func IdentityKey(provider, subject string) string { return provider + "\x00" + subject }

// IdentityRoute routes an identity record.
func IdentityRoute(provider, subject string) Route {
	return StringRoute(IdentityKey(provider, subject))
}

// SocialStateRoute routes a state record by the digest of its token.
func SocialStateRoute(d SessionDigest) Route { return SessionRoute(d) }

func socialStateKey(d SessionDigest) []byte {
	return append([]byte(prefixSocialState), d[:]...)
}

func identityRecordKey(k string) []byte { return append([]byte(prefixIdentity), k...) }

// PutSocialState stores a new state under d.
func (s *Shard) PutSocialState(d SessionDigest, st SocialState) []Mutation {
	st.Expires = micro(st.Expires)
	s.social.states[d] = st
	v, _ := json.Marshal(st) // plain fields: cannot fail
	return []Mutation{{Key: socialStateKey(d), Value: v}}
}

// TakeSocialState deletes the state under d and returns it, if there is
// one and it has not expired by now: a state is good for one use.
func (s *Shard) TakeSocialState(d SessionDigest, now time.Time) (SocialState, bool, []Mutation) {
	st, ok := s.social.states[d]
	if !ok {
		return SocialState{}, false, nil
	}
	delete(s.social.states, d)
	muts := []Mutation{{Key: socialStateKey(d)}}
	if !now.Before(st.Expires) {
		return SocialState{}, false, muts
	}
	return st, true, muts
}

// SweepSocialStates deletes expired states, looking at about limit of
// them (0: all).
func (s *Shard) SweepSocialStates(now time.Time, limit int) []Mutation {
	var muts []Mutation
	n := 0
	for d, st := range s.social.states {
		if limit > 0 && n >= limit {
			break
		}
		n++
		if !now.Before(st.Expires) {
			delete(s.social.states, d)
			muts = append(muts, Mutation{Key: socialStateKey(d)})
		}
	}
	return muts
}

// SocialStateCount reports the number of states kept (tests, metrics).
func (s *Shard) SocialStateCount() int { return len(s.social.states) }

// LookupIdentity returns the identity (provider, subject), if linked.
func (s *Shard) LookupIdentity(provider, subject string) (Identity, bool) {
	id, ok := s.social.identities[IdentityKey(provider, subject)]
	return id, ok
}

// LinkIdentity links id.Provider/id.Subject to id.UserID unless it is
// linked already; it returns the owner after the call and whether this
// call linked it.
func (s *Shard) LinkIdentity(id Identity, now time.Time) (owner UserID, linked bool, muts []Mutation) {
	k := IdentityKey(id.Provider, id.Subject)
	if cur, ok := s.social.identities[k]; ok {
		return cur.UserID, false, nil
	}
	id.CreatedOn = micro(now)
	s.putIdentity(k, id)
	v, _ := json.Marshal(id)
	return id.UserID, true, []Mutation{{Key: identityRecordKey(k), Value: v}}
}

func (s *Shard) putIdentity(k string, id Identity) {
	s.social.identities[k] = id
	m := s.social.owners[id.UserID]
	if m == nil {
		m = make(map[string]struct{})
		s.social.owners[id.UserID] = m
	}
	m[k] = struct{}{}
}

// UnlinkIdentity removes the identity (provider, subject) if user uid
// holds it, and reports whether it did.
func (s *Shard) UnlinkIdentity(provider, subject string, uid UserID) (bool, []Mutation) {
	k := IdentityKey(provider, subject)
	cur, ok := s.social.identities[k]
	if !ok || cur.UserID != uid {
		return false, nil
	}
	s.dropIdentity(k, cur.UserID)
	return true, []Mutation{{Key: identityRecordKey(k)}}
}

func (s *Shard) dropIdentity(k string, uid UserID) {
	delete(s.social.identities, k)
	if m := s.social.owners[uid]; m != nil {
		delete(m, k)
		if len(m) == 0 {
			delete(s.social.owners, uid)
		}
	}
}

// UserIdentities returns the identities of user uid linked on this
// shard, sorted by provider and subject.
func (s *Shard) UserIdentities(uid UserID) []Identity {
	m := s.social.owners[uid]
	out := make([]Identity, 0, len(m))
	for k := range m {
		out = append(out, s.social.identities[k])
	}
	sort.Slice(out, func(i, j int) bool {
		return IdentityKey(out[i].Provider, out[i].Subject) < IdentityKey(out[j].Provider, out[j].Subject)
	})
	return out
}

// DeleteUserIdentities removes every identity of user uid on this shard.
func (s *Shard) DeleteUserIdentities(uid UserID) []Mutation {
	var muts []Mutation
	for k := range s.social.owners[uid] {
		delete(s.social.identities, k)
		muts = append(muts, Mutation{Key: identityRecordKey(k)})
	}
	delete(s.social.owners, uid)
	return muts
}

// IdentityEntries calls fn for every identity of the shard (the start's
// check for identities whose user is gone). fn must not change the shard.
func (s *Shard) IdentityEntries(fn func(id Identity)) {
	for _, id := range s.social.identities {
		fn(id)
	}
}

// DropIdentity removes an identity whatever its owner (the start's
// clean-up of identities without a user).
func (s *Shard) DropIdentity(provider, subject string) []Mutation {
	k := IdentityKey(provider, subject)
	cur, ok := s.social.identities[k]
	if !ok {
		return nil
	}
	s.dropIdentity(k, cur.UserID)
	return []Mutation{{Key: identityRecordKey(k)}}
}

func routeSocialState(key []byte) (Route, error) {
	if len(key) != len(prefixSocialState)+len(SessionDigest{}) {
		return 0, fmt.Errorf("%w: social state key of %d bytes", ErrBadRecord, len(key))
	}
	var d SessionDigest
	copy(d[:], key[len(prefixSocialState):])
	return SocialStateRoute(d), nil
}

func (s *Shard) loadSocialState(key, value []byte) error {
	if len(key) != len(prefixSocialState)+len(SessionDigest{}) {
		return fmt.Errorf("%w: social state key of %d bytes", ErrBadRecord, len(key))
	}
	var st SocialState
	if err := json.Unmarshal(value, &st); err != nil {
		return fmt.Errorf("%w: social state: %v", ErrBadRecord, err)
	}
	var d SessionDigest
	copy(d[:], key[len(prefixSocialState):])
	s.social.states[d] = st
	return nil
}

func routeIdentity(key []byte) (Route, error) {
	return StringRoute(string(key[len(prefixIdentity):])), nil
}

func (s *Shard) loadIdentity(key, value []byte) error {
	k := string(key[len(prefixIdentity):])
	var id Identity
	if err := json.Unmarshal(value, &id); err != nil || id.UserID <= 0 {
		return fmt.Errorf("%w: identity %q", ErrBadRecord, truncate(value, 32))
	}
	if IdentityKey(id.Provider, id.Subject) != k || strings.IndexByte(id.Provider, 0) >= 0 {
		return fmt.Errorf("%w: identity key does not match its value", ErrBadRecord)
	}
	s.putIdentity(k, id)
	return nil
}
