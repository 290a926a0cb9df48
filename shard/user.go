package shard

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// UserID is a user's numeric id. Ids 1–3 are the system users; real users
// start at 4 and ids are never reused.
type UserID int64

// The system users (docs/protocol.md, "Users, emails and passwords").
const (
	SuperuserID UserID = 1
	AnonymousID UserID = 2
	DummyUserID UserID = 3
	FirstUserID UserID = 4
)

// Errors of user operations.
var (
	ErrUserNotFound = errors.New("shard: user not found")
	ErrUserExists   = errors.New("shard: user exists")
)

// User is a copy of one user record. Zero times mean null.
type User struct {
	ID                  UserID          `json:"id"`
	SystemID            string          `json:"system_id"`
	FullName            string          `json:"full_name"`
	PasswordPHC         string          `json:"password"`
	Email               string          `json:"email"` // normalised
	EmailVerified       bool            `json:"email_verified"`
	IsActive            bool            `json:"is_active"`
	EmailVerifySent     time.Time       `json:"emailverify_sent,omitzero"`
	EmailForgotPassSent time.Time       `json:"emailforgotpass_sent,omitzero"`
	EmailChangePassSent time.Time       `json:"emailchangepass_sent,omitzero"`
	LastLoginSuccess    time.Time       `json:"last_login_success,omitzero"`
	LastLoginTry        time.Time       `json:"last_login_try,omitzero"`
	FailedLoginTries    int             `json:"failed_login_tries,omitempty"`
	ExtraInfo           json.RawMessage `json:"extra_info,omitempty"` // a JSON object or nil
	CreatedOn           time.Time       `json:"created_on"`
	LastUpdated         time.Time       `json:"last_updated"`
	Role                string          `json:"role"`
	// AutoUnlockAt, when set, is when an automatic lock (lockout.go) ends.
	// It is stored with the user, so a restart does not lose the unlock.
	AutoUnlockAt time.Time `json:"auto_unlock_at,omitzero"`
	// EmailTokens are the user's outstanding emailed codes (emailtoken.go).
	// Edits must replace the slice, never write into it: copies share it.
	EmailTokens []EmailToken `json:"email_tokens,omitempty"`
}

// CreateUser stores a new user. The id must be unused.
func (s *Shard) CreateUser(u User, now time.Time) (User, []Mutation, error) {
	if _, ok := s.users[u.ID]; ok {
		return User{}, nil, fmt.Errorf("%w: id %d", ErrUserExists, u.ID)
	}
	if u.CreatedOn.IsZero() {
		u.CreatedOn = now
	}
	u.CreatedOn = micro(u.CreatedOn)
	u.LastUpdated = micro(now)
	cp := u
	s.users[u.ID] = &cp
	s.indexUnlock(&cp)
	return u, []Mutation{putUser(&cp)}, nil
}

// GetUser returns a copy of user id.
func (s *Shard) GetUser(id UserID) (User, error) {
	u, ok := s.users[id]
	if !ok {
		return User{}, ErrUserNotFound
	}
	return *u, nil
}

// UpdateUser applies edit to a copy of user id and stores the copy if edit
// returns nil. edit runs on the shard's goroutine and must not retain u.
// NB: edit sees the state at the moment of the call, so a read-check-write
// done inside edit is atomic with respect to other requests.
func (s *Shard) UpdateUser(id UserID, now time.Time, edit func(u *User) error) (User, []Mutation, error) {
	old, ok := s.users[id]
	if !ok {
		return User{}, nil, ErrUserNotFound
	}
	cp := *old
	if err := edit(&cp); err != nil {
		return User{}, nil, err
	}
	cp.ID = id // the id is the key; edit may not move the record
	cp.LastUpdated = micro(now)
	s.users[id] = &cp
	s.indexUnlock(&cp)
	return cp, []Mutation{putUser(&cp)}, nil
}

// DeleteUser deletes user id and returns the deleted record.
func (s *Shard) DeleteUser(id UserID) (User, []Mutation, error) {
	u, ok := s.users[id]
	if !ok {
		return User{}, nil, ErrUserNotFound
	}
	delete(s.users, id)
	delete(s.unlockAt, id)
	delete(s.sessions.owners, id)
	for _, m := range s.apikeys.owners {
		delete(m, id)
	}
	return *u, []Mutation{{Key: userKey(id)}}, nil
}

