package httpfront

import (
	"errors"
	"strconv"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/shard"
)

const (
	msgBadLogin     = "Sorry, that user ID and password combination didn't work."
	msgNoSession    = "No session token provided."
	reasonNoSession = "session does not exist"
	reasonBadLogin  = "user does not exist or password doesn't match"
	reasonInactive  = "user exists but is inactive"
)

// handleUserLogin checks an email and password against the presented (usually
// anonymous) session and ends that session (docs/design.md, "Request path:
// `user-login`"). Every path costs exactly one Argon2 verification: the real
// hash when an active, verified user has this email, the dummy hash otherwise
// (the reference costs one or two, which tells whether an account exists,
// docs/security.md, "Passwords and hashing").
func handleUserLogin(c *call) (result, error) {
	return c.s.withBackoff(c.str("email"), func() (result, shard.Outcome, error) { return userLogin(c) })
}

// userLogin is one login attempt. A login that did not verify the account's
// password (no session, no eligible user) is a failure, as in the
// reference: otherwise the back-off delay would tell which failures had the
// right password.
func userLogin(c *call) (result, shard.Outcome, error) {
	s := c.s
	token, email, password := c.str("session_token"), c.str("email"), c.str("password")
	_, sessionOK, err := lookupSession(s, token)
	if err != nil {
		return result{}, shard.AttemptCancelled, err
	}
	if !sessionOK {
		if _, _, err := verifyPassword(s, "", password); err != nil {
			return result{}, shard.AttemptCancelled, err
		}
		return failure(reasonNoSession, msgNoSession).with("user_id", nil), shard.AttemptFailed, nil
	}
	u, found, err := userByEmail(s, email)
	if err != nil {
		return result{}, shard.AttemptCancelled, err
	}
	if found {
		u = s.unlockIfDue(u)
	}
	// Only active, verified users can log in.
	eligible := found && u.IsActive && u.EmailVerified
	phc := ""
	if eligible {
		phc = u.PasswordPHC
	}
	ok, rehash, err := verifyPassword(s, phc, password)
	if err != nil {
		return result{}, shard.AttemptCancelled, err
	}
	// The presented session ends in all cases.
	if _, err := deleteSession(s, token); err != nil {
		return result{}, shard.AttemptCancelled, err
	}
	if found {
		s.recordLoginTry(u.ID, ok && eligible)
	}
	if !ok {
		return failure(reasonBadLogin, msgBadLogin).with("user_id", nil), shard.AttemptFailed, nil
	}
	if rehash {
		s.rehash(u, password)
	}
	if userInactiveOrLocked(&u) {
		return failure(reasonInactive, msgBadLogin).with("user_id", int64(u.ID)), shard.AttemptSucceeded, nil
	}
	s.log.Info("login", "user", s.pii(strconv.FormatInt(int64(u.ID), 10)))
	return success("Login successful.").with("user_id", int64(u.ID)).with("user_role", u.Role), shard.AttemptSucceeded, nil
}

// rehash stores a new hash of a correct password made with the current
// parameters (docs/security.md, "Passwords and hashing"), if the stored hash
// is still the one verified. A busy pool skips it: the next login tries
// again.
func (s *Server) rehash(u shard.User, password string) {
	phc, err := hashPassword(s, password)
	if err != nil {
		return
	}
	// A hash changed meanwhile (shard.ErrNoChange) is kept: it is newer.
	_, err = setPassword(s, u.ID, u.PasswordPHC, phc)
	if err != nil && !errors.Is(err, errNoChange) {
		s.log.Warn("rehash on login", "err", err)
	}
}

// recordLoginTry maintains last_login_try and last_login_success (the
// reference never does, docs/protocol.md, "Deliberate differences from the
// Python server"). It does not delay the answer.
func (s *Server) recordLoginTry(id shard.UserID, success bool) {
	res, err := actors.Ask[shard.User](s.deps.Core, actors.RecordLoginTry{ID: id, Success: success})
	if err == nil {
		err = durable(res)
	}
	if err != nil {
		s.log.Warn("record login try", "err", err)
	}
}

// handleUserLogout ends a session that belongs to user_id.
func handleUserLogout(c *call) (result, error) {
	uid, _ := c.int("user_id")
	fail := func(reason string) result {
		return failure(reason, "Logout failed. Invalid session_token for user_id.").with("user_id", uid)
	}
	token := c.str("session_token")
	sess, ok, err := lookupSession(c.s, token)
	if err != nil {
		return result{}, err
	}
	if !ok {
		return fail(reasonNoSession), nil
	}
	if int64(sess.UserID) != uid {
		return fail("user does not exist"), nil
	}
	deleted, err := deleteSession(c.s, token)
	if err != nil {
		return result{}, err
	}
	if !deleted {
		return fail("delete session failed"), nil
	}
	return success("Logout successful.").with("user_id", int64(sess.UserID)), nil
}

// handleUserPasscheck re-checks the password of the session's user; it does
// not end the session. Unlike the reference, the back-off and lock apply,
// keyed by the user's email: anyone can make a session for any user id
// (session-new), so this is a password oracle otherwise.
func handleUserPasscheck(c *call) (result, error) {
	s := c.s
	password := c.str("password")
	sess, ok, err := lookupSession(s, c.str("session_token"))
	if err != nil {
		return result{}, err
	}
	if !ok {
		if _, _, err := verifyPassword(s, "", password); err != nil {
			return result{}, err
		}
		return failure(reasonNoSession, msgNoSession).with("user_id", nil), nil
	}
	u, err := getUser(s, sess.UserID)
	if errors.Is(err, shard.ErrUserNotFound) {
		r, _, err := passcheckAnswer(s, u, false, password) // no account to count against
		return r, err
	}
	if err != nil {
		return result{}, err
	}
	return s.withBackoff(u.Email, func() (result, shard.Outcome, error) {
		return passcheckAnswer(s, s.unlockIfDue(u), true, password)
	})
}

// handleUserPasscheckNoSession checks an email and password,
// with no active or verified filter; back-off applies.
func handleUserPasscheckNoSession(c *call) (result, error) {
	email, password := c.str("email"), c.str("password")
	return c.s.withBackoff(email, func() (result, shard.Outcome, error) {
		u, found, err := userByEmail(c.s, email)
		if err != nil {
			return result{}, shard.AttemptCancelled, err
		}
		if found {
			u = c.s.unlockIfDue(u)
		}
		return passcheckAnswer(c.s, u, found, password)
	})
}

// passcheckAnswer verifies password for u (the dummy hash when not found)
// and says whether the account's password matched.
func passcheckAnswer(s *Server, u shard.User, found bool, password string) (result, shard.Outcome, error) {
	phc := ""
	if found {
		phc = u.PasswordPHC
	}
	ok, _, err := verifyPassword(s, phc, password)
	if err != nil {
		return result{}, shard.AttemptCancelled, err
	}
	if !ok {
		return failure(reasonBadLogin, msgBadLogin).with("user_id", nil), shard.AttemptFailed, nil
	}
	if userInactiveOrLocked(&u) {
		return failure(reasonInactive, msgBadLogin).with("user_id", int64(u.ID)), shard.AttemptSucceeded, nil
	}
	return success("Verification successful.").with("user_id", int64(u.ID)).with("user_role", u.Role), shard.AttemptSucceeded, nil
}

// newUUID returns a random version-4 UUID string.
func newUUID() string {
	var b [16]byte
	randRead(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hx = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, x := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hx[x>>4], hx[x&0xf])
	}
	return string(out)
}
