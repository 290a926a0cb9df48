package actors

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/authnzerver/authnzerver/shard"
)

// Operations on sessions: create, look up, edit, delete, and a user's sessions across shards.
// The per-user caps on sessions and API keys (NoteOwned, ListOwned,
// DeleteOwned, SetOwnedCount) are here too: the front's cap enforcement
// (httpfront/caps.go) counts both kinds with them.

// sessionOps lists the operations of this file for the codec (ops.go).
var sessionOps = []broadcastOp{
	CreateSession{}, GetSession{}, DeleteSession{}, SetSessionExtra{}, MergeSessionExtra{},
	DeleteUserSessions{},
	NoteOwned{}, ListOwned{}, DeleteOwned{}, SetOwnedCount{},
	SessionCheck{}, SessionUser{},
}

// ErrSessionExtraTooLarge reports a [MergeSessionExtra] whose result is
// larger than its bound; the session is left as it was.
var ErrSessionExtraTooLarge = errors.New("actors: session extra info too large")

// CreateSession stores a new session under Digest, the digest of its token
// (the caller draws the token and keeps it; only the digest travels). It
// answers the stored shard.Session and never fails. ExtraInfo is kept only
// if it is valid JSON.
type CreateSession struct {
	Digest    shard.SessionDigest `json:"digest"`
	UserID    shard.UserID        `json:"user_id"`
	IPAddress string              `json:"ip_address"`
	UserAgent string              `json:"user_agent"`
	Expires   time.Time           `json:"expires"`
	// ExtraInfo is omitted when nil, so that it decodes as nil, not as the
	// JSON text null.
	ExtraInfo json.RawMessage `json:"extra_info,omitempty"`
}

// Route implements Op.
func (o CreateSession) Route() shard.Route { return shard.SessionRoute(o.Digest) }

func (o CreateSession) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	sess, muts := s.CreateSession(o.Digest, shard.NewSession{
		UserID: o.UserID, IPAddress: o.IPAddress, UserAgent: o.UserAgent, Expires: o.Expires, ExtraInfo: o.ExtraInfo,
	}, now)
	return sess, muts, nil
}

// GetSession answers the live session with Digest (a shard.Session, without
// its user), or fails with shard.ErrSessionNotFound when there is none or it
// has expired. The session check of session-exists is [CheckSession], which
// also joins the user.
type GetSession struct {
	Digest shard.SessionDigest `json:"digest"`
}

// Route implements Op.
func (o GetSession) Route() shard.Route { return shard.SessionRoute(o.Digest) }

func (o GetSession) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	sess, err := s.LookupSession(o.Digest, now)
	return sess, nil, err
}

// DeleteSession deletes the session with Digest, expired or not. It answers
// whether there was one to delete (a bool) and never fails.
type DeleteSession struct {
	Digest shard.SessionDigest `json:"digest"`
}

// Route implements Op.
func (o DeleteSession) Route() shard.Route { return shard.SessionRoute(o.Digest) }

func (o DeleteSession) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	_, muts, err := s.DeleteSession(o.Digest)
	return err == nil, muts, nil
}

// SetSessionExtra replaces the extra info of the live session with Digest as
// a whole (nil, or anything but valid JSON, stores null). It answers the
// edited shard.Session, or fails with shard.ErrSessionNotFound. The caller
// bounds ExtraInfo's size.
type SetSessionExtra struct {
	Digest    shard.SessionDigest `json:"digest"`
	ExtraInfo json.RawMessage     `json:"extra_info,omitempty"` // omitted when nil: see CreateSession
}

// Route implements Op.
func (o SetSessionExtra) Route() shard.Route { return shard.SessionRoute(o.Digest) }

func (o SetSessionExtra) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	return s.EditSessionExtra(o.Digest, now, func(json.RawMessage) (json.RawMessage, error) { return o.ExtraInfo, nil })
}

// MergeSessionExtra merges Update into the extra info of the live session
// with Digest, which is taken as a JSON object (null or any other value
// counts as {}): each key of Update is set, and a key whose value is the
// string "__delete__" is removed (deleting an absent key does nothing). It
// answers the edited shard.Session, or fails with shard.ErrSessionNotFound,
// or with ErrSessionExtraTooLarge when the merged object's JSON text is
// longer than MaxBytes (0: no bound) and then changes nothing.
type MergeSessionExtra struct {
	Digest   shard.SessionDigest        `json:"digest"`
	Update   map[string]json.RawMessage `json:"update"`
	MaxBytes int                        `json:"max_bytes"`
}

// Route implements Op.
func (o MergeSessionExtra) Route() shard.Route { return shard.SessionRoute(o.Digest) }

func (o MergeSessionExtra) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	return s.EditSessionExtra(o.Digest, now, func(old json.RawMessage) (json.RawMessage, error) {
		merged, err := mergeExtra(old, o.Update)
		if err == nil && o.MaxBytes > 0 && len(merged) > o.MaxBytes {
			err = ErrSessionExtraTooLarge
		}
		return merged, err
	})
}

