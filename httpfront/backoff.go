package httpfront

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/passhash"
	"github.com/authnzerver/authnzerver/passpolicy"
	"github.com/authnzerver/authnzerver/shard"
)

// Brute-force back-off and auto-lock (docs/security.md, "Brute-force back-off
// and auto-lock"), for every request that verifies a user's password
// (user-login, user-passcheck, user-passcheck-nosession, user-changepass,
// user-changepass-nosession, user-delete), with these rules:
//
//   - Failures are counted per account (the normalised email), whatever
//     the client address, in the account's shard (see shard/lockout.go).
//     Each failure delays its reply by 1.5^(n−1) s, at most 40 s.
//   - Attempts are reserved before the password is verified. While the
//     failures plus the attempts in flight reach userlocktries, further
//     attempts wait for one to end, so parallel wrong passwords cannot test
//     more than the try count, and parallel right ones are never refused or
//     counted.
//   - Once userlocktries failures are counted, the account is refused any
//     verification for userlocktime: every request gets the lock answer and
//     no password is verified, so a locked account is no oracle. The account
//     is locked (role "locked", sessions ended) with the unlock time stored
//     in the user record: a restart does not lose it.
//   - Superusers are never locked, so nobody can lock the admin out, and
//     neither are the anonymous and locked system users (locking the
//     anonymous user would end every anonymous session). Their refusal
//     window is shorter but grows with each lock-out (protectedWindow), so
//     guesses stay bounded; the price is that an attacker can keep the
//     superuser from logging in during a window (an operator can end it
//     with an unlock).
//   - Counts are bounded in memory, persisted, forgotten after userlocktime
//     without failures, and reset by a success, the end of a window or an
//     unlock.

const msgAutoLocked = "Your user account has been locked after repeated login failures. Try again in an hour or contact the server admins."

// backoffDelayCap is the longest delay of a failed attempt (docs/security.md,
// "Brute-force back-off and auto-lock").
const backoffDelayCap = 40 * time.Second

// attemptWaitMax bounds how long an attempt waits for the attempts in
// flight on its account; past it the answer is "busy, retry later". A
// verification ends well within the hasher's own 10 s timeout.
const attemptWaitMax = 30 * time.Second

// attemptPollInterval is the pause before an attempt told to wait asks
// again. The answer to actors.BeginAttempt is plain data (it may come from
// another node), so a waiter asks again rather than wait on a signal; the
// shard answers in microseconds and a verification takes about 100 ms, so a
// waiter learns of a free place about as soon as it could take it.
const attemptPollInterval = 10 * time.Millisecond

// attemptStale is how long an attempt may stay in flight before its place
// is taken as lost (a reservation whose caller timed out before the shard
// made it). Far above any verification, which the hasher bounds at 10 s.
const attemptStale = 2 * attemptWaitMax

// backoffDelay is the reply delay of the n-th failed attempt: 1.5^(n−1)
// seconds, at most 40.
func backoffDelay(n int) time.Duration {
	d := time.Duration(math.Pow(1.5, float64(n-1)) * float64(time.Second))
	return min(d, backoffDelayCap)
}

