package actors

import (
	"github.com/authnzerver/authnzerver/shard"
)

// SessionInfo is a live session joined with its user.
type SessionInfo struct {
	Session shard.Session
	User    shard.User
}

// checkSession looks up a session on its shard, which then forwards the
// lookup of its user to the user's shard: one message from the caller, one
// reply, and no round trip back to the caller in between.
type checkSession struct {
	digest shard.SessionDigest
	out    chan reply
}

type fillSessionUser struct {
	sess shard.Session
	out  chan reply
}

func (a *shardActor) checkSession(m *checkSession) {
	sess, err := a.state.LookupSession(m.digest, a.core.opts.Now())
	if err != nil {
		m.out <- reply{err: err}
		return
	}
	pid, _ := a.core.pidOf(shard.UserRoute(sess.UserID))
	a.core.root.Send(pid, &fillSessionUser{sess: sess, out: m.out})
}

func (a *shardActor) fillSessionUser(m *fillSessionUser) {
	u, err := a.state.GetUser(m.sess.UserID)
	if err != nil {
		// A session whose user is gone is no session (the reference joins
		// the two tables).
		m.out <- reply{err: shard.ErrSessionNotFound}
		return
	}
	m.out <- reply{val: SessionInfo{Session: m.sess, User: u}}
}

// CheckSession returns the live session with token digest d and its user, or
// shard.ErrSessionNotFound. It is the hot path of session-exists: no disk, one
// message to the session's shard, forwarded to the user's shard.
func CheckSession(c *Core, d shard.SessionDigest) (SessionInfo, error) {
	if c.stopped.Load() {
		return SessionInfo{}, ErrStopped
	}
	pid, _ := c.pidOf(shard.SessionRoute(d))
	ch := replyPool.Get().(chan reply)
	c.root.Send(pid, &checkSession{digest: d, out: ch})
	r, err := c.wait(ch)
	if err != nil {
		return SessionInfo{}, err
	}
	if r.err != nil {
		return SessionInfo{}, r.err
	}
	return r.val.(SessionInfo), nil
}
