package httpfront

import (
	"math"
	"strconv"
	"time"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/passpolicy"
	"github.com/authnzerver/authnzerver/shard"
)

// Brute-force back-off and auto-lock for user-login and
// user-passcheck-nosession (spec §4.5), fixed as the spec asks:
//
//   - Attempts are counted per (normalised email, client address). Once a
//     key has used up its tries, further attempts get the lock answer without
//     any password verification, so parallel wrong passwords cannot test more
//     than the try count.
//   - The attempt that goes over the limit locks the account (role "locked",
//     sessions ended) for userlocktime, with the unlock time stored in the
//     user record: a restart does not lose it. Superusers are never locked
//     automatically: their email is only refused from the client address that
//     used up the tries, so nobody can lock the superuser out.
//   - Counts are bounded in memory, persisted, forgotten after userlocktime
//     without failures, and reset by a success or an unlock.

const msgAutoLocked = "Your user account has been locked after repeated login failures. Try again in an hour or contact the server admins."

// backoffDelayCap is the longest delay of a failed attempt (spec §4.5).
const backoffDelayCap = 40 * time.Second

// backoffDelay is the reply delay of the n-th failed attempt: 1.5^(n−1)
// seconds, at most 40.
func backoffDelay(n int) time.Duration {
	d := time.Duration(math.Pow(1.5, float64(n-1)) * float64(time.Second))
	return min(d, backoffDelayCap)
}

func (e *usersExt) lockTries() int {
	if e.opts.LockTries <= 0 {
		return 10
	}
	return e.opts.LockTries
}

func (e *usersExt) lockTime() time.Duration {
	if e.opts.LockTime <= 0 {
		return time.Hour
	}
	return e.opts.LockTime
}

func attemptKey(email, clientIP string) string {
	return passpolicy.NormalizeEmail(email) + "\x00" + clientIP
}

// withBackoff runs check (one password verification) under the back-off
// rules for email.
func (s *Server) withBackoff(c *call, email string, check func() result) result {
	key := attemptKey(email, c.clientIP)
	decay := s.ext.users.lockTime()
	begin, err := actors.Do(s.deps.Core, shard.StringRoute(key), func(sh *shard.Shard, now time.Time) (int, []shard.Mutation, error) {
		return sh.BeginAttempt(key, now, decay), nil, nil
	})
	if err != nil {
		return coreFailure(err)
	}
	n := begin.Value
	if n > s.ext.users.lockTries() {
		s.endAttempt(key, shard.AttemptCancelled)
		if n == s.ext.users.lockTries()+1 {
			s.autoLock(email)
		}
		return result{messages: []string{msgAutoLocked}, fields: []field{{"user_id", nil}}}
	}
	r := check()
	switch {
	case r.status != 0:
		s.endAttempt(key, shard.AttemptCancelled)
	case r.ok:
		s.endAttempt(key, shard.AttemptSucceeded)
	default:
		s.endAttempt(key, shard.AttemptFailed)
		time.Sleep(backoffDelay(n))
	}
	return r
}

func (s *Server) endAttempt(key string, o shard.Outcome) {
	res, err := actors.Do(s.deps.Core, shard.StringRoute(key), func(sh *shard.Shard, now time.Time) (struct{}, []shard.Mutation, error) {
		return struct{}{}, sh.EndAttempt(key, o, now), nil
	})
	if err == nil {
		err = res.Durable()
	}
	if err != nil {
		s.log.Warn("record password attempt", "err", err)
	}
}

// autoLock locks the user with email for the lock time, unless it is a
// superuser or already locked (a lock that changed nothing schedules no
// unlock, spec §4.5).
func (s *Server) autoLock(email string) {
	u, found, err := userByEmail(s, email)
	if err != nil || !found || u.Role == "superuser" {
		return
	}
	until := s.deps.Core.Now().Add(s.ext.users.lockTime())
	locked, err := updateUser(s, u.ID, func(cur *shard.User) error {
		if cur.Role == "superuser" {
			return shard.ErrNoChange
		}
		return shard.LockUser(cur, until)
	})
	if err != nil {
		return
	}
	if _, err := deleteAllUserSessions(s, u.ID); err != nil {
		s.log.Warn("end sessions of auto-locked user", "err", err)
	}
	s.log.Info("user locked after repeated password failures", "user", s.pii(strconv.FormatInt(int64(locked.ID), 10)))
}

// unlockIfDue ends an automatic lock whose time has passed, so a login right
// after the lock time works without waiting for the sweeper.
func (s *Server) unlockIfDue(u shard.User) shard.User {
	if u.AutoUnlockAt.IsZero() || s.deps.Core.Now().Before(u.AutoUnlockAt) {
		return u
	}
	nu, err := updateUser(s, u.ID, func(cur *shard.User) error {
		if cur.AutoUnlockAt.IsZero() || s.deps.Core.Now().Before(cur.AutoUnlockAt) {
			return shard.ErrNoChange
		}
		return shard.UnlockUser(cur)
	})
	if err != nil {
		if g, err := getUser(s, u.ID); err == nil {
			return g
		}
		return u
	}
	s.forgetFailures(nu.Email)
	return nu
}

// deleteAllUserSessions ends every session of a user on every shard.
func deleteAllUserSessions(s *Server, id shard.UserID) (int, error) {
	return deleteUserSessions(s, id, nil)
}

// forgetFailures resets the failed attempts of email from every address.
func (s *Server) forgetFailures(email string) {
	prefix := passpolicy.NormalizeEmail(email) + "\x00"
	rs, err := actors.DoAll(s.deps.Core, func(sh *shard.Shard, _ time.Time) (struct{}, []shard.Mutation, error) {
		return struct{}{}, sh.ResetFailuresPrefix(prefix), nil
	})
	if err == nil {
		err = actors.WaitAll(rs)
	}
	if err != nil {
		s.log.Warn("forget failed attempts", "err", err)
	}
}