// protectedWindow is the refusal window of an account that is never locked,
// after its k-th lock-out since its last success: 40 s, doubling, at most
// lockTime.
func protectedWindow(k int, lockTime time.Duration) time.Duration {
	k = min(max(k, 1), 20)
	return min(backoffDelayCap<<(k-1), lockTime)
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

// lockedAnswer is the reply to an attempt on an account over its limit
// (docs/security.md, "Brute-force back-off and auto-lock"), whatever the
// request type.
func lockedAnswer() result {
	return result{messages: []string{msgAutoLocked}, fields: []field{{"user_id", nil}}}
}

// withBackoff runs check, which verifies one password of the account with
// email, under the back-off and lock rules. check says how the verification
// went: AttemptSucceeded when the account's password matched (whatever the
// reply), AttemptFailed when a password was verified and did not match,
// AttemptCancelled when nothing was decided. An error, or an answer by
// status, always counts as AttemptCancelled; withBackoff returns the error
// for the pipeline to answer.
func (s *Server) withBackoff(email string, check func() (result, shard.Outcome, error)) (result, error) {
	key := passpolicy.NormalizeEmail(email)
	users := s.ext.users
	begin := actors.BeginAttempt{Email: key, Tries: users.lockTries(), Decay: users.lockTime(), LockFor: users.lockTime(), Stale: attemptStale}
	var waitUntil time.Time // set at the first wait
	for {
		res, err := actors.Ask[actors.AttemptAnswer](s.deps.Core, begin)
		if err != nil {
			return result{}, err
		}
		a := res.Value
		switch a.Verdict {
		case shard.AttemptRefused:
			return lockedAnswer(), nil
		case shard.AttemptOverLimit:
			if err := res.Durable(); err != nil {
				s.log.Warn("record password lock-out", "err", err)
			}
			s.lockOut(key, a)
			return lockedAnswer(), nil
		case shard.AttemptWait:
			now := time.Now()
			if waitUntil.IsZero() {
				waitUntil = now.Add(attemptWaitMax)
			}
			if !now.Before(waitUntil) {
				return result{}, errBusy
			}
			time.Sleep(min(attemptPollInterval, waitUntil.Sub(now)))
			continue
		}
		break
	}
	done := false
	defer func() {
		if !done { // check panicked: free the place
			s.endAttempt(key, shard.AttemptCancelled)
		}
	}()
	r, outcome, err := check()
	done = true
	if err != nil || r.status != 0 {
		outcome = shard.AttemptCancelled // an error is never a failure
	}
	if n := s.endAttempt(key, outcome); outcome == shard.AttemptFailed {
		time.Sleep(backoffDelay(n))
	}
	return r, err
}

// endAttempt settles an attempt and returns the account's failure count.
func (s *Server) endAttempt(key string, o shard.Outcome) int {
	res, err := actors.Ask[int](s.deps.Core, actors.EndAttempt{Email: key, Outcome: o})
	if err == nil {
		err = res.Durable()
	}
	if err != nil {
		s.log.Warn("record password attempt", "err", err)
	}
	return max(res.Value, 1)
}

// lockOut acts on an account whose window a has just opened: a user is
// locked until the window ends; a protected account (superuser, system
// user) is not locked, and its window is shortened to protectedWindow.
func (s *Server) lockOut(key string, a actors.AttemptAnswer) {
	u, found, err := userByEmail(s, key)
	if err != nil || !found {
		return // an unknown email: the window alone answers for it
	}
	if neverLocked(&u) {
		until := s.deps.Core.Now().Add(protectedWindow(a.Lockouts, s.ext.users.lockTime()))
		res, err := actors.Ask[any](s.deps.Core, actors.SetAttemptWindow{Email: key, Until: until})
		if err == nil {
			err = res.Durable()
		}
		if err != nil {
			s.log.Warn("shorten the lock-out of a protected account", "err", err)
		}
		s.log.Info("protected account refused after repeated password failures", "user", s.pii(strconv.FormatInt(int64(u.ID), 10)))
		return
	}
	locked, err := askUserEdit(s, actors.LockUser{ID: u.ID, Until: a.Until, SpareProtected: true})
	if err != nil {
		return // already locked (by an operator or a parallel lock-out), or gone
	}
	if _, err := deleteAllUserSessions(s, u.ID); err != nil {
		s.log.Warn("end sessions of auto-locked user", "err", err)
	}
	s.log.Info("user locked after repeated password failures", "user", s.pii(strconv.FormatInt(int64(locked.ID), 10)))
}

// neverLocked reports whether the automatic lock spares u: superusers, and
// the anonymous and locked system users.
func neverLocked(u *shard.User) bool { return shard.NeverAutoLocked(u) }

// unlockIfDue ends an automatic lock whose time has passed, so a login right
// after the lock time works without waiting for the sweeper.
func (s *Server) unlockIfDue(u shard.User) shard.User {
	if u.AutoUnlockAt.IsZero() || s.deps.Core.Now().Before(u.AutoUnlockAt) {
		return u
	}
	nu, err := askUserEdit(s, actors.UnlockUser{ID: u.ID, OnlyIfDue: true})
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

// forgetFailures resets the failed attempts and any refusal window of the
// account with email (on an operator's unlock).
func (s *Server) forgetFailures(email string) {
	key := passpolicy.NormalizeEmail(email)
	res, err := actors.Ask[any](s.deps.Core, actors.ResetFailures{Email: key})
	if err == nil {
		err = res.Durable()
	}
	if err != nil {
		s.log.Warn("forget failed attempts", "err", err)
	}
}

// verifyOpErr sorts the error of one verification: nil when the stored hash
// is one this server cannot verify (it never matches), else the error
// itself, a fault of the hasher that the request answers by status and
// that is never a password failure.
func verifyOpErr(err error) error {
	if err == nil {
		return nil
	}
	// The hash worker process names these kinds in its replies, so the
	// sentinels survive the pipe (passhash/hashproc.go).
	for _, e := range [...]error{passhash.ErrPHCMalformed, passhash.ErrPHCOutOfBounds, passhash.ErrPHCUnsupported} {
		if errors.Is(err, e) {
			return nil
		}
	}
	return fmt.Errorf("httpfront: verify password: %w", err)
}
