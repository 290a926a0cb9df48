package actors

import (
	"sync"
	"time"

	"github.com/authnzerver/authnzerver/shard"
)

// SessionInfo is a live session joined with its user.
type SessionInfo struct {
	Session shard.Session `json:"session"`
	User    shard.User    `json:"user"`
}

// sessionInfos holds the answers of session checks: a check answers a
// pooled *SessionInfo, which CheckSession copies and gives back, so that the
// hot path does not box a SessionInfo (several hundred bytes) a check. An
// answer that crossed to another node is not given back: it is garbage.
var sessionInfos = sync.Pool{New: func() any { return new(SessionInfo) }}

func newSessionInfo(sess shard.Session, u shard.User) *SessionInfo {
	p := sessionInfos.Get().(*SessionInfo)
	p.Session, p.User = sess, u
	return p
}

// SessionCheck looks up the live session with token digest Digest on its
// shard and answers it with its user (a *[SessionInfo]), or
// shard.ErrSessionNotFound. When the shard has its user (its own, or a view
// kept current by the user's shard: userview.go) the check ends there;
// otherwise it is forwarded to the user's shard ([SessionUser]): one
// message in, one answer out, and no round trip to the caller in between.
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
	if u, ok := s.UserView(sess.UserID); ok {
		return newSessionInfo(sess, u), nil, nil
	}
	return Forward{Op: SessionUser{Session: sess}}, nil, nil
}

// SessionUser joins a session (found by [SessionCheck]) with its user, on
// the user's shard, and answers the *[SessionInfo]. A session whose user is
// gone is no session (the Python server joins the two tables):
// shard.ErrSessionNotFound.
type SessionUser struct {
	Session shard.Session `json:"session"`
	// view asks for a view of the user for the session's shard (filled in
	// as it is forwarded); it never travels between nodes.
	view viewAsk
}

// Route implements Op.
func (o SessionUser) Route() shard.Route { return shard.UserRoute(o.Session.UserID) }

func (o SessionUser) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	return o.answer(s.GetUser(o.Session.UserID))
}

func (o SessionUser) applyCore(c *Core, s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	return o.answer(c.watch(s, o.Route(), o.Session.UserID, o.view))
}

func (o SessionUser) withView(v viewAsk) Op { o.view = v; return o }

// answer joins the session with its user, or finds no session when the
// user is gone.
func (o SessionUser) answer(u shard.User, err error) (any, []shard.Mutation, error) {
	if err != nil {
		return nil, nil, shard.ErrSessionNotFound
	}
	return newSessionInfo(o.Session, u), nil, nil
}

// CheckSession returns the live session with token digest d and its user, or
// shard.ErrSessionNotFound. It is the hot path of session-exists: no disk, one
// message to the session's shard, forwarded to the user's shard only when
// the session's shard has no view of the user yet.
func CheckSession(c *Core, d shard.SessionDigest) (SessionInfo, error) {
	res, err := Ask[*SessionInfo](c, SessionCheck{Digest: d})
	if res.Value == nil {
		return SessionInfo{}, err
	}
	info := *res.Value
	*res.Value = SessionInfo{} // keeps nothing alive from the pool
	sessionInfos.Put(res.Value)
	return info, err
}
