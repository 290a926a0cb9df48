package httpfront

import (
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

// handleUserLogin checks an email and password against the presented
// (usually anonymous) session and ends that session: one call to the core's
// login flow (docs/design.md, "Request path: `user-login`").
func handleUserLogin(c *call) (result, error) {
	a, err := c.s.deps.Accounts.Login(shard.DigestSession(c.str("session_token")), c.str("email"), c.str("password"))
	if err != nil {
		return result{}, err
	}
	return passwordAnswer(a, "Login successful."), nil
}

// passwordAnswer words the answer of a login or password check.
func passwordAnswer(a actors.Answer, okMessage string) result {
	switch a.Refusal {
	case "":
		return success(okMessage).with("user_id", int64(a.User.ID)).with("user_role", a.User.Role)
	case actors.RefusedLockedOut:
		return lockedAnswer()
	case actors.RefusedNoSession:
		return failure(reasonNoSession, msgNoSession).with("user_id", nil)
	case actors.RefusedInactive:
		return failure(reasonInactive, msgBadLogin).with("user_id", int64(a.User.ID))
	}
	return failure(reasonBadLogin, msgBadLogin).with("user_id", nil)
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
// not end the session. The back-off and lock apply (docs/security.md,
// "Brute-force back-off and auto-lock").
func handleUserPasscheck(c *call) (result, error) {
	a, err := c.s.deps.Accounts.PassCheck(shard.DigestSession(c.str("session_token")), c.str("password"))
	if err != nil {
		return result{}, err
	}
	return passwordAnswer(a, "Verification successful."), nil
}

// handleUserPasscheckNoSession checks an email and password, with no active
// or verified filter; back-off applies.
func handleUserPasscheckNoSession(c *call) (result, error) {
	a, err := c.s.deps.Accounts.PassCheckEmail(c.str("email"), c.str("password"))
	if err != nil {
		return result{}, err
	}
	return passwordAnswer(a, "Verification successful."), nil
}
