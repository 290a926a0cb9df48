package shard

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// SessionDigest is the SHA-256 digest of a session token. Only digests are
// kept in memory and on disk (spec §8.4 item 3): a copy of the store does not
// hand out live sessions.
type SessionDigest [sha256.Size]byte

// DigestSession returns the digest of a session token.
func DigestSession(token string) SessionDigest { return sha256.Sum256([]byte(token)) }

// Errors of session operations.
var (
	ErrSessionNotFound = errors.New("shard: session not found")
)

// Session is a copy of one session record.
type Session struct {
	Digest    SessionDigest   `json:"-"`
	UserID    UserID          `json:"uid"`
	IPAddress string          `json:"ip"`
	UserAgent string          `json:"ua"`
	Created   time.Time       `json:"created"`
	Expires   time.Time       `json:"expires"`
	ExtraInfo json.RawMessage `json:"extra,omitempty"` // a JSON value or nil (null)
}

type sessionTable struct {
	byDigest map[SessionDigest]*Session
	// byUser indexes the sessions of each user held by this shard, so that
	// ending every session of a user touches only that user's sessions.
	byUser map[UserID]map[SessionDigest]struct{}
}

func newSessionTable() sessionTable {
	return sessionTable{
		byDigest: make(map[SessionDigest]*Session),
		byUser:   make(map[UserID]map[SessionDigest]struct{}),
	}
}

func (t *sessionTable) put(s *Session) {
	if old, ok := t.byDigest[s.Digest]; ok && old.UserID != s.UserID {
		t.unindex(old)
	}
	t.byDigest[s.Digest] = s
	set := t.byUser[s.UserID]
	if set == nil {
		set = make(map[SessionDigest]struct{})
		t.byUser[s.UserID] = set
	}
	set[s.Digest] = struct{}{}
}

func (t *sessionTable) unindex(s *Session) {
	if set := t.byUser[s.UserID]; set != nil {
		delete(set, s.Digest)
		if len(set) == 0 {
			delete(t.byUser, s.UserID)
		}
	}
}

func (t *sessionTable) remove(d SessionDigest) (*Session, bool) {
	s, ok := t.byDigest[d]
	if !ok {
		return nil, false
	}
	delete(t.byDigest, d)
	t.unindex(s)
	return s, true
}

// NewSession is what a caller supplies to create a session.
type NewSession struct {
	UserID    UserID
	IPAddress string
	UserAgent string
	Expires   time.Time
	ExtraInfo json.RawMessage
}

// CreateSession stores a new session under digest d. A digest collision with
// a live session is impossible in practice (256-bit random tokens); if it
// happens the old record is replaced.
func (s *Shard) CreateSession(d SessionDigest, n NewSession, now time.Time) (Session, []Mutation) {
	sess := &Session{
		Digest:    d,
		UserID:    n.UserID,
		IPAddress: n.IPAddress,
		UserAgent: n.UserAgent,
		Created:   micro(now),
		Expires:   micro(n.Expires),
		ExtraInfo: n.ExtraInfo,
	}
	s.sessions.put(sess)
	return *sess, []Mutation{putSession(sess)}
}

// LookupSession returns the live session with digest d. A session is live
// while its expiry is after now (spec §2.1: strict comparison).
func (s *Shard) LookupSession(d SessionDigest, now time.Time) (Session, error) {
	sess, ok := s.sessions.byDigest[d]
	if !ok || !sess.Expires.After(now) {
		return Session{}, ErrSessionNotFound
	}
	return *sess, nil
}

// DeleteSession deletes the session with digest d, expired or not, and
// returns the deleted record.
func (s *Shard) DeleteSession(d SessionDigest) (Session, []Mutation, error) {
	sess, ok := s.sessions.remove(d)
	if !ok {
		return Session{}, nil, ErrSessionNotFound
	}
	return *sess, []Mutation{{Key: sessionKey(d)}}, nil
}

// DeleteUserSessions deletes every session of user id held by this shard
// except keep (when keep is non-nil), and returns how many it deleted.
func (s *Shard) DeleteUserSessions(id UserID, keep *SessionDigest) (int, []Mutation) {
	set := s.sessions.byUser[id]
	var muts []Mutation
	for d := range set {
		if keep != nil && d == *keep {
			continue
		}
		s.sessions.remove(d)
		muts = append(muts, Mutation{Key: sessionKey(d)})
	}
	return len(muts), muts
}

// EditSessionExtra replaces the extra info of the live session d with the
// result of edit, which gets the current value (nil for null).
func (s *Shard) EditSessionExtra(d SessionDigest, now time.Time, edit func(old json.RawMessage) (json.RawMessage, error)) (Session, []Mutation, error) {
	sess, ok := s.sessions.byDigest[d]
	if !ok || !sess.Expires.After(now) {
		return Session{}, nil, ErrSessionNotFound
	}
	extra, err := edit(sess.ExtraInfo)
	if err != nil {
		return Session{}, nil, err
	}
	cp := *sess
	cp.ExtraInfo = extra
	s.sessions.put(&cp)
	return cp, []Mutation{putSession(&cp)}, nil
}

// SweepSessions deletes sessions that expired more than the retention period
// before now, at most limit of them (0: no limit), so a sweep never holds the
// shard for long.
func (s *Shard) SweepSessions(now time.Time, limit int) []Mutation {
	cutoff := now.Add(-s.opts.SessionRetention)
	var muts []Mutation
	for d, sess := range s.sessions.byDigest {
		if sess.Expires.Before(cutoff) {
			s.sessions.remove(d)
			muts = append(muts, Mutation{Key: sessionKey(d)})
			if limit > 0 && len(muts) >= limit {
				break
			}
		}
	}
	return muts
}

func putSession(sess *Session) Mutation {
	return Mutation{Key: sessionKey(sess.Digest), Value: encodeRecord(sess, &sess.ExtraInfo)}
}

func (s *Shard) loadSession(key, value []byte) error {
	var sess Session
	if err := json.Unmarshal(value, &sess); err != nil {
		return fmt.Errorf("%w: session: %v", ErrBadRecord, err)
	}
	if len(key) != len(prefixSession)+len(sess.Digest) || sess.UserID <= 0 {
		return fmt.Errorf("%w: session key or owner", ErrBadRecord)
	}
	copy(sess.Digest[:], key[len(prefixSession):])
	s.sessions.put(&sess)
	return nil
}
