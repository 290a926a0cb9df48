package actors

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/authnzerver/authnzerver/shard"
	"github.com/authnzerver/authnzerver/wire"
)

// SessionRequest asks for a new session.
type SessionRequest struct {
	// UserID is the session's user; 0 is the anonymous user.
	UserID    shard.UserID
	IPAddress string
	UserAgent string
	Expires   time.Time
	ExtraInfo json.RawMessage
	// MaxPerUser caps the user's live sessions: past it the oldest go
	// (0: DefaultMaxOwned; negative: no cap; the anonymous user has none).
	MaxPerUser int
}

// StartSession makes a session and returns its token (the only copy: the
// core keeps its digest) and the stored session, once both it and the cap
// of the user's sessions are durable. Refusals: RefusedNoUser (no user with
// that id: the Python server's foreign-key failure).
func (a *Accounts) StartSession(r SessionRequest) (token string, sess shard.Session, why Refusal, err error) {
	uid := r.UserID
	if uid == 0 {
		uid = shard.AnonymousID
	}
	if uid != shard.AnonymousID {
		if _, found, err := a.user(uid); err != nil || !found {
			if err == nil {
				why = RefusedNoUser
			}
			return "", shard.Session{}, why, err
		}
	}
	token, err = wire.RandomToken(32)
	if err != nil {
		return "", shard.Session{}, "", fmt.Errorf("actors: session token: %w", err)
	}
	d := shard.DigestSession(token)
	sess, err = askDurable[shard.Session](a.core, CreateSession{
		Digest: d, UserID: uid, IPAddress: r.IPAddress, UserAgent: r.UserAgent, Expires: r.Expires, ExtraInfo: r.ExtraInfo,
	})
	if err != nil {
		return "", shard.Session{}, "", err
	}
	limit := r.MaxPerUser
	if limit == 0 {
		limit = DefaultMaxOwned
	}
	if err := a.CapOwned(uid, shard.OwnedItem{Session: d}, limit); err != nil {
		return "", shard.Session{}, "", err
	}
	return token, sess, "", nil
}
