package actors

import (
	"errors"

	"github.com/authnzerver/authnzerver/shard"
)

// Login checks an email and password against the presented (usually
// anonymous) session, which ends (docs/design.md, "Request path:
// `user-login`"), under the brute-force back-off. Every path costs exactly
// one Argon2 verification: the real hash when an active, verified user has
// this email, the dummy hash otherwise, so the time taken does not tell
// whether an account exists (docs/security.md, "Passwords and hashing").
//
// The answer's User is the user on success and on RefusedInactive; the
// refusals are RefusedLockedOut, RefusedNoSession, RefusedBadPassword and
// RefusedInactive.
func (a *Accounts) Login(session shard.SessionDigest, email, password string) (Answer, error) {
	return a.withBackoff(email, func() (Answer, shard.Outcome, error) { return a.login(session, email, password) })
}

// login is one login attempt. A login that did not verify the account's
// password (no session, no eligible user) is a failure, as in the Python
// server: otherwise the back-off delay would tell which failures had the
// right password.
func (a *Accounts) login(session shard.SessionDigest, email, password string) (Answer, shard.Outcome, error) {
	_, sessionOK, err := a.session(session)
	if err != nil {
		return Answer{}, shard.AttemptCancelled, err
	}
	if !sessionOK {
		if _, _, err := a.verify("", password); err != nil {
			return Answer{}, shard.AttemptCancelled, err
		}
		return refused(RefusedNoSession, shard.User{}), shard.AttemptFailed, nil
	}
	u, found, err := a.UserByEmail(email)
	if err != nil {
		return Answer{}, shard.AttemptCancelled, err
	}
	if found {
		u = a.unlockIfDue(u)
	}
	// Only active, verified users can log in.
	eligible := found && u.IsActive && u.EmailVerified
	ok, rehash, err := a.verifyUser(&u, eligible, password)
	if err != nil {
		return Answer{}, shard.AttemptCancelled, err
	}
	// The presented session ends in all cases.
	if _, err := a.endSession(session); err != nil {
		return Answer{}, shard.AttemptCancelled, err
	}
	if found {
		a.recordLoginTry(u.ID, ok && eligible)
	}
	if !ok {
		return refused(RefusedBadPassword, shard.User{}), shard.AttemptFailed, nil
	}
	if rehash {
		a.rehash(u, password)
	}
	if inactiveOrLocked(&u) {
		return refused(RefusedInactive, u), shard.AttemptSucceeded, nil
	}
	a.log.Info("login", "user", a.pii(u.ID))
	return Answer{User: u}, shard.AttemptSucceeded, nil
}

// rehash stores a new hash of a correct password made with the current
// parameters (docs/security.md, "Passwords and hashing"), if the stored hash
// is still the one verified. A busy pool skips it: the next login tries
// again.
func (a *Accounts) rehash(u shard.User, password string) {
	phc, err := a.Hash(password)
	if err != nil {
		return
	}
	// A hash changed meanwhile (shard.ErrNoChange) is kept: it is newer.
	_, err = a.editUser(SetPassword{ID: u.ID, OldPHC: u.PasswordPHC, NewPHC: phc})
	if err != nil && !errors.Is(err, shard.ErrNoChange) {
		a.log.Warn("rehash on login", "err", err)
	}
}

// recordLoginTry maintains last_login_try and last_login_success (the
// Python server never does, docs/protocol.md, "Deliberate differences from
// the Python server").
func (a *Accounts) recordLoginTry(id shard.UserID, success bool) {
	if _, err := a.editUser(RecordLoginTry{ID: id, Success: success}); err != nil {
		a.log.Warn("record login try", "err", err)
	}
}

// PassCheck re-checks the password of the user of a session; the session
// stays. Unlike the Python server, the back-off and lock apply, keyed by the
// user's email: anyone can make a session for any user id, so this is a
// password oracle otherwise. The refusals are those of [Accounts.Login].
func (a *Accounts) PassCheck(session shard.SessionDigest, password string) (Answer, error) {
	sess, ok, err := a.session(session)
	if err != nil {
		return Answer{}, err
	}
	if !ok {
		if _, _, err := a.verify("", password); err != nil {
			return Answer{}, err
		}
		return refused(RefusedNoSession, shard.User{}), nil
	}
	u, found, err := a.user(sess.UserID)
	if err != nil {
		return Answer{}, err
	}
	if !found {
		r, _, err := a.passcheck(u, false, password) // no account to count against
		return r, err
	}
	return a.withBackoff(u.Email, func() (Answer, shard.Outcome, error) {
		return a.passcheck(a.unlockIfDue(u), true, password)
	})
}

// PassCheckEmail checks an email and password, whether or not the account
// is active or verified, under the back-off. The refusals are those of
// [Accounts.Login] but RefusedNoSession.
func (a *Accounts) PassCheckEmail(email, password string) (Answer, error) {
	return a.withBackoff(email, func() (Answer, shard.Outcome, error) {
		u, found, err := a.UserByEmail(email)
		if err != nil {
			return Answer{}, shard.AttemptCancelled, err
		}
		if found {
			u = a.unlockIfDue(u)
		}
		return a.passcheck(u, found, password)
	})
}

// passcheck verifies password for u (the dummy hash when not found) and
// says whether the account's password matched.
func (a *Accounts) passcheck(u shard.User, found bool, password string) (Answer, shard.Outcome, error) {
	ok, _, err := a.verifyUser(&u, found, password)
	if err != nil {
		return Answer{}, shard.AttemptCancelled, err
	}
	if !ok {
		return refused(RefusedBadPassword, shard.User{}), shard.AttemptFailed, nil
	}
	if inactiveOrLocked(&u) {
		return refused(RefusedInactive, u), shard.AttemptSucceeded, nil
	}
	return Answer{User: u}, shard.AttemptSucceeded, nil
}
