package shard

import (
	"encoding/json"
	"fmt"
	"time"
)

// Readable views of stored records, for a store that keeps each kind of
// record in its own table with the fields an operator queries as columns
// (package pgstore; docs/operations.md, "The PostgreSQL schema"). The
// stored value stays the record: these only decode it.

// RecordKind is the kind of a stored record, told by its key prefix.
type RecordKind uint8

// The kinds of stored records.
const (
	// KindMeta: metadata (m/) and keys of a kind this version does not
	// know.
	KindMeta RecordKind = iota
	KindUser
	KindEmail // the email index and system id claims
	KindSession
	KindAPIKey   // session-tied (ka/) and no-session (kn/) keys
	KindFailures // failed password checks of an account (fa/, and the older f/)
)

// KindOfKey returns the kind of a stored key.
func KindOfKey(key []byte) RecordKind {
	switch {
	case hasPrefix(key, prefixUser):
		return KindUser
	case hasPrefix(key, prefixEmail):
		return KindEmail
	case hasPrefix(key, prefixSession):
		return KindSession
	case hasPrefix(key, prefixAPIKeySession), hasPrefix(key, prefixAPIKeyNoSession):
		return KindAPIKey
	case hasPrefix(key, prefixFailures), hasPrefix(key, prefixLegacyFailures):
		return KindFailures
	}
	return KindMeta
}

// KeyPrefixes returns the key prefixes of kind (none for KindMeta, which
// holds whatever the others do not).
func KeyPrefixes(kind RecordKind) []string {
	switch kind {
	case KindUser:
		return []string{prefixUser}
	case KindEmail:
		return []string{prefixEmail}
	case KindSession:
		return []string{prefixSession}
	case KindAPIKey:
		return []string{prefixAPIKeySession, prefixAPIKeyNoSession}
	case KindFailures:
		return []string{prefixFailures, prefixLegacyFailures}
	}
	return nil
}

// ViewUser decodes a stored user record.
func ViewUser(key, value []byte) (User, error) {
	id, err := decodeUserKey(key)
	if err != nil {
		return User{}, err
	}
	var u User
	if err := json.Unmarshal(value, &u); err != nil {
		return User{}, fmt.Errorf("%w: user %d: %v", ErrBadRecord, id, err)
	}
	return u, nil
}

// ViewEmail decodes an email index entry: the normalised address (or, for
// a system id claim, the claimed id and systemID true) and its owner.
func ViewEmail(key, value []byte) (email string, systemID bool, owner UserID, err error) {
	if !hasPrefix(key, prefixEmail) {
		return "", false, 0, fmt.Errorf("%w: not an email key", ErrBadRecord)
	}
	if err := json.Unmarshal(value, &owner); err != nil {
		return "", false, 0, fmt.Errorf("%w: email index value: %v", ErrBadRecord, err)
	}
	email = string(key[len(prefixEmail):])
	if len(email) > 0 && email[0] == 0 {
		return email[1:], true, owner, nil
	}
	return email, false, owner, nil
}

// ViewSession decodes a stored session.
func ViewSession(key, value []byte) (Session, error) {
	if len(key) != len(prefixSession)+len(SessionDigest{}) || !hasPrefix(key, prefixSession) {
		return Session{}, fmt.Errorf("%w: session key of %d bytes", ErrBadRecord, len(key))
	}
	p, err := parseSession(value)
	if err != nil {
		return Session{}, err
	}
	s := Session{
		UserID: p.user, IPAddress: string(p.fields[0]), UserAgent: string(p.fields[1]),
		Created: time.UnixMicro(p.created).UTC(), Expires: time.UnixMicro(p.expires).UTC(),
	}
	copy(s.Digest[:], key[len(prefixSession):])
	if len(p.fields[2]) > 0 && json.Valid(p.fields[2]) {
		s.ExtraInfo = json.RawMessage(p.fields[2])
	}
	return s, nil
}

// ViewAPIKey decodes a stored API key.
func ViewAPIKey(key, value []byte) (APIKey, error) {
	k, err := decodeAPIKey(key, value)
	if err != nil {
		return APIKey{}, err
	}
	return *k, nil
}

// FailuresView is a stored failure count of an account.
type FailuresView struct {
	Email    string // normalised
	Count    int
	Last     time.Time
	Until    time.Time // end of the refusal window; zero: none
	Lockouts int
}

// ViewFailures decodes a stored failure count.
func ViewFailures(key, value []byte) (FailuresView, error) {
	var st failState
	if err := json.Unmarshal(value, &st); err != nil {
		return FailuresView{}, fmt.Errorf("%w: failure count: %v", ErrBadRecord, err)
	}
	return FailuresView{Email: failureRecordEmail(key), Count: st.Count, Last: st.Last, Until: st.Until, Lockouts: st.Lockouts}, nil
}
