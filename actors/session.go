package actors

import (
	"time"

	"github.com/authnzerver/authnzerver/shard"
)

// SessionInfo is a live session joined with its user.
type SessionInfo struct {
	Session shard.Session `json:"session"`
	User    shard.User    `json:"user"`
}

// SessionCheck looks up the live session with token digest Digest on its
// shard and forwards the call to its user's shard ([SessionUser]): one
// message in, one answer out (a [SessionInfo], or
// shard.ErrSessionNotFound), and no round trip to the caller in between.
type SessionCheck struct {
	Digest shard.SessionDigest `json:"digest"`
}

// Route implements Op.
func (o SessionCheck) Route() shard.Route { return shard.SessionRoute(o.Digest) }

func (o SessionCheck) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	sess, err := s.LookupSession(o.Digest, now)
	if err != nil {
		return nil, nil, err
	}
	return Forward{Op: SessionUser{Session: sess}}, nil, nil
}

// SessionUser joins a session (found by [SessionCheck]) with its user, on
// the user's shard, and answers the [SessionInfo]. A session whose user is
// gone is no session (the Python server joins the two tables):
// shard.ErrSessionNotFound.
type SessionUser struct {
	Session shard.Session `json:"session"`
}

// Route implements Op.
func (o SessionUser) Route() shard.Route { return shard.UserRoute(o.Session.UserID) }

func (o SessionUser) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	u, err := s.GetUser(o.Session.UserID)
	if err != nil {
		return nil, nil, shard.ErrSessionNotFound
	}
	return SessionInfo{Session: o.Session, User: u}, nil, nil
}

// CheckSession returns the live session with token digest d and its user, or
// shard.ErrSessionNotFound. It is the hot path of session-exists: no disk, one
// message to the session's shard, forwarded to the user's shard.
func CheckSession(c *Core, d shard.SessionDigest) (SessionInfo, error) {
	res, err := Ask[SessionInfo](c, SessionCheck{Digest: d})
	return res.Value, err
}
