package actors

import (
	"math"
	"time"

	"github.com/authnzerver/authnzerver/passpolicy"
	"github.com/authnzerver/authnzerver/shard"
)

// Brute-force back-off and auto-lock (docs/security.md, "Brute-force back-off
// and auto-lock"), for every flow that verifies a user's password (login,
// the password checks, the password change and the deletion of one's own
// account), with these rules:
//
//   - Failures are counted per account (the normalised email), whatever
//     the client address, in the account's shard (see shard/lockout.go).
//     Each failure delays its answer by 1.5^(n−1) s, at most 40 s.
//   - Attempts are reserved before the password is verified. While the
//     failures plus the attempts in flight reach LockTries, further
//     attempts wait for one to end, so parallel wrong passwords cannot test
//     more than the try count, and parallel right ones are never refused or
//     counted.
//   - Once LockTries failures are counted, the account is refused any
//     verification for LockTime: every attempt is answered RefusedLockedOut
//     and no password is verified, so a locked account is no oracle. The
//     account is locked (role "locked", sessions ended) with the unlock
//     time stored in the user record: a restart does not lose it.
//   - Superusers are never locked, so nobody can lock the admin out, and
//     neither are the anonymous and locked system users (locking the
//     anonymous user would end every anonymous session). Their refusal
//     window is shorter but grows with each lock-out (protectedWindow), so
//     guesses stay bounded; the price is that an attacker can keep the
//     superuser from logging in during a window (an operator can end it
//     with an unlock).
//   - Counts are bounded in memory, persisted, forgotten after LockTime
//     without failures, and reset by a success, the end of a window or an
//     unlock.

// backoffDelayCap is the longest delay of a failed attempt.
const backoffDelayCap = 40 * time.Second

// attemptWaitMax bounds how long an attempt waits for the attempts in
// flight on its account; past it the answer is ErrBusy. A verification ends
// well within the hasher's own 10 s timeout.
const attemptWaitMax = 30 * time.Second

// attemptPollInterval is the pause before an attempt told to wait asks
// again. The answer to BeginAttempt is plain data (it may come from another
// node), so a waiter asks again rather than wait on a signal; the shard
// answers in microseconds and a verification takes about 100 ms, so a
// waiter learns of a free place about as soon as it could take it.
const attemptPollInterval = 10 * time.Millisecond

// attemptStale is how long an attempt may stay in flight before its place
// is taken as lost (a reservation whose caller timed out before the shard
// made it). Far above any verification, which the hasher bounds at 10 s.
const attemptStale = 2 * attemptWaitMax

// backoffDelay is the answer delay of the n-th failed attempt: 1.5^(n−1)
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

// attempt is one verification of an account's password under the back-off:
// it answers how the check went (AttemptSucceeded when the account's
// password matched, whatever the answer; AttemptFailed when a password was
// verified and did not match; AttemptCancelled when nothing was decided).
type attempt func() (Answer, shard.Outcome, error)

// withBackoff runs check, which verifies one password of the account with
// email, under the back-off and lock rules. An error always counts as
// AttemptCancelled and is returned as it is.
func (a *Accounts) withBackoff(email string, check attempt) (Answer, error) {
	key := passpolicy.NormalizeEmail(email)
	begin := BeginAttempt{Email: key, Tries: a.opts.LockTries, Decay: a.opts.LockTime, LockFor: a.opts.LockTime, Stale: attemptStale}
	var waitUntil time.Time // set at the first wait
	for {
		res, err := Ask[AttemptAnswer](a.core, begin)
		if err != nil {
			return Answer{}, err
		}
		switch v := res.Value; v.Verdict {
		case shard.AttemptRefused:
			return refused(RefusedLockedOut, shard.User{}), nil
		case shard.AttemptOverLimit:
			if err := res.Durable(); err != nil {
				a.log.Warn("record password lock-out", "err", err)
			}
			a.lockOut(key, v)
			return refused(RefusedLockedOut, shard.User{}), nil
		case shard.AttemptWait:
			now := time.Now()
			if waitUntil.IsZero() {
				waitUntil = now.Add(attemptWaitMax)
			}
			if !now.Before(waitUntil) {
				return Answer{}, ErrBusy
			}
			time.Sleep(min(attemptPollInterval, waitUntil.Sub(now)))
			continue
		}
		break
	}
	done := false
	defer func() {
		if !done { // check panicked: free the place
			a.endAttempt(key, shard.AttemptCancelled)
		}
	}()
	r, outcome, err := check()
	done = true
	if err != nil {
		outcome = shard.AttemptCancelled // an error is never a failure
	}
	if n := a.endAttempt(key, outcome); outcome == shard.AttemptFailed && !a.opts.NoBackoffDelay {
		time.Sleep(backoffDelay(n))
	}
	return r, err
}

// endAttempt settles an attempt and returns the account's failure count.
func (a *Accounts) endAttempt(key string, o shard.Outcome) int {
	n, err := askDurable[int](a.core, EndAttempt{Email: key, Outcome: o})
	if err != nil {
		a.log.Warn("record password attempt", "err", err)
	}
	return max(n, 1)
}

// lockOut acts on an account whose window v has just opened: a user is
// locked until the window ends; a protected account (superuser, system
// user) is not locked, and its window is shortened to protectedWindow.
func (a *Accounts) lockOut(key string, v AttemptAnswer) {
	u, found, err := a.UserByEmail(key)
	if err != nil || !found {
		return // an unknown email: the window alone answers for it
	}
	if shard.NeverAutoLocked(&u) {
		until := a.core.Now().Add(protectedWindow(v.Lockouts, a.opts.LockTime))
		if _, err := askDurable[any](a.core, SetAttemptWindow{Email: key, Until: until}); err != nil {
			a.log.Warn("shorten the lock-out of a protected account", "err", err)
		}
		a.log.Info("protected account refused after repeated password failures", "user", a.pii(u.ID))
		return
	}
	locked, err := a.editUser(LockUser{ID: u.ID, Until: v.Until, SpareProtected: true})
	if err != nil {
		return // already locked (by an operator or a parallel lock-out), or gone
	}
	if _, err := a.EndSessions(u.ID, nil); err != nil {
		a.log.Warn("end sessions of auto-locked user", "err", err)
	}
	a.log.Info("user locked after repeated password failures", "user", a.pii(locked.ID))
}

// unlockIfDue ends an automatic lock whose time has passed, so a login right
// after the lock time works without waiting for the sweeper.
func (a *Accounts) unlockIfDue(u shard.User) shard.User {
	if u.AutoUnlockAt.IsZero() || a.core.Now().Before(u.AutoUnlockAt) {
		return u
	}
	nu, err := a.editUser(UnlockUser{ID: u.ID, OnlyIfDue: true})
	if err != nil {
		if g, found, err := a.user(u.ID); err == nil && found {
			return g
		}
		return u
	}
	a.forgetFailures(nu.Email)
	return nu
}

// forgetFailures resets the failed attempts and any refusal window of the
// account with email (on an operator's unlock).
func (a *Accounts) forgetFailures(email string) {
	key := passpolicy.NormalizeEmail(email)
	if _, err := askDurable[any](a.core, ResetFailures{Email: key}); err != nil {
		a.log.Warn("forget failed attempts", "err", err)
	}
}