// mergeExtra merges update into the JSON object old (a non-object old,
// null included, counts as {}): each key is set, and a key whose value is
// the JSON string "__delete__" is removed. Unlike the reference, deleting an
// absent key is a no-op instead of storing the literal "__delete__"
// (docs/protocol.md, "Deliberate differences from the Python server"). It
// serves the extra info of sessions and of users alike.
func mergeExtra(old json.RawMessage, update map[string]json.RawMessage) (json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if firstByte(old) == '{' {
		if err := json.Unmarshal(old, &m); err != nil {
			return nil, err
		}
	}
	for k, v := range update {
		if firstByte(v) == '"' {
			var s string
			if json.Unmarshal(v, &s) == nil && s == "__delete__" {
				delete(m, k)
				continue
			}
		}
		m[k] = v
	}
	return json.Marshal(m)
}

// DeleteUserSessions deletes, on every shard it is sent to ([AskAll]), every
// session of UserID, live or expired, except the one with digest Keep when
// KeepOne is set. Each shard answers the number it deleted (an int) and
// never fails. Once every shard has answered, no session of the user passes
// a check; the deletions are durable once every result's ticket is released.
type DeleteUserSessions struct {
	UserID  shard.UserID        `json:"user_id"`
	Keep    shard.SessionDigest `json:"keep"`
	KeepOne bool                `json:"keep_one"`
}

func (o DeleteUserSessions) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	var keep *shard.SessionDigest
	if o.KeepOne {
		keep = &o.Keep // o is this call's copy
	}
	n, muts := s.DeleteUserSessions(o.UserID, keep)
	return n, muts, nil
}

// The per-user caps (httpfront/caps.go): a new session or key is noted on
// its user's shard ([NoteOwned]); only when the shard's bound passes the cap
// is the user's set listed on every shard ([ListOwned]), the oldest deleted
// ([DeleteOwned]) and the exact count recorded ([SetOwnedCount]).

// NoteOwned records, on the shard of UserID, that the user has one more item
// of Kind (see shard.Shard.NoteOwned). It answers an [OwnedNote] and never
// fails.
type NoteOwned struct {
	UserID shard.UserID    `json:"user_id"`
	Kind   shard.OwnedKind `json:"kind"`
	Limit  int             `json:"limit"`
}

// OwnedNote is the answer to [NoteOwned]: Recount when the caller must count
// the user's items exactly and enforce the cap, and Gen, the note's number,
// for the [SetOwnedCount] that follows the count.
type OwnedNote struct {
	Gen     uint64 `json:"gen"`
	Recount bool   `json:"recount"`
}

// Route implements Op.
func (o NoteOwned) Route() shard.Route { return shard.UserRoute(o.UserID) }

func (o NoteOwned) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	gen, recount := s.NoteOwned(o.Kind, o.UserID, o.Limit)
	return OwnedNote{Gen: gen, Recount: recount}, nil, nil
}

// ListOwned answers, from every shard it is sent to ([AskAll]), the live
// items of Kind of UserID that the shard holds (a []shard.OwnedItem, in no
// order): sessions, session-tied API keys or no-session API keys. It never
// fails.
type ListOwned struct {
	UserID shard.UserID    `json:"user_id"`
	Kind   shard.OwnedKind `json:"kind"`
}

func (o ListOwned) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	switch o.Kind {
	case shard.OwnedSessionKeys:
		return s.UserAPIKeys(o.UserID, shard.KeySession, now), nil, nil
	case shard.OwnedNoSessionKeys:
		return s.UserAPIKeys(o.UserID, shard.KeyNoSession, now), nil, nil
	}
	return s.UserSessions(o.UserID, now), nil, nil
}

// DeleteOwned deletes one item listed by [ListOwned], a session or an API
// key, on the shard that holds it (nothing if it is gone). It answers
// nothing and never fails.
type DeleteOwned struct {
	Item shard.OwnedItem `json:"item"`
}

// Route implements Op.
func (o DeleteOwned) Route() shard.Route {
	if o.Item.IsAPIKey {
		return shard.APIKeyRoute(o.Item.Key)
	}
	return shard.SessionRoute(o.Item.Session)
}

func (o DeleteOwned) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	if o.Item.IsAPIKey {
		return nil, s.DeleteAPIKey(o.Item.KeyKind, o.Item.Key), nil
	}
	_, muts, _ := s.DeleteSession(o.Item.Session)
	return nil, muts, nil
}

// SetOwnedCount records, on the shard of UserID, the exact number Count of
// the user's live items of Kind, counted after the note Gen (see
// shard.Shard.SetOwnedCount). It answers nothing and never fails.
type SetOwnedCount struct {
	UserID shard.UserID    `json:"user_id"`
	Kind   shard.OwnedKind `json:"kind"`
	Count  int             `json:"count"`
	Gen    uint64          `json:"gen"`
}

// Route implements Op.
func (o SetOwnedCount) Route() shard.Route { return shard.UserRoute(o.UserID) }

func (o SetOwnedCount) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	s.SetOwnedCount(o.Kind, o.UserID, o.Count, o.Gen)
	return nil, nil, nil
}