// ListUsers returns up to limit users with ids greater than after, in id
// order, and whether this shard has more beyond them. match, when non-nil,
// filters the users.
func (s *Shard) ListUsers(after UserID, limit int, match func(u *User) bool) ([]User, bool) {
	ids := make([]UserID, 0, len(s.users))
	for id, u := range s.users {
		if id > after && (match == nil || match(u)) {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	more := false
	if limit > 0 && len(ids) > limit {
		ids, more = ids[:limit], true
	}
	out := make([]User, len(ids))
	for i, id := range ids {
		out[i] = *s.users[id]
	}
	return out, more
}

// MaxUserID returns the largest user id held by this shard (0 if none).
func (s *Shard) MaxUserID() UserID {
	var m UserID
	for id := range s.users {
		m = max(m, id)
	}
	return m
}

func putUser(u *User) Mutation {
	return Mutation{Key: userKey(u.ID), Value: encodeRecord(u, &u.ExtraInfo)}
}

func (s *Shard) loadUser(key, value []byte) error {
	id, err := decodeUserKey(key)
	if err != nil {
		return err
	}
	var u User
	if err := json.Unmarshal(value, &u); err != nil {
		return fmt.Errorf("%w: user %d: %v", ErrBadRecord, id, err)
	}
	if u.ID != id || id <= 0 {
		return fmt.Errorf("%w: user key %d holds id %d", ErrBadRecord, id, u.ID)
	}
	s.users[id] = &u
	s.indexUnlock(&u)
	return nil
}

// The email index maps a normalised email to the user that owns it. It lives
// on the shard of the email's hash, not the user's, so uniqueness is decided
// by one actor even when two sign-ups of the same address race.

// ClaimEmail reserves email for user id. If another user holds it, it returns
// that user's id and claimed=false, and changes nothing.
func (s *Shard) ClaimEmail(email string, id UserID) (owner UserID, claimed bool, muts []Mutation) {
	if cur, ok := s.emails[email]; ok && cur != id {
		return cur, false, nil
	}
	s.emails[email] = id
	return id, true, []Mutation{putEmail(email, id)}
}

// ReleaseEmail removes email from the index if user id holds it.
func (s *Shard) ReleaseEmail(email string, id UserID) []Mutation {
	if cur, ok := s.emails[email]; !ok || cur != id {
		return nil
	}
	delete(s.emails, email)
	return []Mutation{{Key: emailKey(email)}}
}

// LookupEmail returns the user id that holds email.
func (s *Shard) LookupEmail(email string) (UserID, bool) {
	id, ok := s.emails[email]
	return id, ok
}

// EmailEntries calls fn for every index entry; used by the start-up check
// that drops entries whose user does not exist (a crash between the claim
// and the user record).
func (s *Shard) EmailEntries(fn func(email string, id UserID)) {
	for e, id := range s.emails {
		fn(e, id)
	}
}

func putEmail(email string, id UserID) Mutation {
	v, _ := json.Marshal(id)
	return Mutation{Key: emailKey(email), Value: v}
}

// Per-user caps on sessions and API keys. A user's sessions and keys are
// spread over every shard (they route by their own digests), so no shard
// can count them. Instead the user's own shard keeps, for each user that
// made one since start, an upper bound of how many are live; the caller
// counts exactly (a fan-out over all shards, see [Shard.UserSessions] and
// [Shard.UserAPIKeys]) only when the bound passes the cap or is unknown,
// and then deletes the oldest. So a new session costs one more hop, to the
// user's shard, and a session check costs nothing.

// OwnedKind names what an owner count counts. The two kinds of API key are
// counted (and capped) apart: a frontend may make a session-tied key at
// every login, and keys of sessions that have ended count until they are
// swept, so one cap for both would let them push out a user's long-lived
// no-session keys.
type OwnedKind uint8

// The owned kinds.
const (
	OwnedSessions      OwnedKind = iota
	OwnedSessionKeys             // API keys tied to a session
	OwnedNoSessionKeys           // API keys with a refresh token
)

// OwnedKeys returns the owned kind of API keys of kind k.
func OwnedKeys(k APIKeyKind) OwnedKind {
	if k == KeyNoSession {
		return OwnedNoSessionKeys
	}
	return OwnedSessionKeys
}

// ownerCounts maps a user to its ownerCount.
type ownerCounts map[UserID]ownerCount

// ownerCount is an upper bound of a user's live items. Invariant: once
// known, n is at least the number of the user's live items created before
// the latest note, as long as every creation is followed by a note.
// Expiries and deletions make it an overestimate, which only costs an early
// recount. Until a recount has finished since start, nothing is known.
type ownerCount struct {
	n     int    // upper bound of live items, when known
	gen   uint64 // notes so far: orders a recount against notes made during it
	known bool
}

func (s *Shard) owners(kind OwnedKind) ownerCounts {
	switch kind {
	case OwnedSessionKeys:
		return s.apikeys.owners[KeySession]
	case OwnedNoSessionKeys:
		return s.apikeys.owners[KeyNoSession]
	}
	return s.sessions.owners
}

// NoteOwned records, on the shard of user uid, that uid has one more item
// of kind (created before this call), and reports whether the caller must
// count them exactly and enforce the cap: the count is unknown or above
// limit. gen identifies this note for [Shard.SetOwnedCount].
func (s *Shard) NoteOwned(kind OwnedKind, uid UserID, limit int) (gen uint64, recount bool) {
	m := s.owners(kind)
	c := m[uid]
	c.n++
	c.gen++
	m[uid] = c
	return c.gen, !c.known || c.n > limit
}

// SetOwnedCount records an exact count n of uid's live items of kind,
// taken after the note gen. Notes made since gen may have been missed by
// the count, so each adds one: an overestimate, never an underestimate.
func (s *Shard) SetOwnedCount(kind OwnedKind, uid UserID, n int, gen uint64) {
	m := s.owners(kind)
	c, ok := m[uid]
	if !ok || gen > c.gen {
		return // the user was deleted (or the shard restarted) meanwhile
	}
	c.n = n + int(c.gen-gen)
	c.known = true
	m[uid] = c
}

// OwnedItem is one live session or API key of a user, for choosing which
// to delete when the user has more than the cap.
type OwnedItem struct {
	Created  time.Time // issue time of a key
	Session  SessionDigest
	Key      APIKeyDigest
	KeyKind  APIKeyKind
	IsAPIKey bool
}

// SystemIDKey is the email-index key of a client-chosen system id. It shares
// the email index (a NUL byte never starts a normalised email), so a system
// id is unique by the same one-shard rule as an email.
func SystemIDKey(id string) string { return "\x00sid:" + id }
